package redisstore

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
	"github.com/tokyopredictor/sessions/redisstore/internal/faultproxy"
)

// The tests in this file put a fault-injecting proxy (internal/faultproxy)
// between a real Manager's go-redis client and a real Redis, and lose the
// reply to one store call after the server ran it. go-redis, with its
// default of 3 retries, sends the command again on a new connection, so
// the server runs it twice: every store call must give the same answer to
// its retry, or the ending's hooks are lost or doubled, or a session is
// orphaned.

// faultRig is a Manager whose store reaches a Redis of its own through a
// fault proxy, with its hooks recorded, and an app serving it.
type faultRig struct {
	srv    *redisProcess
	proxy  *faultproxy.Proxy
	direct *redis.Client // to the server, past the proxy
	store  *Store
	m      *sessions.Manager
	app    *app
	log    *hookLog
}

// newFaultRig starts a redis-server and a proxy in front of it, and a
// manager on a store through the proxy with go-redis's default client
// options, changed by clientOpt when not nil.
func newFaultRig(t *testing.T, cfg sessions.Config, clientOpt func(*redis.Options), opts ...Option) *faultRig {
	t.Helper()
	r := &faultRig{srv: startRedis(t)}
	p, err := faultproxy.Start(r.srv.addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	r.proxy = p
	r.direct = redis.NewClient(&redis.Options{Addr: r.srv.addr})
	t.Cleanup(func() { _ = r.direct.Close() })
	o := &redis.Options{Addr: p.Addr()}
	if clientOpt != nil {
		clientOpt(o)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	r.store, err = New(c, opts...)
	require.NoError(t, err)
	cfg.Cookie.Insecure = true
	r.m, r.app = newManagerApp(t, cfg, r.store)
	r.log = newHookLog()
	r.m.OnTerminate(r.log.hook(0))
	return r
}

// waitHooks waits until n distinct sessions have ended, closes the manager
// (which waits for every pending hook) and checks each ran once.
func (r *faultRig) waitHooks(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return r.log.len() >= n }, 10*time.Second, time.Millisecond,
		"hooks ran for %d of %d sessions", r.log.len(), n)
	require.NoError(t, r.m.Close())
	r.log.requireOnce(t)
	require.Equal(t, n, r.log.len())
}

// requireDropped checks that the proxy lost exactly one reply, to a
// script (the store's calls are scripts); it waits a little for it, as a
// manager acknowledges claims in the background.
func (r *faultRig) requireDropped(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool { return len(r.proxy.Dropped()) > 0 }, 5*time.Second, time.Millisecond,
		"no reply was lost")
	got := r.proxy.Dropped()
	require.Len(t, got, 1, "the proxy lost %d replies: %v", len(got), got)
	require.Contains(t, []string{"evalsha", "eval", "EVALSHA", "EVAL"}, got[0])
}

// runs selects the commands that run script: EVALSHA of its hash, or EVAL
// of its source (go-redis's fallback when the server lacks the script).
func runs(script *redis.Script) faultproxy.Filter {
	return func(args []string) bool {
		if len(args) < 2 {
			return false
		}
		switch strings.ToUpper(args[0]) {
		case "EVALSHA":
			return args[1] == script.Hash()
		case "EVAL":
			sum := sha1.Sum([]byte(args[1]))
			return hex.EncodeToString(sum[:]) == script.Hash()
		}
		return false
	}
}

// TestLostReplyTerminate: the reply to Terminate's delete is lost and the
// call retried: Terminate succeeds, the hooks run once, the session is
// gone.
func TestLostReplyTerminate(t *testing.T) {
	r := newFaultRig(t, sessions.Config{IdleTimeout: time.Hour, DisableAutoCleanup: true}, nil)
	ctx := t.Context()
	s, err := r.m.Create(ctx, "tara", map[string]any{"n": 1})
	require.NoError(t, err)

	r.proxy.DropReply(runs(deleteScript))
	err = r.m.Terminate(ctx, s.ID())
	r.requireDropped(t)
	require.NoError(t, err, "a retried Terminate reports the ending it made")
	_, err = r.m.Get(ctx, s.ID())
	require.ErrorIs(t, err, sessions.ErrNotFound)
	list, err := r.m.UserSessions(ctx, "tara")
	require.NoError(t, err)
	require.Empty(t, list)
	r.waitHooks(t, 1)
	ev := r.log.events[s.ID()][0]
	assert.Equal(t, sessions.ReasonTerminated, ev.Reason)
	assert.Equal(t, "tara", ev.UserID)
	assert.Equal(t, map[string]any{"n": 1}, ev.Data)
}

