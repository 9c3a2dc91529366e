// Package routertest runs the middleware's end-to-end flow through chi and
// echo. It is a module of its own so that those routers never enter the
// module graph of a program that imports sessions: the root module's tests
// use net/http only.
//
// The flow is a copy of the net/http one in the root's middleware_test.go
// (TestMiddlewareFlow); change both together.
package routertest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tokyopredictor/sessions"
)

var ctx = context.Background()

// testKey returns a 32-byte signing key made of b.
func testKey(b byte) []byte { return []byte(strings.Repeat(string(rune(b)), 32)) }

// genericStore hides a MemoryStore behind the plain Store interface, so a
// Manager takes its generic (shared-store) path.
type genericStore struct{ sessions.Store }

// waitFor is how long a test polls for something that should happen soon.
const waitFor = 5 * time.Second

// poll is how often it polls.
const poll = 2 * time.Millisecond

// eventLog records the termination events a manager's hooks receive.
type eventLog struct {
	mu  sync.Mutex
	evs []sessions.Event
}

func (l *eventLog) hook(ev sessions.Event) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

func (l *eventLog) events() []sessions.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs)
}

func (l *eventLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.evs)
}

// of returns the events for session id.
func (l *eventLog) of(id string) []sessions.Event {
	var out []sessions.Event
	for _, ev := range l.events() {
		if ev.SessionID == id {
			out = append(out, ev)
		}
	}
	return out
}

// reasons counts the events by reason.
func (l *eventLog) reasons() map[sessions.Reason]int {
	out := make(map[sessions.Reason]int)
	for _, ev := range l.events() {
		out[ev.Reason]++
	}
	return out
}

// waitEvent waits for the one event of session id and checks its reason.
func (l *eventLog) waitEvent(t *testing.T, id string, want sessions.Reason) sessions.Event {
	t.Helper()
	require.Eventually(t, func() bool { return len(l.of(id)) > 0 }, waitFor, poll,
		"no termination event for the session (want %v)", want)
	evs := l.of(id)
	require.Len(t, evs, 1, "events for one session")
	require.Equal(t, want, evs[0].Reason)
	return evs[0]
}

// quiet is a logger for managers whose logs a test does not read.
func quiet() sessions.Option { return sessions.WithLogger(slog.New(slog.DiscardHandler)) }

// startManager returns a manager closed at the end of the test, with an
// eventLog registered as its first hook.
func startManager(t testing.TB, cfg sessions.Config, opts ...sessions.Option) (*sessions.Manager, *eventLog) {
	t.Helper()
	m, err := sessions.NewManager(cfg, append([]sessions.Option{quiet()}, opts...)...)
	require.NoError(t, err)
	log := &eventLog{}
	m.OnTerminate(log.hook)
	t.Cleanup(func() { assert.NoError(t, m.Close()) })
	return m, log
}

// checkNoLeaks makes the test fail if, once it and its cleanups are done,
// a goroutine it started is still running. Call it first: cleanups run in
// reverse order, so this check runs after every Close.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// sessionCookie returns the last Set-Cookie of resp named name.
func sessionCookie(t testing.TB, resp *http.Response, name string) *http.Cookie {
	t.Helper()
	var found *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == name {
			found = c
		}
	}
	require.NotNil(t, found, "no Set-Cookie %q in %q", name, resp.Header.Values("Set-Cookie"))
	return found
}

// assertExpiring checks that resp expires the cookie name.
func assertExpiring(t testing.TB, resp *http.Response, name string) {
	t.Helper()
	var c *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == name {
			c = ck
		}
	}
	if assert.NotNil(t, c, "no Set-Cookie %q in %q", name, resp.Header.Values("Set-Cookie")) {
		assert.Less(t, c.MaxAge, 0, "the cookie is expired (Max-Age=0)")
		assert.Empty(t, c.Value)
	}
}

