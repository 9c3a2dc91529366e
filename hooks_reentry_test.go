package sessions_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// TestCleanupFromAHook: a hook that calls Cleanup used to wait for itself
// (Cleanup waits for the hooks) and hang the manager and its Close.
func TestCleanupFromAHook(t *testing.T) {
	checkNoLeaks(t)
	bothStores(t, sessions.Config{IdleTimeout: 20 * time.Millisecond, DisableAutoCleanup: true},
		func(t *testing.T, m *sessions.Manager, log *eventLog) {
			var swept atomic.Int32
			var returned atomic.Bool
			m.OnTerminate(func(ev sessions.Event) {
				if ev.Reason != sessions.ReasonTerminated {
					return
				}
				n, err := m.Cleanup(ctx) // from the hook goroutine
				assert.NoError(t, err)
				swept.Store(int32(n))
				returned.Store(true)
			})
			idle, err := m.Create(ctx, "alice", nil)
			require.NoError(t, err)
			waitPast(t, idle.ExpiresAt())
			other, err := m.Create(ctx, "bob", nil)
			require.NoError(t, err)
			require.NoError(t, m.Terminate(ctx, other.ID()))
			require.Eventually(t, returned.Load, waitFor, poll, "Cleanup in a hook returned")
			assert.Equal(t, int32(1), swept.Load(), "and swept")
			log.waitEvent(t, idle.ID(), sessions.ReasonIdle) // its hooks run once the calling hook is done
		})
}

// TestCloseFromAHook: a hook that calls Close used to wait for itself.
func TestCloseFromAHook(t *testing.T) {
	checkNoLeaks(t)
	m, err := sessions.NewManager(sessions.Config{DisableAutoCleanup: true}, quiet())
	require.NoError(t, err)
	log := &eventLog{}
	m.OnTerminate(log.hook)
	var returned atomic.Bool
	m.OnTerminate(func(ev sessions.Event) {
		if ev.Reason == sessions.ReasonTerminated {
			assert.NoError(t, m.Close())
			returned.Store(true)
		}
	})
	a, err := m.Create(ctx, "alice", nil)
	require.NoError(t, err)
	b, err := m.Create(ctx, "bob", nil)
	require.NoError(t, err)
	require.NoError(t, m.Terminate(ctx, a.ID()))
	require.Eventually(t, returned.Load, waitFor, poll, "Close in a hook returned")
	log.waitEvent(t, b.ID(), sessions.ReasonShutdown) // Close ended it; its hooks ran after
	require.NoError(t, m.Close(), "idempotent")
	_, err = m.Get(ctx, b.ID())
	assert.ErrorIs(t, err, sessions.ErrClosed)
}
