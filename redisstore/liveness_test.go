package redisstore

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// fakeClock is a store clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestLivenessAtCallTime: Update and Activate of a session that expired
// before the call fail, although their at (its last activity) is before
// the deadline, and write nothing; before the deadline they record
// activity at at.
func TestLivenessAtCallTime(t *testing.T) {
	c := newClient(t)
	t0 := time.Now()
	clock := &fakeClock{now: t0}
	s := newStore(t, c, WithClock(clock.Now))
	ctx := t.Context()
	r := rec("xavier", time.Minute)
	r.CreatedAt, r.LastActivity = t0, t0
	_, err := s.Create(ctx, r, 0, sessions.EvictOldest)
	require.NoError(t, err)

	// Live at the call: activity is recorded at at, even in the past.
	clock.Add(30 * time.Second)
	require.NoError(t, s.Update(ctx, r.ID, t0.Add(10*time.Second), map[string][]byte{"a": []byte("1")}, nil))
	got, err := s.Load(ctx, r.ID)
	require.NoError(t, err)
	assert.WithinDuration(t, t0.Add(10*time.Second), got.LastActivity, time.Microsecond)

	// 150 ms past the deadline (t0+10s+1m): gone for every call, whatever at says.
	clock.Add(40*time.Second + 150*time.Millisecond)
	at := t0.Add(20 * time.Second)
	err = s.Update(ctx, r.ID, at, map[string][]byte{"a": []byte("2")}, nil)
	require.ErrorIs(t, err, sessions.ErrNotFound, "Update after the deadline with an earlier at")
	_, err = s.Activate(ctx, r.ID, at)
	require.ErrorIs(t, err, sessions.ErrNotFound, "Activate after the deadline with an earlier at")
	_, err = s.Load(ctx, r.ID)
	require.ErrorIs(t, err, sessions.ErrNotFound)
	_, err = s.Delete(ctx, r.ID)
	require.ErrorIs(t, err, sessions.ErrNotFound)

	// Nothing was written: the sweeper finds it due at its old deadline.
	k := s.userShard(hashUser("xavier"))
	v, err := c.HGet(ctx, s.key(k, "s:"+hashID(r.ID)), "v:a").Result()
	require.NoError(t, err)
	assert.Equal(t, "1", v)
	recs, err := s.Expired(ctx, clock.Now(), 10)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.WithinDuration(t, t0.Add(10*time.Second), recs[0].LastActivity, time.Microsecond)
}

// TestSaveAfterExpiry is the report: Session.Save 150 ms after the
// session expired fails with ErrNotFound instead of writing.
func TestSaveAfterExpiry(t *testing.T) {
	c := newClient(t)
	clock := &fakeClock{now: time.Now()}
	s := newStore(t, c, WithClock(clock.Now))
	m, err := sessions.NewManager(sessions.Config{Keys: testKeys, DisableAutoCleanup: true, IdleTimeout: time.Second}, sessions.WithStore(s))
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	ctx := t.Context()
	sess, err := m.Create(ctx, "yvonne", nil)
	require.NoError(t, err)
	clock.Add(time.Second + 150*time.Millisecond)
	sess.Set("late", true)
	require.ErrorIs(t, sess.Save(ctx), sessions.ErrNotFound)
	n, _, err := s.Count(ctx, clock.Now())
	require.NoError(t, err)
	assert.Zero(t, n)
}

// TestUpdateManyValues: an Update with more values, or more deletions, than
// Lua's unpack takes at once writes and deletes them all.
func TestUpdateManyValues(t *testing.T) {
	c := newClient(t)
	s := newStore(t, c)
	ctx := t.Context()
	r := rec("yves", time.Hour)
	_, err := s.Create(ctx, r, 0, sessions.EvictOldest)
	require.NoError(t, err)
	for _, n := range []int{10, 4100} {
		set := make(map[string][]byte, n)
		var del []string
		for i := range n {
			set[fmt.Sprint("k", i)] = []byte{byte(i)}
			del = append(del, fmt.Sprint("k", i), fmt.Sprint("gone", i))
		}
		require.NoError(t, s.Update(ctx, r.ID, time.Now(), set, nil), "%d values", n)
		got, err := s.Load(ctx, r.ID)
		require.NoError(t, err)
		assert.Len(t, got.Values, n+1, "%d values and the record's own", n)
		require.NoError(t, s.Update(ctx, r.ID, time.Now(), nil, del), "%d deletions", len(del))
		got, err = s.Load(ctx, r.ID)
		require.NoError(t, err)
		assert.Len(t, got.Values, 1, "after %d deletions", len(del))
	}
}
