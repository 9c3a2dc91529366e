package faultproxy

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

// respReplies are replies of every RESP2 and RESP3 type, each a whole reply.
var respReplies = []struct {
	raw  string
	kind byte
}{
	{"+OK\r\n", '+'},
	{"-NOSCRIPT No matching script\r\n", '-'},
	{":-42\r\n", ':'},
	{"$5\r\nhe\r\nl\r\n", '$'}, // a bulk string may hold CRLF
	{"$0\r\n\r\n", '$'},
	{"$-1\r\n", '$'},
	{"*-1\r\n", '*'},
	{"_\r\n", '_'},
	{",3.25\r\n", ','},
	{"#t\r\n", '#'},
	{"(3492890328409238509324850943850943825024385\r\n", '('},
	{"!21\r\nSYNTAX invalid syntax\r\n", '!'},
	{"=15\r\ntxt:Some string\r\n", '='},
	{"*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n%1\r\n+k\r\n~2\r\n:1\r\n:2\r\n", '*'},
	{"*0\r\n", '*'},
	{"%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n*1\r\n,1.5\r\n", '%'},
	{"~1\r\n$3\r\nfoo\r\n", '~'},
	{">3\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nkey\r\n_\r\n", '>'},
	// An attribute travels with the value it annotates.
	{"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*2\r\n:2039123\r\n:9543892\r\n", '*'},
}

// TestReadReplyBoundaries: a stream of replies of every type, delivered one
// byte at a time, is cut exactly at each reply's end.
func TestReadReplyBoundaries(t *testing.T) {
	var all strings.Builder
	for _, r := range respReplies {
		all.WriteString(r.raw)
	}
	r := bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(all.String())), 16)
	var buf []byte
	for _, want := range respReplies {
		raw, kind, err := readReply(r, buf)
		require.NoError(t, err, "reading %q", want.raw)
		require.Equal(t, want.raw, string(raw))
		require.Equal(t, string(want.kind), string(kind), "type of %q", want.raw)
		buf = raw
	}
	_, _, err := readReply(r, buf)
	require.ErrorIs(t, err, io.EOF)
}

// TestReadReplyLong: a bulk string and a line longer than the reader's
// buffer are read whole.
func TestReadReplyLong(t *testing.T) {
	big := strings.Repeat("x", 100_000)
	in := "$100000\r\n" + big + "\r\n+" + big + "\r\n"
	r := bufio.NewReaderSize(strings.NewReader(in), 16)
	raw, kind, err := readReply(r, nil)
	require.NoError(t, err)
	require.Equal(t, byte('$'), kind)
	require.Len(t, raw, len("$100000\r\n")+len(big)+2)
	raw, kind, err = readReply(r, nil)
	require.NoError(t, err)
	require.Equal(t, byte('+'), kind)
	require.Len(t, raw, 1+len(big)+2)
}

// TestReadReplyMalformed: what is not RESP is an error, not a guess.
func TestReadReplyMalformed(t *testing.T) {
	for _, in := range []string{"?x\r\n", "$abc\r\n", "$3\r\nabcd\r\n", "+no crlf\n", "*2\r\n:1\r\n", "\r\n"} {
		_, _, err := readReply(bufio.NewReader(strings.NewReader(in)), nil)
		require.Error(t, err, "input %q", in)
	}
	deep := strings.Repeat("*1\r\n", maxDepth+2) + ":1\r\n"
	_, _, err := readReply(bufio.NewReader(strings.NewReader(deep)), nil)
	require.ErrorIs(t, err, errProtocol)
}

// TestReadCommand: commands as clients send them — RESP arrays of bulk
// strings, pipelined, and inline — are cut at their ends with their
// arguments.
func TestReadCommand(t *testing.T) {
	in := "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\nv\r\nx\r\n" +
		"*2\r\n$7\r\nevalsha\r\n$0\r\n\r\n" +
		"PING  hello\r\n"
	r := bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(in)), 16)
	raw, args, err := readCommand(r, nil)
	require.NoError(t, err)
	require.Equal(t, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\nv\r\nx\r\n", string(raw))
	require.Equal(t, []string{"SET", "k", "v\r\nx"}, args)
	raw, args, err = readCommand(r, raw)
	require.NoError(t, err)
	require.Equal(t, "*2\r\n$7\r\nevalsha\r\n$0\r\n\r\n", string(raw))
	require.Equal(t, []string{"evalsha", ""}, args)
	raw, args, err = readCommand(r, raw)
	require.NoError(t, err)
	require.Equal(t, "PING  hello\r\n", string(raw))
	require.Equal(t, []string{"PING", "hello"}, args)
	_, _, err = readCommand(r, raw)
	require.ErrorIs(t, err, io.EOF)

	_, _, err = readCommand(bufio.NewReader(bytes.NewReader([]byte("*1\r\n:1\r\n"))), nil)
	require.ErrorIs(t, err, errProtocol, "an argument must be a bulk string")
}
