package pgstore

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// TestManagersAtomicLimit: 64 concurrent Creates for one user over three
// managers, each on its own pool (as three processes), with limit 3:
// exactly 3 live at the end, and each eviction's hooks ran once.
func TestManagersAtomicLimit(t *testing.T) {
	for name, policy := range map[string]sessions.LimitPolicy{"EvictOldest": sessions.EvictOldest, "RejectNew": sessions.RejectNew} {
		t.Run(name, func(t *testing.T) {
			const limit, n = 3, 64
			c := newCluster(t, 3, sessions.Config{
				IdleTimeout: time.Hour, MaxSessionsPerUser: limit, LimitPolicy: policy, DisableAutoCleanup: true,
			})
			ctx := t.Context()
			var wg sync.WaitGroup
			var rejected atomic.Int64
			var mu sync.Mutex
			var created []string
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					s, err := c.ms[i%3].Create(ctx, "alice", map[string]any{"n": i})
					if errors.Is(err, sessions.ErrLimitReached) {
						rejected.Add(1)
						return
					}
					if assert.NoError(t, err) {
						mu.Lock()
						created = append(created, s.ID())
						mu.Unlock()
					}
				})
			}
			close(start)
			wg.Wait()
			live, err := c.ms[1].UserSessions(ctx, "alice")
			require.NoError(t, err)
			require.Len(t, live, limit)
			st := c.ms[2].Stats()
			require.NoError(t, st.Err)
			assert.Equal(t, limit, st.ActiveSessions)
			assert.Equal(t, 1, st.UniqueUsers)

			c.close() // waits for the hooks
			c.log.requireOnce(t)
			for _, s := range live {
				assert.Contains(t, created, s.ID())
				assert.NotContains(t, c.log.events, s.ID(), "a live session's ending was reported")
			}
			assert.Empty(t, c.tr.errorCodes(), "server errors")
			if policy == sessions.RejectNew {
				assert.EqualValues(t, n-limit, rejected.Load())
				assert.Zero(t, c.log.len())
				return
			}
			assert.Zero(t, rejected.Load())
			require.Equal(t, n-limit, c.log.len())
			for id, evs := range c.log.events {
				assert.Contains(t, created, id)
				assert.Equal(t, sessions.ReasonEvicted, evs[0].Reason)
				assert.Equal(t, "alice", evs[0].UserID)
				assert.Contains(t, evs[0].Data, "n")
			}
		})
	}
}

// TestMiddlewareFlow logs in through one process and uses the session
// through another, as behind a load balancer: data written in one request
// is read by the next, concurrent requests changing different keys lose
// nothing, a new login renews the ID and logout ends the session for all.
func TestMiddlewareFlow(t *testing.T) {
	c := newCluster(t, 2, sessions.Config{IdleTimeout: time.Hour, Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true})
	a, b := newApp(t, c.ms[0]), newApp(t, c.ms[1])
	apps := []*app{a, b}

	cookie := a.do(t, "/login?user=lena", nil).cookie(t)
	assert.Equal(t, "lena name=lena", b.do(t, "/read", cookie).body)
	require.Equal(t, http.StatusOK, a.do(t, "/set?k=color&v=blue", cookie).code)
	assert.Equal(t, "lena color=blue name=lena", b.do(t, "/read", cookie).body)

	var wg sync.WaitGroup
	const writers = 24
	for i := range writers {
		wg.Go(func() {
			res, err := apps[i%2].try(t, fmt.Sprintf("/set?k=k%02d&v=%d", i, i), cookie)
			if assert.NoError(t, err) {
				assert.Equal(t, http.StatusOK, res.code)
			}
		})
	}
	wg.Wait()
	got := b.do(t, "/read", cookie).body
	for i := range writers {
		assert.Contains(t, got, fmt.Sprintf(" k%02d=%d", i, i), "lost update")
	}
	assert.Contains(t, got, "color=blue")

	newCookie := b.do(t, "/login?user=lena", cookie).cookie(t)
	assert.NotEqual(t, cookie.Value, newCookie.Value)
	old := a.do(t, "/read", cookie)
	assert.Equal(t, "anonymous", old.body)
	assert.True(t, old.expiresCookie())
	assert.True(t, a.do(t, "/logout", newCookie).expiresCookie())
	assert.Equal(t, "anonymous", b.do(t, "/read", newCookie).body)

	c.close()
	c.log.requireOnce(t)
	var reasons []sessions.Reason
	for _, evs := range c.log.events {
		reasons = append(reasons, evs[0].Reason)
	}
	assert.ElementsMatch(t, []sessions.Reason{sessions.ReasonRenewed, sessions.ReasonLogout}, reasons)
}

