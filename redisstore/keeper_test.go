package redisstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// The tests in this file check that a Manager keeps the claims of its
// sweeps until their hooks have run and the store has acknowledged them:
// slow hooks, failing acknowledgements and rotated keys must not run any
// ending's hooks twice.

// expireSessions creates n sessions (users cycling over 50) with a short
// idle timeout through a manager of its own on s, and waits until all have
// expired.
func expireSessions(t *testing.T, s sessions.Store, keys [][]byte, n int) {
	t.Helper()
	const idle = 50 * time.Millisecond
	m, err := sessions.NewManager(sessions.Config{
		Keys: keys, IdleTimeout: idle, DisableAutoCleanup: true, MaxSessionsPerUser: sessions.Unlimited,
	}, sessions.WithStore(s))
	require.NoError(t, err)
	defer m.Close()
	for i := range n {
		user := ""
		if i%3 != 0 {
			user = fmt.Sprint("user", i%50)
		}
		_, err := m.Create(t.Context(), user, map[string]any{"i": i})
		require.NoError(t, err)
	}
	time.Sleep(idle) // every session was created at least idle ago now
}

// claimKeys returns the claimed-session keys left under the store's prefix.
func claimKeys(t *testing.T, s *Store) []string {
	var out []string
	for _, k := range keysUnder(t, s.c, s.o.prefix) {
		if strings.Contains(k, "}:c:") {
			out = append(out, k)
		}
	}
	return out
}

// TestSlowHooksKeepTheirClaims: one manager claims a backlog whose hooks
// take several leases to run; a second manager sweeps all along. Every
// ending runs its hooks once: the first manager extends its claims while
// their hooks are pending.
func TestSlowHooksKeepTheirClaims(t *testing.T) {
	const n, lease = 600, 500 * time.Millisecond
	stores := storesOn(t, 2, WithLease(lease))
	expireSessions(t, stores[0], testKeys, n)

	log := newHookLog()
	slow, err := sessions.NewManager(sessions.Config{Keys: testKeys, DisableAutoCleanup: true}, sessions.WithStore(stores[0]))
	require.NoError(t, err)
	defer slow.Close()
	hook := log.hook(0)
	slow.OnTerminate(func(ev sessions.Event) {
		time.Sleep(2 * time.Millisecond) // 600 × 2ms: more than two leases
		hook(ev)
	})
	ended, err := slow.Cleanup(t.Context()) // claims all n in one batch, runs their hooks
	require.NoError(t, err)
	require.Equal(t, n, ended)

	// Meanwhile nobody else could take them; and now nothing is left.
	other, err := sessions.NewManager(sessions.Config{Keys: testKeys, CleanupInterval: 20 * time.Millisecond}, sessions.WithStore(stores[1]))
	require.NoError(t, err)
	other.OnTerminate(log.hook(1))
	require.Eventually(t, func() bool { return len(claimKeys(t, stores[0])) == 0 }, 5*time.Second, 10*time.Millisecond,
		"claims were not acknowledged")
	time.Sleep(2 * lease) // a claim left unacknowledged would be handed out again by now
	require.NoError(t, other.Close())
	require.NoError(t, slow.Close())
	log.requireOnce(t)
	require.Equal(t, n, log.len())
}

// failingAcks is a Store whose first Acks fail after doing nothing.
type failingAcks struct {
	*Store
	fail  atomic.Int32 // how many more Acks fail
	tried atomic.Int32
}

func (f *failingAcks) Ack(ctx context.Context, claims []string) error {
	f.tried.Add(1)
	if f.fail.Add(-1) >= 0 {
		return errors.New("injected: connection reset")
	}
	return f.Store.Ack(ctx, claims)
}

