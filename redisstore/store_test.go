package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

func TestNewRejectsBadOptions(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: testAddr})
	t.Cleanup(func() { _ = c.Close() })
	for name, opt := range map[string]Option{
		"brace prefix":  WithPrefix("a{b"),
		"no shards":     WithShards(0),
		"many shards":   WithShards(5000),
		"no lease":      WithLease(0),
		"no grace":      WithGrace(0),
		"wide window":   WithTouchWindow(0.06),
		"negative win":  WithTouchWindow(-0.01),
		"no sweep size": WithSweepBatch(0),
		"nil clock":     WithClock(nil),
		"negative seen": WithSeen(-1),
		"huge seen":     WithSeen(1<<26 + 1),
	} {
		_, err := New(c, opt)
		assert.Error(t, err, name)
	}
	_, err := New(nil)
	assert.Error(t, err)
	s, err := New(c)
	require.NoError(t, err)
	assert.Equal(t, DefaultPrefix, s.o.prefix)
}

// storesOn returns n stores with the same prefix, each on its own client.
func storesOn(t *testing.T, n int, opts ...Option) []*Store {
	t.Helper()
	first := newClient(t)
	prefix := newPrefix(t, first)
	stores := make([]*Store, n)
	for i := range stores {
		c := first
		if i > 0 {
			c = newClient(t)
		}
		s, err := New(c, append([]Option{WithPrefix(prefix)}, opts...)...)
		require.NoError(t, err)
		stores[i] = s
	}
	return stores
}

// TestAtomicLimit runs 64 concurrent Creates for one user over three
// clients: exactly the limit stays live, and every other session is
// reported once (evicted) or rejected.
func TestAtomicLimit(t *testing.T) {
	for name, policy := range map[string]sessions.LimitPolicy{"EvictOldest": sessions.EvictOldest, "RejectNew": sessions.RejectNew} {
		t.Run(name, func(t *testing.T) {
			const limit, n = 5, 64
			stores := storesOn(t, 3)
			ctx := t.Context()
			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				removed  = map[string]int{}
				rejected int
				created  = map[string]bool{}
			)
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					r := rec("alice", time.Hour)
					got, err := stores[i%3].Create(ctx, r, limit, policy)
					mu.Lock()
					defer mu.Unlock()
					for _, g := range got {
						removed[string(g.SealedID)]++
					}
					switch {
					case errors.Is(err, sessions.ErrLimitReached):
						rejected++
					case err != nil:
						t.Errorf("Create: %v", err)
					default:
						created[string(r.SealedID)] = true
					}
				})
			}
			close(start)
			wg.Wait()

			live, err := stores[0].UserSessions(ctx, "alice")
			require.NoError(t, err)
			require.Len(t, live, limit)
			for _, r := range live {
				assert.True(t, created[string(r.SealedID)], "a live session was never created")
				assert.Zero(t, removed[string(r.SealedID)], "a live session was reported removed")
			}
			for id, times := range removed {
				assert.Equal(t, 1, times, "removal of %x reported %d times", id, times)
			}
			if policy == sessions.RejectNew {
				assert.Equal(t, n-limit, rejected)
				assert.Empty(t, removed)
			} else {
				assert.Zero(t, rejected)
				assert.Len(t, removed, n-limit)
			}
			nSessions, users, err := stores[1].Count(ctx, time.Now())
			require.NoError(t, err)
			assert.Equal(t, limit, nSessions)
			assert.Equal(t, 1, users)
		})
	}
}

// TestEvictsLeastRecentlyActive checks the order of evictions.
func TestEvictsLeastRecentlyActive(t *testing.T) {
	s := newStore(t, newClient(t))
	ctx := t.Context()
	base := time.Now()
	var recs []sessions.Record
	for i := range 3 {
		r := rec("bob", time.Hour)
		r.LastActivity = base.Add(time.Duration(i) * time.Minute)
		_, err := s.Create(ctx, r, 3, sessions.EvictOldest)
		require.NoError(t, err)
		recs = append(recs, r)
	}
	// Make the first the most recent.
	_, err := s.Activate(ctx, recs[0].ID, base.Add(10*time.Minute))
	require.NoError(t, err)
	removed, err := s.Create(ctx, rec("bob", time.Hour), 3, sessions.EvictOldest)
	require.NoError(t, err)
	require.Len(t, removed, 1)
	assert.Equal(t, recs[1].SealedID, removed[0].SealedID)
}