// TestLostReplyLogout: the reply to End's delete is lost (a logout over
// HTTP): the response expires the cookie, the old cookie no longer works,
// the hooks run once with ReasonLogout.
func TestLostReplyLogout(t *testing.T) {
	r := newFaultRig(t, sessions.Config{IdleTimeout: time.Hour, DisableAutoCleanup: true}, nil)
	login := r.app.do(t, "/login?user=uma", nil)
	require.Equal(t, http.StatusOK, login.code)
	cookie := login.cookie(t)
	require.Equal(t, "uma name=uma", r.app.do(t, "/read", cookie).body)

	r.proxy.DropReply(runs(deleteScript))
	out := r.app.do(t, "/logout", cookie)
	r.requireDropped(t)
	assert.Equal(t, http.StatusOK, out.code, "logout answered %q", out.body)
	assert.True(t, out.expiresCookie())
	assert.Equal(t, "anonymous", r.app.do(t, "/read", cookie).body, "the old cookie still works")
	r.waitHooks(t, 1)
	for _, evs := range r.log.events {
		assert.Equal(t, sessions.ReasonLogout, evs[0].Reason)
		assert.Equal(t, "uma", evs[0].UserID)
	}
}

// TestLostReplyTerminateUser: the reply to TerminateUser's script is lost:
// the retried call still returns how many sessions it ended and their
// hooks run once each.
func TestLostReplyTerminateUser(t *testing.T) {
	r := newFaultRig(t, sessions.Config{IdleTimeout: time.Hour, DisableAutoCleanup: true}, nil)
	ctx := t.Context()
	ids := map[string]bool{}
	for range 3 {
		s, err := r.m.Create(ctx, "vic", nil)
		require.NoError(t, err)
		ids[s.ID()] = true
	}
	other, err := r.m.Create(ctx, "wes", nil)
	require.NoError(t, err)

	r.proxy.DropReply(runs(userScript))
	n, err := r.m.TerminateUser(ctx, "vic")
	r.requireDropped(t)
	require.NoError(t, err)
	assert.Equal(t, 3, n, "a retried TerminateUser reports the sessions it ended")
	list, err := r.m.UserSessions(ctx, "vic")
	require.NoError(t, err)
	require.Empty(t, list)
	_, err = r.m.Get(ctx, other.ID())
	require.NoError(t, err, "another user's session is untouched")
	r.waitHooks(t, 3)
	for id, evs := range r.log.events {
		assert.True(t, ids[id], "hook for a session not of vic")
		assert.Equal(t, sessions.ReasonTerminated, evs[0].Reason)
	}
}

// TestLostReplyCreate: the reply to Create's script is lost. The caller
// gets a session or a clean error; either way no orphan: the user's
// sessions, the store's count and the limit agree with what the caller
// got, and with RejectNew and a limit of 1 the user can log in after.
func TestLostReplyCreate(t *testing.T) {
	r := newFaultRig(t, sessions.Config{
		IdleTimeout: time.Hour, DisableAutoCleanup: true, MaxSessionsPerUser: 1, LimitPolicy: sessions.RejectNew,
	}, nil)
	ctx := t.Context()
	r.proxy.DropReply(runs(createScript))
	s, err := r.m.Create(ctx, "xena", map[string]any{"n": 1})
	r.requireDropped(t)
	list, lerr := r.m.UserSessions(ctx, "xena")
	require.NoError(t, lerr)
	st := r.m.Stats()
	require.NoError(t, st.Err)
	if err != nil {
		t.Logf("Create with a lost reply: %v", err)
		assert.NotErrorIs(t, err, sessions.ErrLimitReached, "the retry counted the first run's session against the limit")
		assert.Empty(t, list, "Create failed yet left a session: an orphan no cookie holds")
		assert.Zero(t, st.ActiveSessions, "orphan counted")
	} else {
		require.Len(t, list, 1)
		assert.Equal(t, s.ID(), list[0].ID())
		assert.Equal(t, 1, st.ActiveSessions)
		got, err := r.m.Get(ctx, s.ID())
		require.NoError(t, err)
		assert.Equal(t, map[string]any{"n": 1}, got.Data())
		require.NoError(t, r.m.Terminate(ctx, s.ID())) // log out
	}
	again, err := r.m.Create(ctx, "xena", nil)
	require.NoError(t, err, "the user cannot log in after a lost reply")
	list, err = r.m.UserSessions(ctx, "xena")
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, again.ID(), list[0].ID())
}

