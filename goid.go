package sessions

import (
	"bytes"
	"runtime"
	"strconv"
)

// goid returns the ID of the calling goroutine, read from the first line
// of its stack trace ("goroutine 18 [running]:"); 0 if it cannot be read.
// The hook runner compares it with its own, so that Cleanup and Close
// called from a termination hook do not wait for themselves. It costs a
// microsecond or so: it is never on a request's path.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b, ok := bytes.CutPrefix(b, []byte("goroutine "))
	if !ok {
		return 0
	}
	if i := bytes.IndexByte(b, ' '); i >= 0 {
		b = b[:i]
	}
	id, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0
	}
	return id
}
