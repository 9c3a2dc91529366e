package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
	"github.com/tokyopredictor/sessions/redisstore/internal/rediscluster"
)

// opResult is the outcome of one store call of the load.
type opResult struct {
	at time.Time // when it returned
	ok bool
}

// TestClusterFailoverRecovery kills a master of a 3+3 cluster under load
// (logins, reads, writes, logouts, sweeps from several goroutines) and
// measures how long after the kill the calls succeed again steadily. The
// client has go-redis's defaults (slot map reloaded every 60 s): the store
// itself must follow the failover, within twice the node timeout plus a
// second of slack (the replica's election alone takes 0.5-1 s after it
// learns that its master failed).
func TestClusterFailoverRecovery(t *testing.T) {
	rc, cc := startCluster3(t)
	s := newStore(t, cc)
	ctx := t.Context()

	const workers = 4
	var (
		mu      sync.Mutex
		results []opResult
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	record := func(err error) {
		mu.Lock()
		results = append(results, opResult{at: time.Now(), ok: err == nil})
		mu.Unlock()
	}
	call := func(f func(ctx context.Context) error) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		err := f(ctx)
		if errors.Is(err, sessions.ErrNotFound) {
			err = nil // a session that another worker's limit evicted
		}
		record(err)
		return err
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r := rec(fmt.Sprintf("user-%d-%d", w, i%50), time.Hour)
				if call(func(ctx context.Context) error {
					_, err := s.Create(ctx, r, 5, sessions.EvictOldest)
					return err
				}) != nil {
					continue
				}
				_ = call(func(ctx context.Context) error { _, err := s.Activate(ctx, r.ID, time.Now()); return err })
				_ = call(func(ctx context.Context) error {
					return s.Update(ctx, r.ID, time.Now(), map[string][]byte{"n": []byte("1")}, nil)
				})
				if i%2 == 0 {
					_ = call(func(ctx context.Context) error { _, err := s.Delete(ctx, r.ID); return err })
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // a sweeper
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			_ = call(func(ctx context.Context) error {
				recs, err := s.Expired(ctx, time.Now(), 100)
				if err != nil || len(recs) == 0 {
					return err
				}
				claims := make([]string, len(recs))
				for i, r := range recs {
					claims[i] = r.Claim
				}
				return s.Ack(ctx, claims)
			})
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	time.Sleep(time.Second) // steady load before the kill
	victim, err := rc.MasterOf(ctx, 0)
	require.NoError(t, err)
	replica, err := rc.ReplicaOf(ctx, victim)
	require.NoError(t, err)
	killAt := time.Now()
	require.NoError(t, rc.Kill(victim))
	// When the cluster itself has promoted the replica, as the surviving
	// nodes tell.
	promoted := make(chan time.Duration, 1)
	go func() {
		for time.Since(killAt) < 20*time.Second {
			if m, err := rc.MasterOf(ctx, 0); err == nil && m == replica {
				promoted <- time.Since(killAt)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		promoted <- -1
	}()
	// Run until the calls have succeeded for 3 s in a row, or 20 s.
	limit := killAt.Add(20 * time.Second)
	var lastFail time.Time
	for time.Now().Before(limit) {
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		for _, r := range results {
			if !r.ok && r.at.After(lastFail) {
				lastFail = r.at
			}
		}
		mu.Unlock()
		if time.Since(lastFail) > 3*time.Second && time.Since(killAt) > 3*time.Second {
			break
		}
	}
	close(stop)
	wg.Wait()

	var before, during, failed, after int
	for _, r := range results {
		switch {
		case r.at.Before(killAt):
			before++
		case !r.at.After(lastFail):
			during++
			if !r.ok {
				failed++
			}
		default:
			after++
		}
	}
	recovery := time.Duration(0)
	if !lastFail.IsZero() {
		recovery = lastFail.Sub(killAt)
	}
	promotedAfter := <-promoted
	t.Logf("node timeout %v; master %s killed: replica promoted after %v; calls failing for %v (%d of %d calls in that window failed); %d calls before, %d after, %d slot map reloads asked for",
		clusterNodeTimeout, victim, promotedAfter.Round(time.Millisecond), recovery.Round(time.Millisecond), failed, during, before, after, s.topo.reloads.Load())
	assert.Positive(t, before, "load before the kill")
	assert.Positive(t, after, "calls succeed after the failover")
	require.Positive(t, promotedAfter, "the replica was not promoted")
	// Within 2x the node timeout and a second of slack; on a machine so
	// loaded that the cluster itself took longer to promote the replica,
	// within a second of the promotion.
	bound := max(2*clusterNodeTimeout, promotedAfter) + time.Second
	assert.Less(t, recovery, bound, "calls failed from the kill until %v later (replica promoted after %v)", recovery, promotedAfter)
	assert.True(t, time.Since(lastFail) > 3*time.Second, "calls still failing at the end")
}

// TestClusterDurability logs in sessions on a 3+3 cluster, cuts a master's
// replica off (as when it lags), logs half of the sessions out from
// several goroutines and kills the master in the middle of the logouts.
// After the replica has taken over, with WithDurability every logout that
// returned success stays done and every login still works. Without it,
// the test reports how many were undone.
func TestClusterDurability(t *testing.T) {
	rc, cc := startCluster3(t)
	masters, err := rc.Masters(t.Context())
	require.NoError(t, err)
	require.Len(t, masters, 3)
	// With first: once a master has failed over, its slots have no replica
	// and no change there can be acknowledged.
	t.Run("With", func(t *testing.T) {
		f := failoverLogouts(t, rc, cc, masters[1], WithDurability(1, 500*time.Millisecond))
		t.Logf("with WithDurability(1, 500ms): %d of %d successful logouts undone, %d logins lost, %d logouts answered ErrNotDurable, after the failover of %s",
			f.undone, f.deleted, f.lost, f.notDurable, masters[1])
		assert.Zero(t, f.undone, "logouts undone")
		assert.Zero(t, f.lost, "logins lost")
		assert.Positive(t, f.notDurable, "logouts on the cut master are not acknowledged")
	})
	t.Run("Without", func(t *testing.T) {
		f := failoverLogouts(t, rc, cc, masters[0])
		t.Logf("without WithDurability: %d of %d successful logouts undone and %d logins lost after the failover of %s",
			f.undone, f.deleted, f.lost, masters[0])
	})
}

// failoverOutcome counts what failoverLogouts saw.
type failoverOutcome struct {
	deleted    int // deletes that returned success
	undone     int // of those, sessions live again after the failover
	lost       int // sessions created and not deleted, gone after it
	notDurable int // deletes that returned ErrNotDurable
}

// failoverLogouts creates sessions, cuts victim's replica off, deletes
// half of the sessions while it kills victim, waits for the failover and
// checks every session.
func failoverLogouts(t *testing.T, rc *rediscluster.Cluster, cc *redis.ClusterClient, victim string, opts ...Option) (f failoverOutcome) {
	ctx := t.Context()
	s := newStore(t, cc, opts...)
	const n, workers = 1200, 8
	ids := make([]string, n)
	created := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
				r := rec(fmt.Sprintf("u%d", rand.IntN(n)), time.Hour)
				ids[i] = r.ID
				// Before the failover a replica may still be slow to
				// acknowledge on a loaded machine: call again, as the
				// Manager does (the store answers with the first run).
				for try := 0; try < 10; try++ {
					if _, created[i] = s.Create(ctx, r, sessions.Unlimited, sessions.EvictOldest); !errors.Is(created[i], ErrNotDurable) {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	for i := range created {
		require.NoError(t, created[i], "login %d before the failover", i)
	}
	replica, err := rc.ReplicaOf(ctx, victim)
	require.NoError(t, err)
	require.NoError(t, rc.CutReplica(ctx, replica))

	// Log out the even ones; kill the master when a quarter are done.
	logout := make([]error, n)
	var done atomic.Int64
	next.Store(0)
	killed := make(chan struct{})
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; 2*i < n; i = next.Add(1) - 1 {
				ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, logout[2*i] = s.Delete(ctx, ids[2*i])
				cancel()
				if done.Add(1) == n/8 {
					close(killed)
				}
			}
		}()
	}
	<-killed
	require.NoError(t, rc.Kill(victim))
	wg.Wait()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, rc.WaitHealthy(wctx), "failover")

	// The store follows the failover; then every session is checked.
	check := func(i int) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := s.Load(ctx, ids[i])
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < n; i++ {
		err := check(i)
		for err != nil && !errors.Is(err, sessions.ErrNotFound) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			err = check(i)
		}
		switch {
		case err != nil && !errors.Is(err, sessions.ErrNotFound):
			t.Fatalf("session %d: %v", i, err)
		case i%2 == 0 && logout[i] == nil:
			f.deleted++
			if err == nil {
				f.undone++
			}
		case i%2 == 0 && errors.Is(logout[i], ErrNotDurable):
			f.notDurable++
		case i%2 == 1 && err != nil:
			f.lost++
		}
	}
	return f
}

// TestDurabilityNotAcknowledged checks that without enough replicas a
// change returns ErrNotDurable, and the option's validation.
func TestDurabilityNotAcknowledged(t *testing.T) {
	c := newClient(t) // a server without replicas
	ctx := t.Context()
	s := newStore(t, c, WithDurability(1, 20*time.Millisecond))
	r := rec("nora", time.Hour)
	start := time.Now()
	_, err := s.Create(ctx, r, 5, sessions.EvictOldest)
	require.ErrorIs(t, err, ErrNotDurable)
	assert.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond, "WAIT waited")
	// The change was made on the master, as the error says.
	_, err = s.Load(ctx, r.ID)
	require.NoError(t, err)
	_, err = s.Delete(ctx, r.ID)
	require.ErrorIs(t, err, ErrNotDurable)
	_, err = s.Load(ctx, r.ID)
	require.ErrorIs(t, err, sessions.ErrNotFound)

	// Zero replicas: WAIT returns at once.
	s0 := newStore(t, c, WithDurability(0, time.Second))
	_, err = s0.Create(ctx, rec("nora", time.Hour), 5, sessions.EvictOldest)
	require.NoError(t, err)

	for _, o := range []Option{WithDurability(-1, time.Second), WithDurability(1, 0), WithDurability(1, time.Microsecond)} {
		_, err := New(c, o)
		assert.Error(t, err)
	}
}

// TestDurabilityStandaloneReplica checks WithDurability on a standalone
// master with one replica: the calls succeed while the replica keeps up,
// and return ErrNotDurable while it is frozen.
func TestDurabilityStandaloneReplica(t *testing.T) {
	master := startRedis(t, "--repl-diskless-sync-delay", "0")
	host, port, err := net.SplitHostPort(master.addr)
	require.NoError(t, err)
	replica := startRedis(t, "--replicaof", host, port)
	mcl := redis.NewClient(&redis.Options{Addr: master.addr})
	defer mcl.Close()
	ctx := t.Context()
	require.Eventually(t, func() bool {
		// Online once it has sent its first acknowledgement.
		info, err := mcl.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "state=online")
	}, 10*time.Second, 20*time.Millisecond, "replica in sync")

	c := redis.NewClient(&redis.Options{Addr: master.addr})
	t.Cleanup(func() { _ = c.Close() })                   // after newStore's cleanup
	s := newStore(t, c, WithDurability(1, 2*time.Second)) // generous: a loaded machine
	r := rec("rita", time.Hour)
	_, err = s.Create(ctx, r, 5, sessions.EvictOldest)
	require.NoError(t, err)
	_, err = s.Delete(ctx, r.ID)
	require.NoError(t, err)

	require.NoError(t, replica.stop())
	defer func() { _ = replica.cont() }()
	short, err := New(c, WithPrefix(s.o.prefix), WithDurability(1, 300*time.Millisecond))
	require.NoError(t, err)
	r2 := rec("rita", time.Hour)
	start := time.Now()
	_, err = short.Create(ctx, r2, 5, sessions.EvictOldest)
	require.ErrorIs(t, err, ErrNotDurable)
	assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	require.NoError(t, replica.cont())
	_, err = s.Delete(ctx, r2.ID)
	require.NoError(t, err, "acknowledged once the replica is back")
}
