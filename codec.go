package sessions

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrUnsupportedValue is returned (wrapped) when a session value cannot be
// encoded for a shared store: register its type with encoding/gob.Register.
var ErrUnsupportedValue = errors.New("sessions: value cannot be encoded")

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
)

// encodeValue encodes v so that decodeValue returns a value of the same Go
// type. Built-in scalar types, []byte, string and time.Time need nothing;
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
	case tagInt, tagInt64, tagInt8, tagInt16, tagInt32:
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
