package pgstore

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind: the store
// starts none, and the tests close every pool, manager and server they
// start.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