// assertNoSetCookie checks that resp sets no cookie.
func assertNoSetCookie(t testing.TB, resp *http.Response) {
	t.Helper()
	assert.Empty(t, resp.Header.Values("Set-Cookie"))
}

// newClient returns a client of srv with a cookie jar of its own.
func newClient(t testing.TB, srv *httptest.Server) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		panic(err)
	}
	return &http.Client{Transport: srv.Client().Transport, Jar: jar}
}

// app is a small login application over a Manager.
type app struct{ m *sessions.Manager }

func (a app) login(w http.ResponseWriter, r *http.Request) {
	var data map[string]any
	if r.URL.Query().Get("carry") != "" {
		if old, ok := sessions.FromContext(r.Context()); ok {
			data = old.Data()
		}
	}
	s, err := a.m.Start(w, r, r.URL.Query().Get("user"), data)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if cur, ok := sessions.FromContext(r.Context()); !ok || cur.ID() != s.ID() {
		http.Error(w, "FromContext does not return the new session after Start", http.StatusInternalServerError)
		return
	}
	fmt.Fprint(w, s.ID())
}

func (a app) whoami(w http.ResponseWriter, r *http.Request) {
	s, ok := sessions.FromContext(r.Context())
	if !ok {
		fmt.Fprint(w, "none")
		return
	}
	fmt.Fprintf(w, "%s %s", s.UserID(), s.ID())
}

func (a app) set(w http.ResponseWriter, r *http.Request) {
	s, ok := sessions.FromContext(r.Context())
	if !ok {
		http.Error(w, "no session", http.StatusUnauthorized)
		return
	}
	s.Set(r.URL.Query().Get("k"), r.URL.Query().Get("v"))
	fmt.Fprint(w, "ok")
}

func (a app) get(w http.ResponseWriter, r *http.Request) {
	s, ok := sessions.FromContext(r.Context())
	if !ok {
		http.Error(w, "no session", http.StatusUnauthorized)
		return
	}
	if v, ok := s.Get(r.URL.Query().Get("k")); ok {
		fmt.Fprint(w, v)
	}
}

func (a app) logout(w http.ResponseWriter, r *http.Request) {
	if err := a.m.End(w, r); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if _, ok := sessions.FromContext(r.Context()); ok {
		http.Error(w, "FromContext returns a session after End", http.StatusInternalServerError)
		return
	}
	fmt.Fprint(w, "bye")
}

func (a app) chi() http.Handler {
	r := chi.NewRouter()
	r.Use(a.m.Middleware)
	r.Post("/login", a.login)
	r.Get("/whoami", a.whoami)
	r.Post("/set", a.set)
	r.Get("/get", a.get)
	r.Post("/logout", a.logout)
	return r
}

func (a app) echo() http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(echo.WrapMiddleware(a.m.Middleware))
	e.POST("/login", func(c echo.Context) error {
		var data map[string]any
		if c.QueryParam("carry") != "" {
			if old, ok := sessions.FromContext(c.Request().Context()); ok {
				data = old.Data()
			}
		}
		s, err := a.m.Start(c.Response(), c.Request(), c.QueryParam("user"), data)
		if err != nil {
			return err
		}
		if cur, ok := sessions.FromContext(c.Request().Context()); !ok || cur.ID() != s.ID() {
			return c.String(http.StatusInternalServerError, "FromContext does not return the new session after Start")
		}
		return c.String(http.StatusOK, s.ID())
	})
	e.GET("/whoami", func(c echo.Context) error {
		s, ok := sessions.FromContext(c.Request().Context())
		if !ok {
			return c.String(http.StatusOK, "none")
		}
		return c.String(http.StatusOK, s.UserID()+" "+s.ID())
	})
	e.POST("/set", echo.WrapHandler(http.HandlerFunc(a.set)))
	e.GET("/get", echo.WrapHandler(http.HandlerFunc(a.get)))
	e.POST("/logout", func(c echo.Context) error {
		if err := a.m.End(c.Response(), c.Request()); err != nil {
			return err
		}
		if _, ok := sessions.FromContext(c.Request().Context()); ok {
			return c.String(http.StatusInternalServerError, "FromContext returns a session after End")
		}
		return c.String(http.StatusOK, "bye")
	})
	return e
}

