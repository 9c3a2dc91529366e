package sessions_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// TestCloseFromAHookDuringBacklogCleanup: a Cleanup of a backlog larger
// than one batch waits for the hooks of a batch before claiming the next;
// a hook that closes the manager meanwhile must not leave the two waiting
// for each other.
func TestCloseFromAHookDuringBacklogCleanup(t *testing.T) {
	checkNoLeaks(t)
	const n = 2500 // more than two sweep batches
	cfg := sessions.Config{
		IdleTimeout: 20 * time.Millisecond, DisableAutoCleanup: true,
		MaxSessionsPerUser: sessions.Unlimited, Keys: [][]byte{testKey('w')},
	}
	store := &countingStore{inner: sessions.NewMemoryStore()}
	m, err := sessions.NewManager(cfg, quiet(), sessions.WithStore(store))
	require.NoError(t, err)
	var last *sessions.Session
	for range n {
		last, err = m.Create(ctx, "", nil)
		require.NoError(t, err)
	}
	waitPast(t, last.ExpiresAt())

	// The first hook closes the manager once the sweep has claimed its
	// second batch and is waiting for the hooks of the first.
	base := store.calls.Load()
	var closed atomic.Bool
	m.OnTerminate(func(sessions.Event) {
		if closed.CompareAndSwap(false, true) {
			for store.calls.Load() < base+2 {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond) // the sweep is past its check of Close by now
			assert.NoError(t, m.Close())
		}
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = m.Cleanup(ctx)
	}()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("Cleanup and a hook calling Close wait for each other") // and Close would hang too
	}
	assert.True(t, closed.Load())
	require.NoError(t, m.Close())
}
