package sessions_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

func TestValue(t *testing.T) {
	checkNoLeaks(t)
	when := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	bothStores(t, sessions.Config{DisableAutoCleanup: true}, func(t *testing.T, m *sessions.Manager, _ *eventLog) {
		s, err := m.Create(ctx, "alice", map[string]any{"name": "Alice", "n": 7, "at": when, "idle": 90 * time.Second})
		require.NoError(t, err)
		got, err := m.Get(ctx, s.ID()) // a fresh load on the shared store
		require.NoError(t, err)

		name, ok := sessions.Value[string](got, "name")
		assert.True(t, ok)
		assert.Equal(t, "Alice", name)
		n, ok := sessions.Value[int](got, "n")
		assert.True(t, ok)
		assert.Equal(t, 7, n)
		at, ok := sessions.Value[time.Time](got, "at")
		assert.True(t, ok)
		assert.True(t, when.Equal(at))
		d, ok := sessions.Value[time.Duration](got, "idle")
		assert.True(t, ok, "time.Duration comes back as itself")
		assert.Equal(t, 90*time.Second, d)

		n64, ok := sessions.Value[int64](got, "n")
		assert.False(t, ok, "an int is not an int64")
		assert.Zero(t, n64)
		missing, ok := sessions.Value[string](got, "missing")
		assert.False(t, ok)
		assert.Empty(t, missing)
		str, ok := sessions.Value[fmt.Stringer](got, "idle")
		assert.True(t, ok, "T may be an interface")
		assert.Equal(t, "1m30s", str.String())
	})
}

func TestPop(t *testing.T) {
	checkNoLeaks(t)
	bothStores(t, sessions.Config{DisableAutoCleanup: true}, func(t *testing.T, m *sessions.Manager, _ *eventLog) {
		s, err := m.Create(ctx, "alice", map[string]any{"flash": "Saved.", "count": 3})
		require.NoError(t, err)

		_, ok := sessions.Pop[int](s, "flash")
		assert.False(t, ok, "a value of another type is not popped")
		_, ok = s.Get("flash")
		assert.True(t, ok, "nor deleted")

		msg, ok := sessions.Pop[string](s, "flash")
		assert.True(t, ok)
		assert.Equal(t, "Saved.", msg)
		_, ok = sessions.Pop[string](s, "flash")
		assert.False(t, ok, "read once")
		_, ok = s.Get("flash")
		assert.False(t, ok)

		require.NoError(t, s.Save(ctx))
		again, err := m.Get(ctx, s.ID())
		require.NoError(t, err)
		_, ok = again.Get("flash")
		assert.False(t, ok, "the deletion reached the store")
		c, _ := sessions.Value[int](again, "count")
		assert.Equal(t, 3, c, "other keys are left alone")
	})
}

func TestPopConcurrentOnMemoryStore(t *testing.T) {
	checkNoLeaks(t)
	m, _ := startManager(t, sessions.Config{DisableAutoCleanup: true})
	s, err := m.Create(ctx, "alice", nil)
	require.NoError(t, err)
	for round := range 50 {
		s.Set("flash", fmt.Sprint("message ", round))
		var got atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				live, err := m.Get(ctx, s.ID()) // each "request" finds the session anew
				if err != nil {
					t.Error(err)
					return
				}
				if _, ok := sessions.Pop[string](live, "flash"); ok {
					got.Add(1)
				}
			})
		}
		wg.Wait()
		require.Equal(t, int32(1), got.Load(), "round %d: exactly one request pops the message", round)
	}
}