// TestExpiredExactlyOnce has three claimers on three clients sweep
// thousands of expired sessions at once: each is returned exactly once.
func TestExpiredExactlyOnce(t *testing.T) {
	const n = 3000
	stores := storesOn(t, 3, WithSweepBatch(100))
	ctx := t.Context()
	past := time.Now().Add(-time.Hour)
	want := map[string]string{} // sealed → ID
	// Fill with a pipeline of Creates through one store.
	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				r := rec(fmt.Sprintf("user%d", i%500), time.Minute)
				r.LastActivity = past
				r.CreatedAt = past
				if i%3 == 0 {
					r.UserID = ""
				}
				_, err := stores[0].Create(ctx, r, 0, sessions.EvictOldest)
				assert.NoError(t, err)
				mu.Lock()
				want[string(r.SealedID)] = r.ID
				mu.Unlock()
			}
		})
	}
	// And a few live ones that must not be claimed.
	for range 20 {
		_, err := stores[0].Create(ctx, rec("live", time.Hour), 0, sessions.EvictOldest)
		require.NoError(t, err)
	}
	wg.Wait()
	require.Len(t, want, n)

	got := map[string]int{}
	now := time.Now()
	for _, s := range stores {
		wg.Go(func() {
			for {
				recs, err := s.Expired(ctx, now, 50)
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				for _, r := range recs {
					got[string(r.SealedID)]++
					assert.True(t, r.Expired(now))
				}
				mu.Unlock()
				assert.NoError(t, s.Ack(ctx, claimsOf(recs)))
				if len(recs) == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	require.Len(t, got, n)
	for id, times := range got {
		require.Equal(t, 1, times, "%x claimed %d times", id, times)
		require.Contains(t, want, id)
	}
	sessionsN, users, err := stores[2].Count(ctx, time.Now())
	require.NoError(t, err)
	assert.Equal(t, 20, sessionsN)
	assert.Equal(t, 1, users)
	// Everything acknowledged: only the live sessions' keys are left.
	for _, key := range keysUnder(t, stores[0].c, stores[0].o.prefix) {
		assert.NotContains(t, key, "}:c:")
		assert.NotContains(t, key, "}:l")
	}
}

// TestLeaseRedelivery: a claim not acknowledged is returned again after the
// lease, to another store; an acknowledged one never.
func TestLeaseRedelivery(t *testing.T) {
	const lease = 300 * time.Millisecond
	stores := storesOn(t, 3, WithLease(lease))
	ctx := t.Context()
	r1, r2 := rec("carol", time.Millisecond), rec("", time.Millisecond)
	for _, r := range []sessions.Record{r1, r2} {
		_, err := stores[0].Create(ctx, r, 5, sessions.EvictOldest)
		require.NoError(t, err)
	}
	now := time.Now().Add(time.Second)
	claimed, err := stores[0].Expired(ctx, now, 10)
	require.NoError(t, err)
	require.Len(t, claimed, 2)
	// The claimer "dies": no Ack. Before the lease, nobody gets them.
	again, err := stores[1].Expired(ctx, now.Add(lease/2), 10)
	require.NoError(t, err)
	require.Empty(t, again)
	// After the lease the other store gets both.
	again, err = stores[1].Expired(ctx, now.Add(lease+time.Millisecond), 10)
	require.NoError(t, err)
	require.Len(t, again, 2)
	// Acknowledged by a store that did not claim them (it must find them).
	require.NoError(t, stores[2].Ack(ctx, claimsOf(again)))
	// Acknowledged: never again, and the late Ack of the dead claimer is
	// not an error.
	again, err = stores[0].Expired(ctx, now.Add(10*lease), 10)
	require.NoError(t, err)
	require.Empty(t, again)
	require.NoError(t, stores[0].Ack(ctx, claimsOf(claimed)))
	require.NoError(t, stores[1].Ack(ctx, claimsOf(again)))
	assert.Empty(t, keysUnder(t, stores[0].c, stores[0].o.prefix), "keys left after Ack")
}

// TestNoResurrection races Update and Activate with Delete, DeleteUser and
// Expired claims: a session once ended never comes back.
func TestNoResurrection(t *testing.T) {
	stores := storesOn(t, 2)
	ctx := t.Context()
	for i := range 200 {
		r := rec("dave", time.Hour)
		_, err := stores[0].Create(ctx, r, 0, sessions.EvictOldest)
		require.NoError(t, err)
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			<-start
			for j := range 5 {
				err := stores[0].Update(ctx, r.ID, time.Now(), map[string][]byte{fmt.Sprint("k", j): []byte("x")}, []string{"k"})
				if err != nil {
					assert.ErrorIs(t, err, sessions.ErrNotFound)
				}
				_, err = stores[0].Activate(ctx, r.ID, time.Now().Add(time.Duration(j)*time.Minute))
				if err != nil {
					assert.ErrorIs(t, err, sessions.ErrNotFound)
				}
			}
		})
		wg.Go(func() {
			<-start
			var err error
			switch i % 3 {
			case 0:
				_, err = stores[1].Delete(ctx, r.ID)
			case 1:
				var recs []sessions.Record
				recs, err = stores[1].DeleteUser(ctx, "dave")
				assert.Len(t, recs, 1)
			case 2:
				// End it by expiry: claim it as if its deadline had passed.
				var recs []sessions.Record
				recs, err = stores[1].Expired(ctx, time.Now().Add(1000*time.Hour), 10)
				assert.Len(t, recs, 1)
				assert.NoError(t, stores[1].Ack(ctx, claimsOf(recs)))
			}
			assert.NoError(t, err)
		})
		close(start)
		wg.Wait()
		_, err = stores[0].Load(ctx, r.ID)
		require.ErrorIs(t, err, sessions.ErrNotFound)
		require.ErrorIs(t, stores[0].Update(ctx, r.ID, time.Now(), map[string][]byte{"z": nil}, nil), sessions.ErrNotFound)
		require.Empty(t, keysUnder(t, stores[0].c, stores[0].o.prefix), "keys left after the session ended (round %d)", i)
	}
}

// TestPhantomRepair deletes a session key behind the store's back: it is
// not listed, not counted and does not count toward the limit, and its
// index entries go away.
func TestPhantomRepair(t *testing.T) {
	c := newClient(t)
	s := newStore(t, c)
	ctx := t.Context()
	var recs []sessions.Record
	for range 3 {
		r := rec("erin", time.Hour)
		_, err := s.Create(ctx, r, 3, sessions.RejectNew)
		require.NoError(t, err)
		recs = append(recs, r)
	}
	anon := rec("", time.Hour)
	_, err := s.Create(ctx, anon, 3, sessions.RejectNew)
	require.NoError(t, err)

	h := hashID(recs[0].ID)
	uh := hashUser("erin")
	k := s.userShard(uh)
	require.EqualValues(t, 1, c.Del(ctx, s.key(k, "s:"+h)).Val())
	ha := hashID(anon.ID)
	ka, _ := s.shardOf(anon.ID)
	require.EqualValues(t, 1, c.Del(ctx, s.key(ka, "s:"+ha)).Val())

	n, users, err := s.Count(ctx, time.Now())
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Equal(t, 1, users)
	all, err := s.All(ctx)
	require.NoError(t, err)
	assert.Len(t, all, 2)
	_, err = s.Load(ctx, recs[0].ID)
	require.ErrorIs(t, err, sessions.ErrNotFound)
	_, err = s.Load(ctx, anon.ID)
	require.ErrorIs(t, err, sessions.ErrNotFound)
	list, err := s.UserSessions(ctx, "erin")
	require.NoError(t, err)
	assert.Len(t, list, 2)

	// The phantom does not take a slot of the limit.
	_, err = s.Create(ctx, rec("erin", time.Hour), 3, sessions.RejectNew)
	require.NoError(t, err)
	_, err = s.Create(ctx, rec("erin", time.Hour), 3, sessions.RejectNew)
	require.ErrorIs(t, err, sessions.ErrLimitReached)

	// Its index entries are gone.
	assert.Zero(t, c.ZScore(ctx, s.key(k, "u:"+uh), h).Val())
	assert.ErrorIs(t, c.ZScore(ctx, s.key(k, "e"), h).Err(), redis.Nil)
	assert.ErrorIs(t, c.ZScore(ctx, s.key(ka, "e"), ha).Err(), redis.Nil)

	// A phantom found by the sweeper is dropped, not returned.
	r := rec("frank", time.Hour)
	_, err = s.Create(ctx, r, 3, sessions.RejectNew)
	require.NoError(t, err)
	hr := hashID(r.ID)
	require.EqualValues(t, 1, c.Del(ctx, s.key(s.userShard(hashUser("frank")), "s:"+hr)).Val())
	got, err := s.Expired(ctx, time.Now().Add(2*time.Hour), 100)
	require.NoError(t, err)
	assert.Len(t, got, 3, "the three live sessions of erin, not the phantom of frank")
}

// roundTrips returns how many round trips f made through the counter.
func roundTrips(cnt *counter, f func()) int64 {
	before := cnt.n.Load()
	f()
	return cnt.n.Load() - before
}

// TestRoundTrips counts the commands each hot-path method sends.
func TestRoundTrips(t *testing.T) {
	c := newClient(t)
	cnt := &counter{}
	c.AddHook(cnt)
	s := newStore(t, c)
	ctx := t.Context()
	r := rec("gina", time.Hour)
	// Warm up: load every script into the server's cache.
	warm := rec("gina", time.Hour)
	_, err := s.Create(ctx, warm, 5, sessions.EvictOldest)
	require.NoError(t, err)
	_, _ = s.Load(ctx, warm.ID)
	_, _ = s.Activate(ctx, warm.ID, time.Now().Add(10*time.Minute))
	_ = s.Update(ctx, warm.ID, time.Now(), nil, nil)
	_, _ = s.Delete(ctx, warm.ID)

	assert.EqualValues(t, 1, roundTrips(cnt, func() {
		_, err := s.Create(ctx, r, 5, sessions.EvictOldest)
		require.NoError(t, err)
	}), "Create")
	assert.EqualValues(t, 1, roundTrips(cnt, func() {
		_, err := s.Load(ctx, r.ID)
		require.NoError(t, err)
	}), "Load")
	// API.md: a read-only request that finds its session costs at most
	// one round trip, whether or not it writes the activity, and whether
	// or not this process has seen the session before.
	fresh := newStore(t, c, WithPrefix(s.o.prefix))
	assert.EqualValues(t, 1, roundTrips(cnt, func() {
		_, err := fresh.Activate(ctx, r.ID, time.Now())
		require.NoError(t, err)
	}), "Activate by a Store that never saw the session")
	assert.EqualValues(t, 1, roundTrips(cnt, func() {
		_, err := s.Activate(ctx, r.ID, time.Now())
		require.NoError(t, err)
	}), "Activate, coalesced")
	assert.EqualValues(t, 1, roundTrips(cnt, func() {
		_, err := s.Activate(ctx, r.ID, time.Now().Add(10*time.Minute))
		require.NoError(t, err)
	}), "Activate that writes (once per touch window)")
	a, err := c.HGet(ctx, s.key(s.userShard(hashUser("gina")), "s:"+hashID(r.ID)), "a").Int64()
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(10*time.Minute), time.Unix(0, a), time.Second, "written")
	assert.EqualValues(t, 1, roundTrips(cnt, func() {
		_, err := fresh.Activate(ctx, r.ID, time.Now().Add(12*time.Minute))
		require.NoError(t, err)
	}), "Activate by a Store that saw an older activity (another process wrote since)")
	assert.EqualValues(t, 1, roundTrips(cnt, func() {
		require.NoError(t, s.Update(ctx, r.ID, time.Now(), map[string][]byte{"a": []byte("1")}, []string{"k"}))
	}), "Update")
	assert.EqualValues(t, 1, roundTrips(cnt, func() {
		_, err := s.Load(ctx, newID())
		require.ErrorIs(t, err, sessions.ErrNotFound)
	}), "Load miss")
	assert.EqualValues(t, 1, roundTrips(cnt, func() {
		_, err := s.Delete(ctx, r.ID)
		require.NoError(t, err)
	}), "Delete")
	assert.EqualValues(t, 1, roundTrips(cnt, func() {
		_, _, err := s.Count(ctx, time.Now())
		require.NoError(t, err)
	}), "Count")
	assert.EqualValues(t, 1, roundTrips(cnt, func() {
		_, err := s.Expired(ctx, time.Now(), 10)
		require.NoError(t, err)
	}), "Expired with nothing due")
}

