package sessions_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

func TestUnlimitedCreateLooksAtNoOtherSession(t *testing.T) {
	checkNoLeaks(t)
	m, log := startManager(t, sessions.Config{MaxSessionsPerUser: sessions.Unlimited,
		IdleTimeout: 30 * time.Millisecond, DisableAutoCleanup: true})
	var last *sessions.Session
	for range 3 {
		s, err := m.Create(ctx, "alice", nil)
		require.NoError(t, err)
		last = s
	}
	waitPast(t, last.ExpiresAt())
	_, err := m.Create(ctx, "alice", nil)
	require.NoError(t, err)
	// Without a limit, Create has no reason to look at (and so to end) the
	// user's expired sessions: that is the sweep's work, and it keeps
	// Create's cost flat however many sessions the user has.
	assert.Zero(t, m.Stats().Ended[sessions.ReasonIdle], "Create ended none of the expired sessions")
	n, err := m.Cleanup(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, n, "the sweep does")
	assert.Equal(t, map[sessions.Reason]int{sessions.ReasonIdle: 3}, log.reasons())
	assert.Equal(t, 1, m.Stats().ActiveSessions)
}

// BenchmarkCreateUnlimitedOneUser measures Create for one user who already
// has n sessions, with no limit: it should not grow with n.
func BenchmarkCreateUnlimitedOneUser(b *testing.B) {
	for _, n := range []int{1000, 20000} {
		b.Run("sessions="+strconv.Itoa(n), func(b *testing.B) {
			m, err := sessions.NewManager(sessions.Config{MaxSessionsPerUser: sessions.Unlimited, DisableAutoCleanup: true}, quiet())
			require.NoError(b, err)
			defer m.Close()
			ctx := context.Background()
			for range n {
				if _, err := m.Create(ctx, "busy", nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := m.Create(ctx, "busy", nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
