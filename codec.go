package sessions

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"math"
	"reflect"
	"time"
)

// ErrUnsupportedValue is returned (wrapped) for a session value that a
// store could not keep and give back with the Go type it was written with;
// the error names the type. Every store accepts the same values (see
// Session.Set): register other types with encoding/gob.Register.
var ErrUnsupportedValue = errors.New("sessions: value cannot be encoded")

// checkValue returns nil if v is a value every store keeps and gives back
// with its own Go type, else an error wrapping ErrUnsupportedValue that
// names the type. The built-in types cost a type switch; any other type is
// encoded and decoded once, as a shared store would.
func checkValue(v any) error {
	switch v.(type) {
	case nil, string, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64,
		float32, float64, []byte, time.Time, time.Duration:
		return nil
	}
	b, err := encodeValue(v)
	if err != nil {
		return err
	}
	back, err := decodeValue(b)
	if err != nil {
		return fmt.Errorf("%w: %T does not decode: %v", ErrUnsupportedValue, v, err)
	}
	if got, want := reflect.TypeOf(back), reflect.TypeOf(v); got != want {
		if want.Kind() == reflect.Pointer {
			return fmt.Errorf("%w: %T would come back as %v; store the value, not a pointer", ErrUnsupportedValue, v, got)
		}
		return fmt.Errorf("%w: %T would come back as %v", ErrUnsupportedValue, v, got)
	}
	return nil
}

// Value tags of the encoding shared stores keep. Each encoded value is one
// tag byte followed by the payload; the tag brings the Go type back.
const (
	tagString byte = iota + 1
	tagBool
	tagInt
	tagInt64
	tagFloat64
	tagBytes
	tagTime
	tagInt8
	tagInt16
	tagInt32
	tagUint
	tagUint8
	tagUint16
	tagUint32
	tagUint64
	tagFloat32
	tagNil
	tagGob // any other type, registered with gob.Register
	tagDuration
)

// encodeValue encodes v so that decodeValue returns a value of the same Go
// type (checkValue makes sure of it). Built-in scalar types, []byte,
// string, time.Time and time.Duration need nothing;
// other types go through encoding/gob and must be registered with
// gob.Register.
func encodeValue(v any) ([]byte, error) {
	u64 := func(tag byte, x uint64) []byte { return binary.AppendUvarint([]byte{tag}, x) }
	i64 := func(tag byte, x int64) []byte { return binary.AppendVarint([]byte{tag}, x) }
	switch x := v.(type) {
	case nil:
		return []byte{tagNil}, nil
	case string:
		return append([]byte{tagString}, x...), nil
	case bool:
		if x {
			return []byte{tagBool, 1}, nil
		}
		return []byte{tagBool, 0}, nil
	case int:
		return i64(tagInt, int64(x)), nil
	case int64:
		return i64(tagInt64, x), nil
	case time.Duration:
		return i64(tagDuration, int64(x)), nil
	case int8:
		return i64(tagInt8, int64(x)), nil
	case int16:
		return i64(tagInt16, int64(x)), nil
	case int32:
		return i64(tagInt32, int64(x)), nil
	case uint:
		return u64(tagUint, uint64(x)), nil
	case uint8:
		return u64(tagUint8, uint64(x)), nil
	case uint16:
		return u64(tagUint16, uint64(x)), nil
	case uint32:
		return u64(tagUint32, uint64(x)), nil
	case uint64:
		return u64(tagUint64, x), nil
	case float64:
		return binary.BigEndian.AppendUint64([]byte{tagFloat64}, math.Float64bits(x)), nil
	case float32:
		return binary.BigEndian.AppendUint32([]byte{tagFloat32}, math.Float32bits(x)), nil
	case []byte:
		return append([]byte{tagBytes}, x...), nil
	case time.Time:
		b, err := x.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnsupportedValue, err)
		}
		return append([]byte{tagTime}, b...), nil
	}
	var buf bytes.Buffer
	buf.WriteByte(tagGob)
	if err := gob.NewEncoder(&buf).Encode(&v); err != nil {
		return nil, fmt.Errorf("%w: %T: %v (register the type with gob.Register)", ErrUnsupportedValue, v, err)
	}
	return buf.Bytes(), nil
}

var errBadValue = errors.New("sessions: malformed encoded value")

// decodeValue is the inverse of encodeValue.
func decodeValue(b []byte) (any, error) {
	if len(b) == 0 {
		return nil, errBadValue
	}
	tag, p := b[0], b[1:]
	varint := func() (int64, error) {
		x, n := binary.Varint(p)
		if n <= 0 || n != len(p) {
			return 0, errBadValue
		}
		return x, nil
	}
	uvarint := func() (uint64, error) {
		x, n := binary.Uvarint(p)
		if n <= 0 || n != len(p) {
			return 0, errBadValue
		}
		return x, nil
	}
	switch tag {
	case tagNil:
		return nil, nil
	case tagString:
		return string(p), nil
	case tagBool:
		if len(p) != 1 || p[0] > 1 {
			return nil, errBadValue
		}
		return p[0] == 1, nil
	case tagInt, tagInt64, tagInt8, tagInt16, tagInt32, tagDuration:
		x, err := varint()
		if err != nil {
			return nil, err
		}
		switch tag {
		case tagInt:
			return int(x), nil
		case tagInt8:
			return int8(x), nil
		case tagInt16:
			return int16(x), nil
		case tagInt32:
			return int32(x), nil
		case tagDuration:
			return time.Duration(x), nil
		}
		return x, nil
	case tagUint, tagUint8, tagUint16, tagUint32, tagUint64:
		x, err := uvarint()
		if err != nil {
			return nil, err
		}
		switch tag {
		case tagUint:
			return uint(x), nil
		case tagUint8:
			return uint8(x), nil
		case tagUint16:
			return uint16(x), nil
		case tagUint32:
			return uint32(x), nil
		}
		return x, nil
	case tagFloat64:
		if len(p) != 8 {
			return nil, errBadValue
		}
		return math.Float64frombits(binary.BigEndian.Uint64(p)), nil
	case tagFloat32:
		if len(p) != 4 {
			return nil, errBadValue
		}
		return math.Float32frombits(binary.BigEndian.Uint32(p)), nil
	case tagBytes:
		return bytes.Clone(p), nil
	case tagTime:
		var t time.Time
		if err := t.UnmarshalBinary(p); err != nil {
			return nil, errBadValue
		}
		return t, nil
	case tagGob:
		var v any
		if err := gob.NewDecoder(bytes.NewReader(p)).Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: %v", errBadValue, err)
		}
		return v, nil
	}
	return nil, errBadValue
}