// TestActivityCoalesced checks that Activate writes only when the stored
// activity lags by 5% of the idle timeout or more, and that what is stored
// never lags more, with two Stores taking turns.
func TestActivityCoalesced(t *testing.T) {
	c := newClient(t)
	s := newStore(t, c)
	ctx := t.Context()
	const idle = 100 * time.Minute // 5% is 5 minutes
	r := rec("hank", idle)
	_, err := s.Create(ctx, r, 5, sessions.EvictOldest)
	require.NoError(t, err)
	// Two Stores take turns, as two processes would: each knows only what
	// it saw of the stored activity, which the other moves on.
	stores := []*Store{s, newStore(t, c, WithPrefix(s.o.prefix))}
	reader := newStore(t, c, WithPrefix(s.o.prefix))
	stored := func() time.Time {
		got, err := reader.Load(ctx, r.ID)
		require.NoError(t, err)
		return got.LastActivity
	}
	t0 := r.LastActivity
	for i, step := range []struct {
		at   time.Duration
		want time.Duration // stored activity after Activate at t0+at
	}{
		{time.Minute, 0},
		{4*time.Minute + 59*time.Second, 0},
		{5 * time.Minute, 5 * time.Minute},
		{9 * time.Minute, 5 * time.Minute},
		{9*time.Minute + 59*time.Second, 5 * time.Minute},
		{10 * time.Minute, 10 * time.Minute},
		{20 * time.Minute, 20 * time.Minute},
		{10 * time.Minute, 20 * time.Minute}, // never back
		{24 * time.Minute, 20 * time.Minute},
		{25 * time.Minute, 25 * time.Minute},
	} {
		got, err := stores[i%2].Activate(ctx, r.ID, t0.Add(step.at))
		require.NoError(t, err)
		assert.True(t, got.LastActivity.Equal(t0.Add(step.at)), "Activate returns at")
		assert.WithinDuration(t, t0.Add(step.want), stored(), time.Millisecond, "after Activate at +%v", step.at)
		assert.LessOrEqual(t, step.at-step.want, idle/20, "lag")
	}
	// The deadline follows the stored activity: the sweeper sees it.
	got, err := s.Expired(ctx, t0.Add(25*time.Minute+idle-time.Second), 10)
	require.NoError(t, err)
	assert.Empty(t, got)
	got, err = s.Expired(ctx, t0.Add(25*time.Minute+idle), 10)
	require.NoError(t, err)
	assert.Len(t, got, 1)
}