// exchange is one request's outcome.
type exchange struct {
	status int
	body   string
	resp   *http.Response
}

// do sends a request with c (its jar, if any) plus the given cookies.
func do(t testing.TB, c *http.Client, method, url string, cookies ...*http.Cookie) exchange {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for _, ck := range cookies {
		req.AddCookie(ck)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return exchange{resp.StatusCode, string(b), resp}
}

// flow is a server under test and what the flow checks against.
type flow struct {
	srv    *httptest.Server
	m      *sessions.Manager
	log    *eventLog
	name   string // cookie name
	secure bool
}

// run walks a user through login, data across requests, fixation, logout
// and replayed cookies.
func (f flow) run(t *testing.T) {
	c := newClient(t, f.srv)
	bare := &http.Client{Transport: f.srv.Client().Transport} // no jar
	u := f.srv.URL
	jarCookie := func() *http.Cookie {
		pu, _ := url.Parse(u)
		for _, ck := range c.Jar.Cookies(pu) {
			if ck.Name == f.name {
				return ck
			}
		}
		return nil
	}

	// No cookie: no session, nothing created, no cookie set.
	x := do(t, c, "GET", u+"/whoami")
	require.Equal(t, http.StatusOK, x.status)
	assert.Equal(t, "none", x.body)
	assertNoSetCookie(t, x.resp)
	assert.Zero(t, f.m.Stats().ActiveSessions)

	// Login.
	x = do(t, c, "POST", u+"/login?user=alice")
	require.Equal(t, http.StatusOK, x.status, x.body)
	id1 := x.body
	ck1 := sessionCookie(t, x.resp, f.name)
	assert.NotEmpty(t, ck1.Value)
	assert.NotContains(t, ck1.Value, id1, "the cookie does not carry the raw ID")
	assert.True(t, ck1.HttpOnly)
	assert.Equal(t, f.secure, ck1.Secure)
	require.NotNil(t, jarCookie(), "the client kept the cookie")
	s1, err := f.m.Get(ctx, id1)
	require.NoError(t, err)
	assert.Equal(t, "alice", s1.UserID())

	// The session comes back, with its data, across requests.
	x = do(t, c, "GET", u+"/whoami")
	assert.Equal(t, "alice "+id1, x.body)
	assertNoSetCookie(t, x.resp)
	x = do(t, c, "POST", u+"/set?k=color&v=blue")
	require.Equal(t, http.StatusOK, x.status, x.body)
	x = do(t, c, "GET", u+"/get?k=color")
	assert.Equal(t, "blue", x.body)
	if got, err := f.m.Get(ctx, id1); assert.NoError(t, err) {
		v, _ := got.Get("color")
		assert.Equal(t, "blue", v, "the handler's change is in the store")
	}

	// Login again: a new ID; the old session is ended as renewed and its
	// data is not carried over.
	x = do(t, c, "POST", u+"/login?user=alice")
	require.Equal(t, http.StatusOK, x.status, x.body)
	id2 := x.body
	assert.NotEqual(t, id1, id2)
	_, err = f.m.Get(ctx, id1)
	assert.ErrorIs(t, err, sessions.ErrNotFound)
	f.log.waitEvent(t, id1, sessions.ReasonRenewed)
	x = do(t, c, "GET", u+"/whoami")
	assert.Equal(t, "alice "+id2, x.body)
	x = do(t, c, "GET", u+"/get?k=color")
	assert.Equal(t, "", x.body, "data is not carried into the new session")

	// The old cookie is dead.
	x = do(t, bare, "GET", u+"/whoami", ck1)
	assert.Equal(t, http.StatusOK, x.status)
	assert.Equal(t, "none", x.body)
	assertExpiring(t, x.resp, f.name)
	x = do(t, c, "GET", u+"/whoami")
	assert.Equal(t, "alice "+id2, x.body, "the replay did not hurt the new session")

	// Data is carried over when the caller passes it.
	do(t, c, "POST", u+"/set?k=color&v=red")
	x = do(t, c, "POST", u+"/login?user=alice&carry=1")
	require.Equal(t, http.StatusOK, x.status, x.body)
	id3 := x.body
	assert.NotEqual(t, id2, id3)
	f.log.waitEvent(t, id2, sessions.ReasonRenewed)
	x = do(t, c, "GET", u+"/get?k=color")
	assert.Equal(t, "red", x.body, "data passed to Start is in the new session")
	id2 = id3

	ck2 := jarCookie()
	require.NotNil(t, ck2)

	// Logout: the cookie expires, the session is gone server-side.
	x = do(t, c, "POST", u+"/logout")
	require.Equal(t, http.StatusOK, x.status, x.body)
	assert.Equal(t, "bye", x.body)
	assertExpiring(t, x.resp, f.name)
	assert.Nil(t, jarCookie(), "the client dropped the cookie")
	_, err = f.m.Get(ctx, id2)
	assert.ErrorIs(t, err, sessions.ErrNotFound)
	f.log.waitEvent(t, id2, sessions.ReasonLogout)
	x = do(t, c, "GET", u+"/whoami")
	assert.Equal(t, "none", x.body)

	// The old cookie replayed: no session.
	x = do(t, bare, "GET", u+"/whoami", &http.Cookie{Name: f.name, Value: ck2.Value})
	assert.Equal(t, http.StatusOK, x.status)
	assert.Equal(t, "none", x.body)
	assertExpiring(t, x.resp, f.name)

	// Logout with no session is fine.
	x = do(t, c, "POST", u+"/logout")
	assert.Equal(t, http.StatusOK, x.status)
	assertExpiring(t, x.resp, f.name)

	// A client whose cookie is stale logs in: the expiring Set-Cookie comes
	// first, the new cookie wins.
	stale := newClient(t, f.srv)
	pu, _ := url.Parse(u)
	stale.Jar.SetCookies(pu, []*http.Cookie{{Name: f.name, Value: ck1.Value, Path: "/", Secure: f.secure}})
	x = do(t, stale, "POST", u+"/login?user=bob")
	require.Equal(t, http.StatusOK, x.status, x.body)
	x = do(t, stale, "GET", u+"/whoami")
	assert.True(t, strings.HasPrefix(x.body, "bob "), x.body)
	assert.Equal(t, 1, f.m.Stats().ActiveSessions)
}

func TestRouterFlow(t *testing.T) {
	insecure := sessions.Config{Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true}
	for _, tc := range []struct {
		name    string
		cfg     sessions.Config
		store   bool // a genericStore: the generic Store path
		handler func(app) http.Handler
		tls     bool
	}{
		{"chi", insecure, false, app.chi, false},
		{"echo", insecure, false, app.echo, false},
		{"chi generic store TLS", sessions.Config{DisableAutoCleanup: true}, true, app.chi, true},
		{"echo generic store", insecure, true, app.echo, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkNoLeaks(t)
			cfg := tc.cfg
			var opts []sessions.Option
			if tc.store {
				cfg.Keys = [][]byte{testKey('k')}
				opts = append(opts, sessions.WithStore(genericStore{sessions.NewMemoryStore()}))
			}
			m, log := startManager(t, cfg, opts...)
			h := tc.handler(app{m})
			var srv *httptest.Server
			if tc.tls {
				srv = httptest.NewTLSServer(h)
			} else {
				srv = httptest.NewServer(h)
			}
			t.Cleanup(srv.Close)
			name := "session"
			if !tc.cfg.Cookie.Insecure {
				name = "__Host-session"
			}
			flow{srv: srv, m: m, log: log, name: name, secure: tc.tls}.run(t)
		})
	}
}
