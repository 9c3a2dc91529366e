package sessions

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

// TestStateContextSize keeps the Middleware's one allocation of its own
// per request within the allocator's 96-byte size class (on 64-bit
// platforms; smaller elsewhere): a field more moves every request to the
// 112-byte class.
func TestStateContextSize(t *testing.T) {
	assert.LessOrEqual(t, unsafe.Sizeof(stateContext{}), uintptr(96))
}