// TestNoRawIDs checks that no key, member or value in Redis holds a
// session ID, and that every per-session key has a TTL.
func TestNoRawIDs(t *testing.T) {
	c := newClient(t)
	s := newStore(t, c)
	ctx := t.Context()
	var ids []string
	for i := range 10 {
		user := ""
		if i%2 == 0 {
			user = "ivy"
		}
		r := rec(user, time.Hour)
		_, err := s.Create(ctx, r, 0, sessions.EvictOldest)
		require.NoError(t, err)
		require.NoError(t, s.Update(ctx, r.ID, time.Now(), map[string][]byte{"x": []byte("y")}, nil))
		ids = append(ids, r.ID)
	}
	expired := rec("ivy", time.Millisecond)
	_, err := s.Create(ctx, expired, 0, sessions.EvictOldest)
	require.NoError(t, err)
	ids = append(ids, expired.ID)
	_, err = s.Expired(ctx, time.Now().Add(time.Second), 10) // leaves a claim
	require.NoError(t, err)

	var dump strings.Builder
	for _, key := range keysUnder(t, c, s.o.prefix) {
		dump.WriteString(key + "\n")
		typ := c.Type(ctx, key).Val()
		switch typ {
		case "hash":
			for f, v := range c.HGetAll(ctx, key).Val() {
				dump.WriteString(f + "=" + v + "\n")
			}
		case "zset":
			for _, m := range c.ZRange(ctx, key, 0, -1).Val() {
				dump.WriteString(m + "\n")
			}
		case "string":
			dump.WriteString(c.Get(ctx, key).Val() + "\n")
		default:
			t.Fatalf("unexpected key type %s of %s", typ, key)
		}
		ttl := c.PTTL(ctx, key).Val()
		if strings.HasSuffix(key, "}:e") || strings.HasSuffix(key, "}:l") {
			continue // the shard indexes: empty ones vanish
		}
		assert.Positive(t, ttl, "key %s has no TTL", key)
	}
	for _, id := range ids {
		assert.NotContains(t, dump.String(), id)
	}
	assert.Contains(t, dump.String(), hashID(ids[0]))
}

