package faultproxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// The proxy reads just enough RESP (the Redis protocol, versions 2 and 3)
// to know where each command and each reply ends: it never changes a byte
// it forwards.

// maxDepth bounds the nesting of aggregates the parser follows.
const maxDepth = 64

// maxBulk bounds the length of one bulk string (Redis's own default limit).
const maxBulk = 512 << 20

var errProtocol = errors.New("faultproxy: malformed RESP")

// readCommand reads one command a client sends: a RESP array of bulk
// strings, or an inline command (one line of words). It returns the
// command's raw bytes, appended to buf[:0], and its arguments.
func readCommand(r *bufio.Reader, buf []byte) (raw []byte, args []string, err error) {
	raw, err = readLine(r, buf[:0])
	if err != nil {
		return raw, nil, err
	}
	line := raw[:len(raw)-2]
	if len(line) == 0 || line[0] != '*' {
		// Inline command: words separated by spaces.
		for _, w := range bytes.Fields(line) {
			args = append(args, string(w))
		}
		return raw, args, nil
	}
	n, err := parseLen(line[1:])
	if err != nil {
		return raw, nil, err
	}
	args = make([]string, 0, max(n, 0))
	for range n {
		start := len(raw)
		if raw, err = readLine(r, raw); err != nil {
			return raw, nil, err
		}
		head := raw[start : len(raw)-2]
		if len(head) == 0 || head[0] != '$' {
			return raw, nil, fmt.Errorf("%w: command argument of type %q", errProtocol, head)
		}
		size, err := parseLen(head[1:])
		if err != nil {
			return raw, nil, err
		}
		if size < 0 {
			return raw, nil, fmt.Errorf("%w: null command argument", errProtocol)
		}
		start = len(raw)
		if raw, err = readN(r, raw, size+2); err != nil {
			return raw, nil, err
		}
		args = append(args, string(raw[start:len(raw)-2]))
	}
	return raw, args, nil
}

// readReply reads one reply a server sends and returns its raw bytes,
// appended to buf[:0], and its type byte ('+', '-', '$', '*', '%', '>', ...).
// An attribute ('|') is read together with the value it annotates, whose
// type is returned.
func readReply(r *bufio.Reader, buf []byte) (raw []byte, kind byte, err error) {
	return readValue(r, buf[:0], 0)
}

func readValue(r *bufio.Reader, raw []byte, depth int) ([]byte, byte, error) {
	if depth > maxDepth {
		return raw, 0, fmt.Errorf("%w: nested deeper than %d", errProtocol, maxDepth)
	}
	start := len(raw)
	raw, err := readLine(r, raw)
	if err != nil {
		return raw, 0, err
	}
	line := raw[start : len(raw)-2]
	if len(line) == 0 {
		return raw, 0, fmt.Errorf("%w: empty line", errProtocol)
	}
	kind := line[0]
	switch kind {
	case '+', '-', ':', '_', ',', '#', '(':
		// simple string, error, integer, null, double, boolean, big number
		return raw, kind, nil
	case '$', '!', '=':
		// bulk string, bulk error, verbatim string; "$-1" is RESP2's null
		n, err := parseLen(line[1:])
		if err != nil || n < 0 {
			return raw, kind, err
		}
		raw, err = readN(r, raw, n+2)
		return raw, kind, err
	case '*', '~', '>', '%', '|':
		// array, set, push; map and attribute hold two values an entry
		n, err := parseLen(line[1:])
		if err != nil || n < 0 {
			return raw, kind, err
		}
		if kind == '%' || kind == '|' {
			n *= 2
		}
		for range n {
			if raw, _, err = readValue(r, raw, depth+1); err != nil {
				return raw, kind, err
			}
		}
		if kind == '|' {
			// An attribute precedes the value it describes.
			return readValue(r, raw, depth+1)
		}
		return raw, kind, nil
	}
	return raw, kind, fmt.Errorf("%w: unknown type %q", errProtocol, kind)
}

// readLine appends one line, with its "\r\n", to raw.
func readLine(r *bufio.Reader, raw []byte) ([]byte, error) {
	for {
		chunk, err := r.ReadSlice('\n')
		raw = append(raw, chunk...)
		switch {
		case err == nil:
			if len(raw) < 2 || raw[len(raw)-2] != '\r' {
				return raw, fmt.Errorf("%w: line not ended by CRLF", errProtocol)
			}
			return raw, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return raw, err
		}
	}
}

// readN appends exactly n bytes to raw; the last two must be "\r\n".
func readN(r *bufio.Reader, raw []byte, n int) ([]byte, error) {
	start := len(raw)
	raw = append(raw, make([]byte, n)...)
	if _, err := io.ReadFull(r, raw[start:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return raw, err
	}
	if n < 2 || raw[len(raw)-2] != '\r' || raw[len(raw)-1] != '\n' {
		return raw, fmt.Errorf("%w: bulk string not ended by CRLF", errProtocol)
	}
	return raw, nil
}

// parseLen parses the length of a bulk string or aggregate; -1 is null.
func parseLen(b []byte) (int, error) {
	n, err := strconv.Atoi(string(b))
	if err != nil || n < -1 || n > maxBulk {
		return 0, fmt.Errorf("%w: bad length %q", errProtocol, b)
	}
	return n, nil
}
