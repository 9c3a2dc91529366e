package redisstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// testKeys are the signing keys every manager of a test shares.
var testKeys = [][]byte{bytes.Repeat([]byte{7}, 32)}

// hookLog records the endings managers report, by session ID.
type hookLog struct {
	mu     sync.Mutex
	events map[string][]sessions.Event
	by     map[string][]int // which managers reported each
}

func newHookLog() *hookLog {
	return &hookLog{events: map[string][]sessions.Event{}, by: map[string][]int{}}
}

func (l *hookLog) hook(manager int) func(sessions.Event) {
	return func(ev sessions.Event) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.events[ev.SessionID] = append(l.events[ev.SessionID], ev)
		l.by[ev.SessionID] = append(l.by[ev.SessionID], manager)
	}
}

func (l *hookLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// requireOnce checks that every ending was reported once.
func (l *hookLog) requireOnce(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, evs := range l.events {
		require.Len(t, evs, 1, "session %s ended %d times (managers %v)", id, len(evs), l.by[id])
	}
}

// newManagers returns n managers sharing one store prefix, each with its own
// client and Store, all closed at the end of the test. Their hooks record
// into the returned log.
func newManagers(t *testing.T, n int, cfg sessions.Config, opts ...Option) ([]*sessions.Manager, *hookLog) {
	t.Helper()
	stores := storesOn(t, n, opts...)
	log := newHookLog()
	cfg.Keys = testKeys
	ms := make([]*sessions.Manager, n)
	for i, s := range stores {
		m, err := sessions.NewManager(cfg, sessions.WithStore(s))
		require.NoError(t, err)
		m.OnTerminate(log.hook(i))
		t.Cleanup(func() { _ = m.Close() })
		ms[i] = m
	}
	return ms, log
}

func closeAll(ms []*sessions.Manager) {
	for _, m := range ms {
		_ = m.Close()
	}
}

// TestManagersAtomicLimit: 64 concurrent Creates for one user over three
// managers leave exactly the limit live; evictions run hooks once.
func TestManagersAtomicLimit(t *testing.T) {
	for name, policy := range map[string]sessions.LimitPolicy{"EvictOldest": sessions.EvictOldest, "RejectNew": sessions.RejectNew} {
		t.Run(name, func(t *testing.T) {
			const limit, n = 5, 64
			ms, log := newManagers(t, 3, sessions.Config{
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
					s, err := ms[i%3].Create(ctx, "alice", map[string]any{"n": i})
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
			live, err := ms[1].UserSessions(ctx, "alice")
			require.NoError(t, err)
			require.Len(t, live, limit)
			st := ms[2].Stats()
			require.NoError(t, st.Err)
			assert.Equal(t, limit, st.ActiveSessions)
			assert.Equal(t, 1, st.UniqueUsers)

			closeAll(ms) // waits for the hooks
			log.requireOnce(t)
			for _, s := range live {
				assert.Contains(t, created, s.ID())
				assert.NotContains(t, log.events, s.ID(), "a live session's ending was reported")
			}
			if policy == sessions.RejectNew {
				assert.EqualValues(t, n-limit, rejected.Load())
				assert.Zero(t, log.len())
				return
			}
			assert.Zero(t, rejected.Load())
			require.Equal(t, n-limit, log.len())
			for id, evs := range log.events {
				assert.Contains(t, created, id)
				assert.Equal(t, sessions.ReasonEvicted, evs[0].Reason)
				assert.Equal(t, "alice", evs[0].UserID)
				assert.Contains(t, evs[0].Data, "n")
			}
		})
	}
}

// TestManagersHooksExactlyOnce: three managers with sweepers on, well over
// a thousand sessions expiring (by idleness, and some kept active until
// their absolute timeout): each ending runs the hooks of exactly one
// manager, with the right reason.
func TestManagersHooksExactlyOnce(t *testing.T) {
	const n, active = 1500, 100
	const idle, absolute = 300 * time.Millisecond, 700 * time.Millisecond
	ms, log := newManagers(t, 3, sessions.Config{
		IdleTimeout: idle, AbsoluteTimeout: absolute, CleanupInterval: 20 * time.Millisecond,
		MaxSessionsPerUser: sessions.Unlimited,
	})
	ctx := t.Context()
	ids := make([]string, n)
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := w; i < n-active; i += 6 {
				user := ""
				if i%4 != 0 {
					user = fmt.Sprint("user", i%200)
				}
				s, err := ms[i%3].Create(ctx, user, map[string]any{"i": i})
				if !assert.NoError(t, err) {
					return
				}
				ids[i] = s.ID()
			}
		})
	}
	wg.Wait()
	// Create the last sessions now and keep them active until their
	// absolute timeout ends them.
	for i := n - active; i < n; i++ {
		s, err := ms[i%3].Create(ctx, fmt.Sprint("user", i%200), map[string]any{"i": i})
		require.NoError(t, err)
		ids[i] = s.ID()
	}
	keep := slices.Clone(ids[n-active:])
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(10 * time.Second); len(keep) > 0 && time.Now().Before(deadline); <-tick.C {
		keep = slices.DeleteFunc(keep, func(id string) bool {
			err := ms[0].Touch(ctx, id)
			if err != nil {
				require.ErrorIs(t, err, sessions.ErrNotFound)
			}
			return err != nil
		})
	}
	require.Empty(t, keep, "sessions still live long after their absolute timeout")

	require.Eventually(t, func() bool { return log.len() >= n }, 30*time.Second, 10*time.Millisecond,
		"hooks ran for only some sessions")
	closeAll(ms)
	log.requireOnce(t)
	require.Equal(t, n, log.len())
	byReason := map[sessions.Reason]int{}
	byManager := map[int]int{}
	for id, evs := range log.events {
		ev := evs[0]
		require.Contains(t, ids, id)
		byReason[ev.Reason]++
		byManager[log.by[id][0]]++
		want := sessions.ReasonIdle
		if !ev.CreatedAt.Add(absolute).After(ev.LastActivity.Add(idle)) {
			want = sessions.ReasonAbsolute
		}
		require.Equal(t, want, ev.Reason, "session %s: created %v, last active %v", id, ev.CreatedAt, ev.LastActivity)
	}
	t.Logf("endings by reason %v, by manager %v", byReason, byManager)
	assert.GreaterOrEqual(t, byReason[sessions.ReasonAbsolute], active/2, "kept active, most end by their absolute timeout")
	assert.GreaterOrEqual(t, byReason[sessions.ReasonIdle], n-active)
}