// TestClock: methods without a time argument go by the store's clock.
func TestClock(t *testing.T) {
	c := newClient(t)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := newStore(t, c, WithClock(clock))
	ctx := t.Context()
	r := rec("jack", time.Minute)
	_, err := s.Create(ctx, r, 5, sessions.EvictOldest)
	require.NoError(t, err)
	_, err = s.Load(ctx, r.ID)
	require.NoError(t, err)
	mu.Lock()
	now = now.Add(time.Minute + time.Second)
	mu.Unlock()
	_, err = s.Load(ctx, r.ID)
	require.ErrorIs(t, err, sessions.ErrNotFound)
	_, err = s.Delete(ctx, r.ID)
	require.ErrorIs(t, err, sessions.ErrNotFound, "an expired session is left to the sweeper")
	list, err := s.UserSessions(ctx, "jack")
	require.NoError(t, err)
	assert.Empty(t, list)
	got, err := s.Expired(ctx, now, 10)
	require.NoError(t, err)
	assert.Len(t, got, 1)
}

// TestStoreFailure: a server that does not answer is an error, never
// ErrNotFound.
func TestStoreFailure(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	s, err := New(c)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = s.Load(ctx, newID())
	require.Error(t, err)
	require.NotErrorIs(t, err, sessions.ErrNotFound)
	_, err = s.Activate(ctx, newID(), time.Now())
	require.NotErrorIs(t, err, sessions.ErrNotFound)
	require.Error(t, err)
	err = s.Update(ctx, newID(), time.Now(), nil, nil)
	require.Error(t, err)
	require.NotErrorIs(t, err, sessions.ErrNotFound)
}