// TestMiddlewareRoundTrips counts round trips to PostgreSQL: a request that
// reads its session costs one, one that changes data one more, one without
// a cookie none.
func TestMiddlewareRoundTrips(t *testing.T) {
	c := newCluster(t, 1, sessions.Config{IdleTimeout: time.Hour, Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true})
	a := newApp(t, c.ms[0])
	cookie := a.do(t, "/login?user=mia", nil).cookie(t)
	// Warm up: every statement prepared on every connection of the pool.
	for range 8 {
		a.do(t, "/set?k=warm&v=up", cookie)
		a.do(t, "/read", cookie)
	}
	trips := &c.tr.trips
	before := trips.Load()
	assert.Equal(t, "mia name=mia warm=up", a.do(t, "/read", cookie).body)
	assert.EqualValues(t, 1, trips.Load()-before, "read request")
	before = trips.Load()
	assert.Equal(t, http.StatusOK, a.do(t, "/set?k=x&v=1", cookie).code)
	assert.EqualValues(t, 2, trips.Load()-before, "write request")
	before = trips.Load()
	assert.Equal(t, "anonymous", a.do(t, "/read", nil).body)
	assert.EqualValues(t, 0, trips.Load()-before, "request without a cookie")
	before = trips.Load()
	cookie2 := a.do(t, "/login?user=mia", nil).cookie(t)
	assert.EqualValues(t, 1, trips.Load()-before, "login (Create with a limit)")
	require.NotNil(t, cookie2)
}

// TestNoRawIDs: after logins, writes and reads, neither a raw session ID
// nor its text appears anywhere in the table; the key is SHA-256 of it.
func TestNoRawIDs(t *testing.T) {
	p := newPool(t)
	s := newStore(t, p)
	m, err := sessions.NewManager(sessions.Config{Keys: testKeys, IdleTimeout: time.Hour, DisableAutoCleanup: true}, sessions.WithStore(s))
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	ctx := t.Context()
	var ids []string
	for i := range 5 {
		sess, err := m.Create(ctx, fmt.Sprint("user", i%2), map[string]any{"i": i})
		require.NoError(t, err)
		sess.Set("more", "data")
		require.NoError(t, sess.Save(ctx))
		require.NoError(t, m.Touch(ctx, sess.ID()))
		ids = append(ids, sess.ID())
	}
	rows, err := p.Query(ctx, "SELECT t::text, key FROM "+pgx.Identifier{s.table}.Sanitize()+" t")
	require.NoError(t, err)
	keys := map[string]bool{}
	n := 0
	for rows.Next() {
		var text string
		var key []byte
		require.NoError(t, rows.Scan(&text, &key))
		n++
		keys[string(key)] = true
		for _, id := range ids {
			assert.NotContains(t, text, id)
			assert.NotContains(t, text, fmt.Sprintf("%x", id))
		}
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, len(ids), n)
	for _, id := range ids {
		assert.True(t, keys[string(hashID(id))], "the key is SHA-256 of the ID")
	}
	all, err := s.All(ctx)
	require.NoError(t, err)
	for _, r := range all {
		assert.Empty(t, r.ID)
		assert.NotEmpty(t, r.SealedID)
		assert.False(t, bytes.Contains(r.SealedID, []byte(ids[0])))
	}
}

// TestActivityCoalesced: Activate writes the activity only once the stored
// one lags by 5% of the idle timeout: reads within the window leave the
// row untouched (same row version), the first read past it writes.
func TestActivityCoalesced(t *testing.T) {
	p := newPool(t)
	s := newStore(t, p)
	ctx := t.Context()
	const idle = time.Hour // window: 3 minutes
	r := rec("ivy", idle)
	r.LastActivity = time.Now().Add(-time.Minute)
	_, err := s.Create(ctx, r, 0, 0)
	require.NoError(t, err)
	version := func() (string, time.Time) {
		var xmin string
		var last time.Time
		require.NoError(t, p.QueryRow(ctx, "SELECT xmin::text, last_activity FROM "+pgx.Identifier{s.table}.Sanitize()+" WHERE key = $1",
			hashID(r.ID)).Scan(&xmin, &last))
		return xmin, last
	}
	v0, last0 := version()
	for range 5 {
		got, err := s.Activate(ctx, r.ID, time.Now())
		require.NoError(t, err)
		assert.WithinDuration(t, time.Now(), got.LastActivity, time.Second)
	}
	v1, last1 := version()
	assert.Equal(t, v0, v1, "Activate within the window wrote the row")
	assert.WithinDuration(t, last0, last1, time.Millisecond)

	at := r.LastActivity.Add(idle / 20) // exactly the window
	_, err = s.Activate(ctx, r.ID, at)
	require.NoError(t, err)
	v2, last2 := version()
	assert.NotEqual(t, v1, v2, "Activate past the window did not write")
	assert.WithinDuration(t, at, last2, time.Millisecond)
}