// TestLostReplyLogin: the same through Start (an HTTP login): the answer
// is a working cookie or an error with no cookie, and no orphan is left.
func TestLostReplyLogin(t *testing.T) {
	r := newFaultRig(t, sessions.Config{
		IdleTimeout: time.Hour, DisableAutoCleanup: true, MaxSessionsPerUser: 1, LimitPolicy: sessions.RejectNew,
	}, nil)
	ctx := t.Context()
	r.proxy.DropReply(runs(createScript))
	login := r.app.do(t, "/login?user=yuri", nil)
	r.requireDropped(t)
	list, err := r.m.UserSessions(ctx, "yuri")
	require.NoError(t, err)
	if login.code != http.StatusOK {
		t.Logf("login with a lost reply: %d %q", login.code, login.body)
		assert.Empty(t, list, "failed login left an orphan session")
		for _, c := range login.cookies {
			assert.True(t, c.MaxAge < 0 || c.Value == "", "failed login set a cookie")
		}
	} else {
		cookie := login.cookie(t)
		require.Len(t, list, 1)
		assert.Equal(t, "yuri name=yuri", r.app.do(t, "/read", cookie).body)
		require.Equal(t, http.StatusOK, r.app.do(t, "/logout", cookie).code)
	}
	second := r.app.do(t, "/login?user=yuri", nil)
	require.Equal(t, http.StatusOK, second.code, "the user cannot log in after a lost reply: %q", second.body)
	assert.Equal(t, "yuri name=yuri", r.app.do(t, "/read", second.cookie(t)).body)
}

// TestLostReplyCreateEvicts: with EvictOldest at the limit, the reply to
// the Create that evicted the user's old session is lost: the new session
// is the user's only one and the evicted one's hooks run once.
func TestLostReplyCreateEvicts(t *testing.T) {
	r := newFaultRig(t, sessions.Config{IdleTimeout: time.Hour, DisableAutoCleanup: true, MaxSessionsPerUser: 1}, nil)
	ctx := t.Context()
	old, err := r.m.Create(ctx, "zoe", nil)
	require.NoError(t, err)
	r.proxy.DropReply(runs(createScript))
	s, err := r.m.Create(ctx, "zoe", nil)
	r.requireDropped(t)
	require.NoError(t, err, "a retried Create reports the session it made")
	list, err := r.m.UserSessions(ctx, "zoe")
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, s.ID(), list[0].ID())
	r.waitHooks(t, 1)
	require.Contains(t, r.log.events, old.ID())
	assert.Equal(t, sessions.ReasonEvicted, r.log.events[old.ID()][0].Reason)
}