// TestExpiredSkipsPhantoms: index entries of keys deleted behind the
// store's back do not hide an expired session from a small Expired call.
func TestExpiredSkipsPhantoms(t *testing.T) {
	c := newClient(t)
	s := newStore(t, c, WithShards(1))
	ctx := t.Context()
	past := time.Now().Add(-time.Hour)
	for i := range 11 {
		r := rec("quinn", time.Minute)
		r.LastActivity = past.Add(time.Duration(i) * time.Second) // the real one is due last
		_, err := s.Create(ctx, r, 0, sessions.EvictOldest)
		require.NoError(t, err)
		if i < 10 {
			require.EqualValues(t, 1, c.Del(ctx, s.key("0", "s:"+hashID(r.ID))).Val())
		}
	}
	got, err := s.Expired(ctx, time.Now(), 3)
	require.NoError(t, err)
	assert.Len(t, got, 1)
	n, _, err := s.Count(ctx, past)
	require.NoError(t, err)
	assert.Zero(t, n)
}

// cmdNames records the names of the commands a client sends.
type cmdNames struct {
	mu    sync.Mutex
	names []string
}

func (h *cmdNames) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *cmdNames) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.mu.Lock()
		h.names = append(h.names, cmd.Name())
		h.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (h *cmdNames) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// last returns the name of the last command sent.
func (h *cmdNames) last() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.names[len(h.names)-1]
}

// TestSeen: Activate reads with a plain HGETALL only the sessions the
// Store remembers (WithSeen) seeing with a recent activity, and with the
// script any other, so a Store that remembers none runs the script for
// every Activate.
func TestSeen(t *testing.T) {
	c := newClient(t)
	names := &cmdNames{}
	c.AddHook(names)
	ctx := t.Context()
	for _, n := range []int{0, 2} {
		s := newStore(t, c, WithSeen(n))
		var recs []sessions.Record
		for range 3 {
			r := rec("sam", time.Hour)
			_, err := s.Create(ctx, r, 0, sessions.EvictOldest)
			require.NoError(t, err)
			recs = append(recs, r)
		}
		activate := func(r sessions.Record) string {
			_, err := s.Activate(ctx, r.ID, time.Now())
			require.NoError(t, err)
			return names.last()
		}
		assert.Equal(t, "evalsha", activate(recs[0]), "WithSeen(%d): a session not seen yet", n)
		_, err := s.Load(ctx, recs[1].ID)
		require.NoError(t, err)
		if n == 0 {
			assert.Equal(t, "evalsha", activate(recs[0]), "WithSeen(0): seen, not remembered")
			assert.Empty(t, s.seen)
			continue
		}
		assert.Equal(t, "hgetall", activate(recs[0]), "seen")
		assert.Equal(t, "hgetall", activate(recs[1]), "seen by Load")
		_, err = s.Load(ctx, recs[2].ID) // a third: the memory of two starts over
		require.NoError(t, err)
		assert.Equal(t, "evalsha", activate(recs[0]), "forgotten")
		assert.Equal(t, "hgetall", activate(recs[2]), "remembered")
		assert.LessOrEqual(t, len(s.seen), n)
	}
}