// TestManagerExpiredNeverReturned: with no sweeper, an expired session is
// not returned by any method, nor honoured by the Middleware.
func TestManagerExpiredNeverReturned(t *testing.T) {
	const idle = 100 * time.Millisecond
	ms, log := newManagers(t, 2, sessions.Config{
		IdleTimeout: idle, DisableAutoCleanup: true, Cookie: sessions.CookieConfig{Insecure: true},
	})
	ctx := t.Context()
	srv := newApp(t, ms[1])
	login := srv.do(t, "/login?user=kim", nil)
	require.Equal(t, http.StatusOK, login.code)
	cookie := login.cookie(t)
	s, err := ms[0].Create(ctx, "kim", nil)
	require.NoError(t, err)
	end := time.Now().Add(idle)
	require.Eventually(t, func() bool { return time.Now().After(end) }, time.Second, time.Millisecond)

	_, err = ms[0].Get(ctx, s.ID())
	require.ErrorIs(t, err, sessions.ErrNotFound)
	require.ErrorIs(t, ms[1].Touch(ctx, s.ID()), sessions.ErrNotFound)
	list, err := ms[0].UserSessions(ctx, "kim")
	require.NoError(t, err)
	require.Empty(t, list)
	all, err := ms[1].All(ctx)
	require.NoError(t, err)
	require.Empty(t, all)
	assert.Zero(t, ms[0].Stats().ActiveSessions)
	read := srv.do(t, "/read", cookie)
	assert.Equal(t, "anonymous", read.body)
	assert.True(t, read.expiresCookie(), "the cookie of an expired session is expired")

	n, err := ms[0].Cleanup(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	closeAll(ms)
	log.requireOnce(t)
	require.Equal(t, 2, log.len())
	for _, evs := range log.events {
		assert.Equal(t, sessions.ReasonIdle, evs[0].Reason)
	}
}

// app is an HTTP server with a login, a read and a write endpoint behind a
// manager's Middleware.
type app struct {
	srv    *httptest.Server
	errors atomic.Int64 // calls of the error handler
}

type response struct {
	code    int
	body    string
	cookies []*http.Cookie
}

func (r response) cookie(t *testing.T) *http.Cookie {
	t.Helper()
	for _, c := range r.cookies {
		if c.Name == "session" && c.MaxAge >= 0 && c.Value != "" {
			return c
		}
	}
	t.Fatalf("no session cookie set: %v", r.cookies)
	return nil
}

func (r response) expiresCookie() bool {
	for _, c := range r.cookies {
		if c.Name == "session" && (c.MaxAge < 0 || c.Value == "") {
			return true
		}
	}
	return false
}

func newApp(t *testing.T, m *sessions.Manager) *app { return (&app{}).serve(t, m) }

// serve starts the app's server with m's Middleware.
func (a *app) serve(t *testing.T, m *sessions.Manager) *app {
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		if _, err := m.Start(w, r, user, map[string]any{"name": user}); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		s, ok := sessions.FromContext(r.Context())
		if !ok {
			_, _ = io.WriteString(w, "anonymous")
			return
		}
		data := s.Data()
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range data {
				if !yield(k) {
					return
				}
			}
		})
		var b strings.Builder
		b.WriteString(s.UserID())
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%v", k, data[k])
		}
		_, _ = io.WriteString(w, b.String())
	})
	mux.HandleFunc("/set", func(w http.ResponseWriter, r *http.Request) {
		s, ok := sessions.FromContext(r.Context())
		if !ok {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		s.Set(r.URL.Query().Get("k"), r.URL.Query().Get("v"))
		_, _ = io.WriteString(w, "set")
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := m.End(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	a.srv = httptest.NewServer(m.Middleware(mux))
	t.Cleanup(a.srv.Close)
	return a
}

// newManagerApp returns a manager on s whose error handler counts into
// the returned app, and the app serving it.
func newManagerApp(t *testing.T, cfg sessions.Config, s sessions.Store) (*sessions.Manager, *app) {
	a := &app{}
	cfg.Keys = testKeys
	m, err := sessions.NewManager(cfg, sessions.WithStore(s), sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		a.errors.Add(1)
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
	}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return m, a.serve(t, m)
}

// do sends a GET for path with cookie (if not nil) and fails the test on a
// transport error; call it from the test's goroutine only.
func (a *app) do(t *testing.T, path string, cookie *http.Cookie) response {
	t.Helper()
	res, err := a.try(t, path, cookie)
	require.NoError(t, err)
	return res
}

// try is do for any goroutine: it returns the transport error.
func (a *app) try(t *testing.T, path string, cookie *http.Cookie) (response, error) {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, a.srv.URL+path, nil)
	if err != nil {
		return response{}, err
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	res, err := a.srv.Client().Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return response{code: res.StatusCode, body: string(body), cookies: res.Cookies()}, err
}

// TestMiddlewareFlow logs in through one process and uses the session
// through another, as behind a load balancer.
func TestMiddlewareFlow(t *testing.T) {
	cfg := sessions.Config{IdleTimeout: time.Hour, Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true}
	ms, log := newManagers(t, 2, cfg)
	a, b := newApp(t, ms[0]), newApp(t, ms[1])
	apps := []*app{a, b}

	login := a.do(t, "/login?user=lena", nil)
	require.Equal(t, http.StatusOK, login.code)
	cookie := login.cookie(t)
	assert.Equal(t, "lena name=lena", b.do(t, "/read", cookie).body)

	set := a.do(t, "/set?k=color&v=blue", cookie)
	require.Equal(t, http.StatusOK, set.code)
	assert.Equal(t, "lena color=blue name=lena", b.do(t, "/read", cookie).body, "data written in a request is read by the next")

	// Concurrent requests, on both processes, each changing its own key.
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

	// Logging in again renews the ID and ends the old session.
	relogin := b.do(t, "/login?user=lena", cookie)
	require.Equal(t, http.StatusOK, relogin.code)
	newCookie := relogin.cookie(t)
	assert.NotEqual(t, cookie.Value, newCookie.Value)
	old := a.do(t, "/read", cookie)
	assert.Equal(t, "anonymous", old.body)
	assert.True(t, old.expiresCookie())

	logout := a.do(t, "/logout", newCookie)
	assert.True(t, logout.expiresCookie())
	assert.Equal(t, "anonymous", b.do(t, "/read", newCookie).body)

	closeAll(ms)
	log.requireOnce(t)
	reasons := []sessions.Reason{}
	for _, evs := range log.events {
		reasons = append(reasons, evs[0].Reason)
	}
	assert.ElementsMatch(t, []sessions.Reason{sessions.ReasonRenewed, sessions.ReasonLogout}, reasons)
}

// TestMiddlewareRoundTrips counts the Redis round trips of requests: a read
// costs one, a request that changes data one more.
func TestMiddlewareRoundTrips(t *testing.T) {
	c := newClient(t)
	cnt := &counter{}
	c.AddHook(cnt)
	s := newStore(t, c)
	cfg := sessions.Config{IdleTimeout: time.Hour, Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true, Keys: testKeys}
	m, err := sessions.NewManager(cfg, sessions.WithStore(s))
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	a := newApp(t, m)
	cookie := a.do(t, "/login?user=mia", nil).cookie(t)
	a.do(t, "/set?k=warm&v=up", cookie) // loads every script

	before := cnt.n.Load()
	assert.Equal(t, "mia name=mia warm=up", a.do(t, "/read", cookie).body)
	assert.EqualValues(t, 1, cnt.n.Load()-before, "read request")
	before = cnt.n.Load()
	assert.Equal(t, http.StatusOK, a.do(t, "/set?k=x&v=1", cookie).code)
	assert.EqualValues(t, 2, cnt.n.Load()-before, "write request")
	before = cnt.n.Load()
	assert.Equal(t, "anonymous", a.do(t, "/read", nil).body)
	assert.EqualValues(t, 0, cnt.n.Load()-before, "request without a cookie")
}

// TestOutage pauses a real Redis mid-traffic: the Middleware answers 503
// through the error handler, keeps the cookie and never calls the handler;
// when Redis answers again the same cookie works, without a restart.
func TestOutage(t *testing.T) {
	srv := startRedis(t)
	c := redis.NewClient(&redis.Options{
		Addr:        srv.addr,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond,
		PoolTimeout: 300 * time.Millisecond, MaxRetries: -1,
	})
	t.Cleanup(func() { _ = c.Close() })
	s, err := New(c)
	require.NoError(t, err)
	cfg := sessions.Config{IdleTimeout: time.Hour, Cookie: sessions.CookieConfig{Insecure: true}, CleanupInterval: 50 * time.Millisecond}
	_, a := newManagerApp(t, cfg, s)

	cookie := a.do(t, "/login?user=nora", nil).cookie(t)
	require.Equal(t, "nora name=nora", a.do(t, "/read", cookie).body)

	// Traffic goes on while Redis stops and comes back: every answer is the
	// right user or a 503, and no answer expires the cookie.
	stopTraffic := make(chan struct{})
	var wg sync.WaitGroup
	var ok, unavailable atomic.Int64
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stopTraffic:
					return
				default:
				}
				res, err := a.try(t, "/read", cookie)
				if !assert.NoError(t, err) {
					return
				}
				switch res.code {
				case http.StatusOK:
					assert.Equal(t, "nora name=nora", res.body)
					ok.Add(1)
				case http.StatusServiceUnavailable:
					assert.Equal(t, "store unavailable\n", res.body, "answered by the error handler")
					unavailable.Add(1)
				default:
					t.Errorf("unexpected answer %d %q", res.code, res.body)
				}
				assert.Empty(t, res.cookies, "an answer set a cookie")
			}
		})
	}
	require.Eventually(t, func() bool { return ok.Load() > 10 }, 5*time.Second, time.Millisecond)

	require.NoError(t, srv.stop())
	down := a.do(t, "/read", cookie)
	assert.Equal(t, http.StatusServiceUnavailable, down.code)
	assert.Equal(t, "store unavailable\n", down.body, "answered by the error handler")
	assert.Empty(t, down.cookies, "the cookie is kept")
	require.Eventually(t, func() bool { return unavailable.Load() > 10 }, 10*time.Second, time.Millisecond)
	okDuring := ok.Load()
	assert.Positive(t, a.errors.Load())
	assert.Equal(t, "anonymous", a.do(t, "/read", nil).body, "requests without a session still work")

	require.NoError(t, srv.cont())
	require.Eventually(t, func() bool { return ok.Load() > okDuring+10 }, 10*time.Second, time.Millisecond,
		"the same cookie works again once Redis is back")
	close(stopTraffic)
	wg.Wait()
	assert.Equal(t, "nora name=nora", a.do(t, "/read", cookie).body)
	t.Logf("answers: %d ok, %d unavailable", ok.Load(), unavailable.Load())
}

