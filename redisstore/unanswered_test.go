package redisstore

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// An ending whose reply never reaches the caller (every resend's reply
// lost, or the delete delivered after the client gave up) returns an
// error, and the Manager finishes it in the background: the session ends
// and its hooks run once. (Before, the session was gone and no hook ran.)

// requireEndedOnce waits until the hooks of id ran, then checks that the
// session is gone and that, once the manager is closed, they ran once.
func requireEndedOnce(t *testing.T, r *faultRig, id string) {
	t.Helper()
	require.Eventually(t, func() bool {
		r.log.mu.Lock()
		defer r.log.mu.Unlock()
		return len(r.log.events[id]) > 0
	}, 10*time.Second, 10*time.Millisecond, "the ending's hooks never ran")
	_, err := r.m.Get(t.Context(), id)
	require.ErrorIs(t, err, sessions.ErrNotFound)
	require.NoError(t, r.m.Close())
	r.log.mu.Lock()
	defer r.log.mu.Unlock()
	assert.Len(t, r.log.events[id], 1, "the ending's hooks ran more than once")
}

func TestLostEndingRetriesExhausted(t *testing.T) {
	const lease = 300 * time.Millisecond
	r := newFaultRig(t, sessions.Config{IdleTimeout: time.Hour, CleanupInterval: 20 * time.Millisecond}, nil, WithLease(lease))
	s, err := r.m.Create(t.Context(), "tara", nil)
	require.NoError(t, err)
	r.proxy.DropReplies(4, runs(deleteScript)) // the call and go-redis's 3 resends
	err = r.m.Terminate(t.Context(), s.ID())
	t.Logf("Terminate with every reply lost: %v; lost %v", err, r.proxy.Dropped())
	require.Error(t, err)
	requireEndedOnce(t, r, s.ID())
}

func TestLostEndingDelayedDelete(t *testing.T) {
	const lease = 300 * time.Millisecond
	r := newFaultRig(t, sessions.Config{IdleTimeout: time.Hour, CleanupInterval: 20 * time.Millisecond}, func(o *redis.Options) {
		o.ReadTimeout, o.WriteTimeout, o.DialTimeout = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
	}, WithLease(lease))
	ctx := t.Context()
	// Load the delete script into Redis first, so that the held EVALSHA
	// runs when it arrives.
	w, err := r.m.Create(ctx, "warm", nil)
	require.NoError(t, err)
	require.NoError(t, r.m.Terminate(ctx, w.ID()))
	s, err := r.m.Create(ctx, "tara", nil)
	require.NoError(t, err)
	r.proxy.StallOn(runs(deleteScript))
	err = r.m.Terminate(ctx, s.ID())
	t.Logf("Terminate during a stall: %v", err)
	require.Error(t, err)
	r.proxy.Release() // the held delete reaches Redis now, after the client gave up
	requireEndedOnce(t, r, s.ID())
}
