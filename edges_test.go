package sessions_test

import (
	"encoding/gob"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// bothStores runs f on a memory-store manager and on one that reaches the
// same kind of store through the Store interface, as a shared store does.
func bothStores(t *testing.T, cfg sessions.Config, f func(t *testing.T, m *sessions.Manager, log *eventLog), opts ...sessions.Option) {
	t.Run("memory", func(t *testing.T) {
		m, log := startManager(t, cfg, opts...)
		f(t, m, log)
	})
	t.Run("shared", func(t *testing.T) {
		cfg := cfg
		cfg.Keys = [][]byte{testKey('v')}
		m, log := startManager(t, cfg, append(opts, sessions.WithStore(&countingStore{inner: sessions.NewMemoryStore()}))...)
		f(t, m, log)
	})
}

// logTo returns an option that logs into a fresh buffer, and the buffer.
func logTo() (sessions.Option, *syncBuffer) {
	buf := &syncBuffer{}
	return sessions.WithLogger(slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))), buf
}

func TestTouchNeverRevivesAnExpiredSession(t *testing.T) {
	checkNoLeaks(t)
	bothStores(t, sessions.Config{IdleTimeout: 30 * time.Millisecond, DisableAutoCleanup: true},
		func(t *testing.T, m *sessions.Manager, log *eventLog) {
			s, err := m.Create(ctx, "alice", nil)
			require.NoError(t, err)
			waitPast(t, s.ExpiresAt())

			s.Touch()
			assert.False(t, s.Active(), "Touch does not bring it back")
			_, err = m.Get(ctx, s.ID())
			assert.ErrorIs(t, err, sessions.ErrNotFound, "Get after Session.Touch")
			assert.ErrorIs(t, m.Touch(ctx, s.ID()), sessions.ErrNotFound, "Manager.Touch")
			_, err = m.Get(ctx, s.ID())
			assert.ErrorIs(t, err, sessions.ErrNotFound, "Get after Manager.Touch")
			assert.ErrorIs(t, s.Save(ctx), sessions.ErrNotFound, "Save after Touch")

			n, err := m.Cleanup(ctx)
			require.NoError(t, err)
			assert.Equal(t, 1, n)
			log.waitEvent(t, s.ID(), sessions.ReasonIdle)
		})
}

func TestNewManagerRejectsSecondsWithoutUnit(t *testing.T) {
	checkNoLeaks(t)
	m, err := sessions.NewManager(sessions.Config{IdleTimeout: 1800, CleanupInterval: 300}, quiet())
	require.ErrorIs(t, err, sessions.ErrInvalidConfig)
	require.Nil(t, m)
	assert.Contains(t, err.Error(), "IdleTimeout 1.8µs")
	assert.Contains(t, err.Error(), "did you mean 1800 * time.Second?")

	// 1ms, the shortest, is fine.
	_, _ = startManager(t, sessions.Config{IdleTimeout: time.Millisecond, CleanupInterval: time.Millisecond})
}

func TestChangeAfterCloseWarnsOnce(t *testing.T) {
	checkNoLeaks(t)
	opt, buf := logTo()
	m, err := sessions.NewManager(sessions.Config{DisableAutoCleanup: true}, opt)
	require.NoError(t, err)
	s, err := m.Create(ctx, "alice", map[string]any{"k": 1})
	require.NoError(t, err)
	s.Set("before", 1)
	require.NoError(t, s.Save(ctx), "Save of a live memory session is a no-op")
	require.NotContains(t, buf.String(), "after Manager.Close")

	require.NoError(t, m.Close())
	s.Set("after", 2)
	s.Delete("k")
	s.Set("again", 3)
	assert.Equal(t, 1, strings.Count(buf.String(), "after Manager.Close"), "one warning: %s", buf)
	assert.Contains(t, buf.String(), "key=after")
	assert.NotContains(t, buf.String(), s.ID(), "never the raw ID")
	assert.ErrorIs(t, s.Save(ctx), sessions.ErrClosed)
}

func TestSaveOfEndedMemorySession(t *testing.T) {
	checkNoLeaks(t)
	m, _ := startManager(t, sessions.Config{DisableAutoCleanup: true})
	s, err := m.Create(ctx, "alice", nil)
	require.NoError(t, err)
	require.NoError(t, m.Terminate(ctx, s.ID()))
	s.Set("lost", 1)
	err = s.Save(ctx)
	assert.ErrorIs(t, err, sessions.ErrNotFound, "a change to an ended session is reported by Save")
	assert.NotContains(t, err.Error(), s.ID())
}

// registered is a user type registered with gob, so every store keeps it.
type registered struct {
	Name string
	N    int
}

// unregistered is a user type nobody registered.
type unregistered struct{ N int }

func TestSetRefusesWhatNoStoreKeeps(t *testing.T) {
	checkNoLeaks(t)
	gob.Register(registered{})
	n := 5
	bad := map[string]any{
		"map[string]int":      map[string]int{"a": 1},
		"map[string]any":      map[string]any{"a": 1},
		"unregistered struct": unregistered{1},
		"pointer to int":      &n,
		"pointer to struct":   &registered{"p", 2},
		"func":                func() {},
	}
	good := map[string]any{
		"string": "x", "bool": true, "int": 1, "int8": int8(-2), "int16": int16(3), "int32": int32(-4),
		"int64": int64(5), "uint": uint(6), "uint8": uint8(7), "uint16": uint16(8), "uint32": uint32(9),
		"uint64": uint64(10), "float32": float32(1.5), "float64": 2.5, "bytes": []byte{1},
		"time": time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "duration": time.Minute, "nil": nil,
		"registered": registered{"r", 1}, "[]string": []string{"a"},
	}
	opt, buf := logTo()
	bothStores(t, sessions.Config{DisableAutoCleanup: true}, func(t *testing.T, m *sessions.Manager, _ *eventLog) {
		s, err := m.Create(ctx, "alice", map[string]any{"kept": "old"})
		require.NoError(t, err)
		for name, v := range bad {
			s.Set(name, v)
			_, ok := s.Get(name)
			assert.False(t, ok, "%s is refused", name)
			s.Set("kept", v)
			old, _ := s.Get("kept")
			assert.Equal(t, "old", old, "%s leaves the key as it was", name)

			_, err := m.Create(ctx, "bob", map[string]any{"k": v})
			assert.ErrorIs(t, err, sessions.ErrUnsupportedValue, "Create with %s", name)
		}
		assert.Contains(t, buf.String(), "Set refused a value that no store can keep")
		assert.Contains(t, buf.String(), "*int would come back as int")
		assert.NotContains(t, buf.String(), s.ID(), "never the raw ID")

		for name, v := range good {
			s.Set(name, v)
		}
		require.NoError(t, s.Save(ctx))
		back, err := m.Get(ctx, s.ID())
		require.NoError(t, err)
		for name, v := range good {
			got, ok := back.Get(name)
			require.True(t, ok, name)
			assert.IsType(t, v, got, name)
			if tm, ok := v.(time.Time); ok {
				assert.True(t, tm.Equal(got.(time.Time)))
				continue
			}
			assert.Equal(t, v, got, name)
		}
		uss, err := m.UserSessions(ctx, "bob")
		require.NoError(t, err)
		assert.Empty(t, uss, "no bad Create made a session")
	}, opt)
}