// TestManagerTakesOverDeadClaim: a process that claimed an expiry and died
// before running its hooks does not lose the ending: another manager runs
// them once the lease is over, with the right reason.
func TestManagerTakesOverDeadClaim(t *testing.T) {
	const lease = 300 * time.Millisecond
	stores := storesOn(t, 2, WithLease(lease))
	var mu sync.Mutex
	var got []sessions.Event
	var at []time.Time
	m, err := sessions.NewManager(sessions.Config{
		Keys: testKeys, IdleTimeout: 50 * time.Millisecond, CleanupInterval: 20 * time.Millisecond,
	}, sessions.WithStore(stores[0]))
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	m.OnTerminate(func(ev sessions.Event) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, ev)
		at = append(at, time.Now())
	})
	// The "dead" process creates a session, claims its expiry (as its
	// sweeper would) and dies before running hooks or acknowledging.
	dead, err := sessions.NewManager(sessions.Config{
		Keys: testKeys, IdleTimeout: time.Millisecond, DisableAutoCleanup: true,
	}, sessions.WithStore(stores[1]))
	require.NoError(t, err)
	s, err := dead.Create(t.Context(), "rita", map[string]any{"cart": 3})
	require.NoError(t, err)
	require.NoError(t, dead.Close())
	var claimed []sessions.Record
	var claimedAt time.Time
	require.Eventually(t, func() bool {
		claimedAt = time.Now()
		claimed, err = stores[1].Expired(t.Context(), claimedAt, 10)
		require.NoError(t, err)
		return len(claimed) == 1
	}, 5*time.Second, time.Millisecond)

	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	}, 10*time.Second, 5*time.Millisecond, "the claimed ending never ran")
	require.NoError(t, m.Close())
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 1)
	assert.Equal(t, sessions.ReasonIdle, got[0].Reason)
	assert.Equal(t, s.ID(), got[0].SessionID)
	assert.Equal(t, "rita", got[0].UserID)
	assert.Equal(t, map[string]any{"cart": 3}, got[0].Data)
	assert.False(t, at[0].Before(claimedAt.Add(lease)), "ran before the lease was over")
}