// TestLostReplySweep: the replies to a sweep's calls are lost — the claim
// of the expired sessions, then their acknowledgement (or extension) —
// and the sweep is retried by go-redis: every ending's hooks run once, and
// no claim is handed out again after its lease.
func TestLostReplySweep(t *testing.T) {
	const n, idle, lease = 40, 50 * time.Millisecond, 300 * time.Millisecond
	for _, tc := range []struct {
		name string
		drop func(r *faultRig, ids []string) faultproxy.Filter
	}{
		{"Expired", func(*faultRig, []string) faultproxy.Filter { return runs(expiredScript) }},
		// The first script after the claim that names a claimed session:
		// its Extend or its Ack (the claim itself names none).
		{"Ack", func(_ *faultRig, ids []string) faultproxy.Filter {
			return faultproxy.Scripts().And(faultproxy.ArgContains(hashID(ids[n/2])))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newFaultRig(t, sessions.Config{
				IdleTimeout: idle, DisableAutoCleanup: true, MaxSessionsPerUser: sessions.Unlimited,
			}, nil, WithLease(lease))
			ctx := t.Context()
			ids := make([]string, n)
			for i := range ids {
				s, err := r.m.Create(ctx, fmt.Sprint("user", i%7), map[string]any{"i": i})
				require.NoError(t, err)
				ids[i] = s.ID()
			}
			time.Sleep(idle) // every session has expired (created at least idle ago)

			r.proxy.DropReply(tc.drop(r, ids))
			ended, err := r.m.Cleanup(ctx)
			require.NoError(t, err)
			r.requireDropped(t)
			// A claim whose Ack was lost would come back after its lease:
			// sweep again once two leases have passed.
			end := time.Now().Add(2 * lease)
			require.Eventually(t, func() bool { return time.Now().After(end) }, 5*time.Second, 5*time.Millisecond)
			again, err := r.m.Cleanup(ctx)
			require.NoError(t, err)
			t.Logf("first sweep ended %d, second %d; hooks for %d sessions", ended, again, r.log.len())
			r.waitHooks(t, n)
			assert.Equal(t, n, ended, "the first sweep reports every session it claimed")
			assert.Zero(t, again, "a claim came back after its lease")
			for _, id := range ids {
				require.Contains(t, r.log.events, id)
				assert.Equal(t, sessions.ReasonIdle, r.log.events[id][0].Reason)
			}
		})
	}
}

// TestLostRepliesUnderSweeps: three managers, each through its own proxy,
// sweep 600 expiring sessions while their proxies lose the reply to a
// store script every few milliseconds (claims, extensions, acks, counts):
// every ending's hooks run exactly once. The lease is long enough that a
// claim never lapses for want of an extension: go-redis retries a call
// several times over a few tens of milliseconds, and a drop armed every
// 30 ms on each proxy can make a whole call fail now and then (a manager
// that cannot reach Redis for a whole lease is presumed dead, which is
// another matter).
func TestLostRepliesUnderSweeps(t *testing.T) {
	const n, idle, lease = 600, 300 * time.Millisecond, 1500 * time.Millisecond
	srv := startRedis(t)
	log := newHookLog()
	var proxies []*faultproxy.Proxy
	var ms []*sessions.Manager
	for i := range 3 {
		p, err := faultproxy.Start(srv.addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = p.Close() })
		c := redis.NewClient(&redis.Options{Addr: p.Addr()})
		t.Cleanup(func() { _ = c.Close() })
		s, err := New(c, WithLease(lease), WithSweepBatch(50))
		require.NoError(t, err)
		m, err := sessions.NewManager(sessions.Config{
			Keys: testKeys, IdleTimeout: idle, CleanupInterval: 20 * time.Millisecond, MaxSessionsPerUser: sessions.Unlimited,
		}, sessions.WithStore(s))
		require.NoError(t, err)
		t.Cleanup(func() { _ = m.Close() })
		m.OnTerminate(log.hook(i))
		proxies = append(proxies, p)
		ms = append(ms, m)
	}
	ctx := t.Context()
	ids := map[string]bool{}
	for i := range n {
		s, err := ms[i%3].Create(ctx, fmt.Sprint("user", i%40), map[string]any{"i": i})
		require.NoError(t, err)
		ids[s.ID()] = true
	}
	// Lose a script reply on one proxy after another, every 10 ms, until
	// every ending ran its hooks.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				proxies[i%3].DropReply(faultproxy.Scripts())
			}
		}
	})
	ok := assert.Eventually(t, func() bool { return log.len() >= n }, 30*time.Second, 10*time.Millisecond)
	close(stop)
	wg.Wait()
	for _, p := range proxies {
		p.Disarm()
	}
	// Claims whose acks were lost would come back after their lease.
	end := time.Now().Add(2 * lease)
	require.Eventually(t, func() bool { return time.Now().After(end) }, 5*time.Second, 5*time.Millisecond)
	closeAll(ms)
	dropped := 0
	for _, p := range proxies {
		dropped += len(p.Dropped())
	}
	doubled, byOne := 0, 0
	for id, evs := range log.events {
		if len(evs) > 1 {
			doubled++
			if by := log.by[id]; by[0] == by[1] {
				byOne++
			}
		}
	}
	t.Logf("%d sessions, hooks for %d, doubled %d (%d by one manager twice), replies lost %d", n, log.len(), doubled, byOne, dropped)
	require.True(t, ok, "hooks ran for only %d of %d sessions", log.len(), n)
	assert.Positive(t, dropped)
	for id := range log.events {
		assert.True(t, ids[id], "hook for an unknown session")
	}
	assert.Zero(t, doubled, "endings whose hooks ran more than once")
	assert.Equal(t, n, log.len(), "endings lost")
}