// TestFailedAckRetried: acknowledgements that fail are retried until they
// land, and the claims are kept meanwhile: no ending runs twice although
// another manager sweeps the same store.
func TestFailedAckRetried(t *testing.T) {
	const n, lease = 200, 500 * time.Millisecond
	stores := storesOn(t, 2, WithLease(lease))
	expireSessions(t, stores[0], testKeys, n)

	flaky := &failingAcks{Store: stores[0]}
	flaky.fail.Store(5)
	log := newHookLog()
	m, err := sessions.NewManager(sessions.Config{Keys: testKeys, DisableAutoCleanup: true}, sessions.WithStore(flaky))
	require.NoError(t, err)
	defer m.Close()
	m.OnTerminate(log.hook(0))
	other, err := sessions.NewManager(sessions.Config{Keys: testKeys, CleanupInterval: 20 * time.Millisecond}, sessions.WithStore(stores[1]))
	require.NoError(t, err)
	defer other.Close()
	other.OnTerminate(log.hook(1))

	ended, err := m.Cleanup(t.Context())
	require.NoError(t, err)
	require.Equal(t, n, ended)
	require.Eventually(t, func() bool { return len(claimKeys(t, stores[0])) == 0 }, 10*time.Second, 10*time.Millisecond,
		"claims were never acknowledged")
	assert.Greater(t, flaky.tried.Load(), int32(5), "the failed acknowledgements were not retried")
	time.Sleep(2 * lease)
	require.NoError(t, other.Close())
	require.NoError(t, m.Close())
	log.requireOnce(t)
	require.Equal(t, n, log.len())
	for _, by := range log.by {
		require.Equal(t, []int{0}, by, "an ending went to the manager that did not claim it")
	}
}

// TestRotatedKeyClaimAcknowledged: sessions sealed under a key that has
// since been rotated out still end once: their claims need no key.
func TestRotatedKeyClaimAcknowledged(t *testing.T) {
	const n, lease = 50, 300 * time.Millisecond
	s := storesOn(t, 1, WithLease(lease))[0]
	oldKeys := [][]byte{bytes.Repeat([]byte{9}, 32)}
	expireSessions(t, s, oldKeys, n)

	var mu sync.Mutex
	var got []sessions.Event
	m, err := sessions.NewManager(sessions.Config{Keys: testKeys, CleanupInterval: 20 * time.Millisecond}, sessions.WithStore(s))
	require.NoError(t, err)
	defer m.Close()
	m.OnTerminate(func(ev sessions.Event) {
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
	})
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= n
	}, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return len(claimKeys(t, s)) == 0 }, 5*time.Second, 10*time.Millisecond,
		"claims of sessions sealed under a rotated key were never acknowledged")
	time.Sleep(3 * lease) // an unacknowledged claim would come back by now
	require.NoError(t, m.Close())
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, n, "endings of sessions under a rotated key ran more or less than once")
	for _, ev := range got {
		assert.Empty(t, ev.SessionID, "an ID unsealed without its key")
		assert.Equal(t, sessions.ReasonIdle, ev.Reason)
	}
}

// TestCloseFromAHookKeepsClaims: a hook that closes its manager while the
// hooks of a sweep are still queued; those hooks still run once, and their
// claims are acknowledged, not left to lapse to another manager.
func TestCloseFromAHookKeepsClaims(t *testing.T) {
	const n, lease = 300, 500 * time.Millisecond
	stores := storesOn(t, 2, WithLease(lease))
	expireSessions(t, stores[0], testKeys, n)

	log := newHookLog()
	m, err := sessions.NewManager(sessions.Config{Keys: testKeys, DisableAutoCleanup: true}, sessions.WithStore(stores[0]))
	require.NoError(t, err)
	hook := log.hook(0)
	var closing atomic.Bool
	m.OnTerminate(func(ev sessions.Event) {
		if closing.CompareAndSwap(false, true) {
			assert.NoError(t, m.Close()) // from the hook: does not wait for the queue
		}
		time.Sleep(time.Millisecond) // the queue outlives a lease
		hook(ev)
	})
	other, err := sessions.NewManager(sessions.Config{Keys: testKeys, CleanupInterval: 20 * time.Millisecond}, sessions.WithStore(stores[1]))
	require.NoError(t, err)
	defer other.Close()
	other.OnTerminate(log.hook(1))

	ended, err := m.Cleanup(t.Context())
	require.NoError(t, err)
	require.Equal(t, n, ended)
	require.Eventually(t, func() bool { return log.len() == n && len(claimKeys(t, stores[0])) == 0 },
		10*time.Second, 10*time.Millisecond, "hooks ran for %d of %d endings", log.len(), n)
	time.Sleep(2 * lease) // a claim left unacknowledged would be handed out again by now
	require.NoError(t, other.Close())
	require.NoError(t, m.Close())
	log.requireOnce(t)
	for _, by := range log.by {
		require.Equal(t, []int{0}, by, "an ending went to the manager that did not claim it")
	}
}
