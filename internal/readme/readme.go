// Package readme holds README.md snippets that are neither a program nor
// an Example, between README markers, so that the workspace compiles them
// (see readme_test.go at the root). Nothing imports it.
package readme

import (
	"testing"

	"github.com/tokyopredictor/sessions"
	"github.com/tokyopredictor/sessions/storetest"
)

// newMyStore stands for the reader's own store.
func newMyStore(*testing.T) sessions.Store { return sessions.NewMemoryStore() }

// README:begin storetest
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) sessions.Store { return newMyStore(t) })
}

// README:end