// TestStalledLogout: Redis stalls (the proxy holds every byte) while a
// user logs out. End returns an error and the response keeps the cookie:
// the user is not told they are logged out while their session lives on.
// Once Redis answers again the cookie works and a retried logout ends the
// session, with its hooks run once.
func TestStalledLogout(t *testing.T) {
	r := newFaultRig(t, sessions.Config{IdleTimeout: time.Hour, DisableAutoCleanup: true}, func(o *redis.Options) {
		o.ReadTimeout, o.WriteTimeout, o.DialTimeout = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
	})
	login := r.app.do(t, "/login?user=abe", nil)
	require.Equal(t, http.StatusOK, login.code)
	cookie := login.cookie(t)
	require.Equal(t, "abe name=abe", r.app.do(t, "/read", cookie).body)

	// The Middleware loads the session; the stall starts at End's delete.
	r.proxy.StallOn(runs(deleteScript))
	start := time.Now()
	var out response
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		out, err = r.app.try(t, "/logout", cookie)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		r.proxy.Release()
		<-done
		t.Fatal("logout did not return within 20 s of a stall")
	}
	took := time.Since(start)
	// Drop what the proxy held: the commands never reached Redis.
	r.proxy.Reset()
	r.proxy.Release()
	require.NoError(t, err)
	t.Logf("logout during a stall: %d %q after %v", out.code, out.body, took.Round(time.Millisecond))
	assert.NotEqual(t, http.StatusOK, out.code, "logout succeeded while Redis stalled")
	assert.False(t, out.expiresCookie(), "the cookie was expired though the session lives on")

	require.Equal(t, "abe name=abe", r.app.do(t, "/read", cookie).body, "the session lives on")
	retry := r.app.do(t, "/logout", cookie)
	require.Equal(t, http.StatusOK, retry.code, "retried logout: %q", retry.body)
	assert.True(t, retry.expiresCookie())
	assert.Equal(t, "anonymous", r.app.do(t, "/read", cookie).body)
	r.waitHooks(t, 1)
}

// TestStalledEnd: End called directly (no Middleware in front, so only
// the delete stalls) during a stall returns an error and sets no expiring
// cookie.
func TestStalledEnd(t *testing.T) {
	r := newFaultRig(t, sessions.Config{IdleTimeout: time.Hour, DisableAutoCleanup: true}, func(o *redis.Options) {
		o.ReadTimeout, o.WriteTimeout, o.DialTimeout = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
	})
	login := r.app.do(t, "/login?user=bea", nil)
	require.Equal(t, http.StatusOK, login.code)
	cookie := login.cookie(t)

	r.proxy.Stall()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "/logout", nil)
	require.NoError(t, err)
	req.AddCookie(cookie)
	w := httptest.NewRecorder()
	err = r.m.End(w, req)
	r.proxy.Reset()
	r.proxy.Release()
	require.Error(t, err, "End returned nil while Redis stalled")
	assert.False(t, errors.Is(err, sessions.ErrNotFound))
	for _, c := range w.Result().Cookies() {
		assert.False(t, c.MaxAge < 0 || c.Value == "", "End expired the cookie though the delete failed")
	}
	require.Equal(t, "bea name=bea", r.app.do(t, "/read", cookie).body, "the session lives on")
}
