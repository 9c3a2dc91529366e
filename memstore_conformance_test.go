package sessions_test

import (
	"testing"

	"github.com/tokyopredictor/sessions"
	"github.com/tokyopredictor/sessions/storetest"
)

// TestMemoryStoreConformance runs the Store conformance suite against the
// memory store.
func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) sessions.Store { return sessions.NewMemoryStore() })
}
