package sessions_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// testKey returns a 32-byte signing key made of b.
func testKey(b byte) []byte { return []byte(strings.Repeat(string(rune(b)), 32)) }

var errStoreDown = errors.New("store down (injected)")

// countingStore wraps a MemoryStore as a plain Store (so a Manager uses its
// generic store path), counts the calls and fails them on demand.
type countingStore struct {
	inner *sessions.MemoryStore
	calls atomic.Int64
	fail  atomic.Bool
}

var _ sessions.Store = (*countingStore)(nil)

func (c *countingStore) enter() error {
	c.calls.Add(1)
	if c.fail.Load() {
		return errStoreDown
	}
	return nil
}

func (c *countingStore) Create(ctx context.Context, rec sessions.Record, limit int, policy sessions.LimitPolicy) ([]sessions.Record, error) {
	if err := c.enter(); err != nil {
		return nil, err
	}
	return c.inner.Create(ctx, rec, limit, policy)
}

func (c *countingStore) Load(ctx context.Context, id string) (sessions.Record, error) {
	if err := c.enter(); err != nil {
		return sessions.Record{}, err
	}
	return c.inner.Load(ctx, id)
}

func (c *countingStore) Activate(ctx context.Context, id string, at time.Time) (sessions.Record, error) {
	if err := c.enter(); err != nil {
		return sessions.Record{}, err
	}
	return c.inner.Activate(ctx, id, at)
}

func (c *countingStore) Update(ctx context.Context, id string, at time.Time, set map[string][]byte, del []string) error {
	if err := c.enter(); err != nil {
		return err
	}
	return c.inner.Update(ctx, id, at, set, del)
}

func (c *countingStore) Delete(ctx context.Context, id string) (sessions.Record, error) {
	if err := c.enter(); err != nil {
		return sessions.Record{}, err
	}
	return c.inner.Delete(ctx, id)
}

func (c *countingStore) DeleteUser(ctx context.Context, userID string) ([]sessions.Record, error) {
	if err := c.enter(); err != nil {
		return nil, err
	}
	return c.inner.DeleteUser(ctx, userID)
}

func (c *countingStore) UserSessions(ctx context.Context, userID string) ([]sessions.Record, error) {
	if err := c.enter(); err != nil {
		return nil, err
	}
	return c.inner.UserSessions(ctx, userID)
}

func (c *countingStore) All(ctx context.Context) ([]sessions.Record, error) {
	if err := c.enter(); err != nil {
		return nil, err
	}
	return c.inner.All(ctx)
}

func (c *countingStore) Expired(ctx context.Context, now time.Time, max int) ([]sessions.Record, error) {
	if err := c.enter(); err != nil {
		return nil, err
	}
	return c.inner.Expired(ctx, now, max)
}

func (c *countingStore) Ack(ctx context.Context, claims []string) error {
	if err := c.enter(); err != nil {
		return err
	}
	return c.inner.Ack(ctx, claims)
}

func (c *countingStore) Extend(ctx context.Context, claims []string, now time.Time) ([]string, time.Time, error) {
	if err := c.enter(); err != nil {
		return nil, time.Time{}, err
	}
	return c.inner.Extend(ctx, claims, now)
}

func (c *countingStore) Count(ctx context.Context, now time.Time) (int, int, error) {
	if err := c.enter(); err != nil {
		return 0, 0, err
	}
	return c.inner.Count(ctx, now)
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

func (a app) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("GET /whoami", a.whoami)
	mux.HandleFunc("POST /set", a.set)
	mux.HandleFunc("GET /get", a.get)
	mux.HandleFunc("POST /logout", a.logout)
	return mux
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

// TestMiddlewareFlow runs the flow over net/http. The same flow through chi
// and echo is in internal/routertest, a module of its own so that those
// routers stay out of the module graph of programs that import sessions.
func TestMiddlewareFlow(t *testing.T) {
	insecure := sessions.Config{Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true}
	for _, tc := range []struct {
		name    string
		cfg     sessions.Config
		store   bool // a countingStore: the generic Store path
		handler func(app) http.Handler
		tls     bool
	}{
		{"net/http", insecure, false, func(a app) http.Handler { return a.m.Middleware(a.mux()) }, false},
		{"net/http TLS default cookie", sessions.Config{DisableAutoCleanup: true}, false,
			func(a app) http.Handler { return a.m.Middleware(a.mux()) }, true},
		{"net/http generic store", insecure, true, func(a app) http.Handler { return a.m.Middleware(a.mux()) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkNoLeaks(t)
			cfg := tc.cfg
			var opts []sessions.Option
			if tc.store {
				cfg.Keys = [][]byte{testKey('k')}
				opts = append(opts, sessions.WithStore(&countingStore{inner: sessions.NewMemoryStore()}))
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

// badCookies returns cookie values that must all be refused: valid is one
// the manager issued, foreign one signed by another key, liveID the raw ID
// of a live session.
func badCookies(valid, foreign, liveID string) map[string]string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	cases := map[string]string{
		"empty":                    "",
		"garbage":                  "not-a-cookie",
		"garbage symbols":          "!@#$%^&*()",
		"garbage base64":           base64.URLEncoding.EncodeToString([]byte("garbage|garbage|garbage")),
		"quoted garbage":           `"abc"`,
		"8 KB":                     strings.Repeat("a", 8<<10),
		"8 KB from a valid one":    valid + strings.Repeat("A", 8<<10-len(valid)),
		"signed by a foreign key":  foreign,
		"unsigned live ID":         liveID,
		"unsigned live ID base64":  base64.URLEncoding.EncodeToString([]byte(liveID)),
		"unsigned shape":           base64.URLEncoding.EncodeToString([]byte("1700000000|" + base64.URLEncoding.EncodeToString([]byte(liveID)) + "|")),
		"truncated":                valid[:len(valid)-1],
		"half":                     valid[:len(valid)/2],
		"appended":                 valid + "AAAA",
		"appended one":             valid + "A",
		"doubled":                  valid + valid,
		"with a space":             valid[:10] + " " + valid[10:],
		"with CR LF":               valid[:10] + "\r\n" + valid[10:],
		"lower case":               strings.ToLower(valid),
		"upper case":               strings.ToUpper(valid),
		"standard base64 alphabet": strings.NewReplacer("-", "+", "_", "/").Replace(valid) + "+/",
		"no padding":               strings.TrimRight(valid, "="),
		"NUL":                      "\x00",
		"invalid UTF-8":            "\xff\xfe\xfd",
	}
	if raw, err := base64.URLEncoding.DecodeString(valid); err == nil {
		// Flip each byte of the decoded value: date, ID and MAC.
		for i := range raw {
			b := []byte(string(raw))
			b[i] ^= 0x01
			cases[fmt.Sprintf("decoded byte %d flipped", i)] = base64.URLEncoding.EncodeToString(b)
		}
	}
	for i := range len(valid) {
		// Replace each character with another base64 character, and flip
		// its low bit.
		other := alphabet[(strings.IndexByte(alphabet, valid[i])+1)%len(alphabet)]
		cases[fmt.Sprintf("char %d replaced", i)] = valid[:i] + string(other) + valid[i+1:]
		cases[fmt.Sprintf("char %d bit flipped", i)] = valid[:i] + string(valid[i]^1) + valid[i+1:]
	}
	return cases
}

// nextProbe records what next saw.
type nextProbe struct {
	called  atomic.Int64
	session atomic.Int64
}

func (p *nextProbe) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.called.Add(1)
		if _, ok := sessions.FromContext(r.Context()); ok {
			p.session.Add(1)
		}
		fmt.Fprint(w, "next")
	})
}

// serveCookie sends one request with the raw cookie header name=value.
func serveCookie(h http.Handler, name, value string) *http.Response {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Cookie", name+"="+value)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

// startCookie starts a session for user on m and returns it and its cookie.
func startCookie(t testing.TB, m *sessions.Manager, user string) (*sessions.Session, *http.Cookie) {
	t.Helper()
	w := httptest.NewRecorder()
	s, err := m.Start(w, httptest.NewRequest(http.MethodPost, "/login", nil), user, nil)
	require.NoError(t, err)
	var ck *http.Cookie
	for _, c := range w.Result().Cookies() {
		ck = c
	}
	require.NotNil(t, ck)
	return s, ck
}

func TestMiddlewareBadCookies(t *testing.T) {
	for _, generic := range []bool{false, true} {
		name := "memory store"
		if generic {
			name = "generic store"
		}
		t.Run(name, func(t *testing.T) {
			checkNoLeaks(t)
			mem := sessions.NewMemoryStore()
			cfg := sessions.Config{Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true}
			cfg2 := cfg
			var cs *countingStore
			var store, store2 sessions.Store = mem, mem
			if generic {
				cs = &countingStore{inner: mem}
				store, store2 = cs, &countingStore{inner: mem}
				cfg.Keys = [][]byte{testKey('a')}
				cfg2.Keys = [][]byte{testKey('b')}
			}
			m, log := startManager(t, cfg, sessions.WithStore(store))
			other, _ := startManager(t, cfg2, sessions.WithStore(store2))

			live, ck := startCookie(t, m, "alice")
			_, foreign := startCookie(t, other, "mallory") // live in the shared store
			var p nextProbe
			h := m.Middleware(p.handler())

			// The issued cookie works, before and after every bad one.
			resp := serveCookie(h, "session", ck.Value)
			require.Equal(t, int64(1), p.session.Load(), "the issued cookie finds its session")
			assertNoSetCookie(t, resp)

			for name, v := range badCookies(ck.Value, foreign.Value, live.ID()) {
				before, sess := p.called.Load(), p.session.Load()
				var calls int64
				if cs != nil {
					calls = cs.calls.Load()
				}
				resp := serveCookie(h, "session", v)
				if !assert.Equal(t, before+1, p.called.Load(), "%s: next is called", name) {
					continue
				}
				assert.Equal(t, sess, p.session.Load(), "%s: no session", name)
				assert.Equal(t, http.StatusOK, resp.StatusCode, name)
				assertExpiring(t, resp, "session")
				if cs != nil {
					assert.Equal(t, calls, cs.calls.Load(), "%s: a bad cookie costs no store call", name)
				}
			}
			sess := p.session.Load()
			serveCookie(h, "session", ck.Value)
			assert.Equal(t, sess+1, p.session.Load(), "the issued cookie still works")
			_, err := m.Get(ctx, live.ID())
			assert.NoError(t, err, "bad cookies end nothing")
			assert.Zero(t, log.len())
			assert.Positive(t, m.Stats().InvalidCookies)
		})
	}
}

func TestMiddlewareBadCookiesOverHTTP(t *testing.T) {
	checkNoLeaks(t)
	m, _ := startManager(t, sessions.Config{DisableAutoCleanup: true})
	other, _ := startManager(t, sessions.Config{DisableAutoCleanup: true})
	var p nextProbe
	srv := httptest.NewTLSServer(m.Middleware(p.handler()))
	t.Cleanup(srv.Close)
	live, ck := startCookie(t, m, "alice")
	_, foreign := startCookie(t, other, "mallory")
	c := &http.Client{Transport: srv.Client().Transport}
	for name, v := range badCookies(ck.Value, foreign.Value, live.ID()) {
		if strings.ContainsAny(v, "\x00\r\n\"; \xff") {
			continue // not a cookie value a client sends
		}
		req, err := http.NewRequest("GET", srv.URL, nil)
		require.NoError(t, err)
		req.Header.Set("Cookie", "__Host-session="+v)
		resp, err := c.Do(req)
		require.NoError(t, err, name)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, name)
		assertExpiring(t, resp, "__Host-session")
	}
	assert.Zero(t, p.session.Load())
	assert.Positive(t, p.called.Load())
}

func TestMiddlewareNoCookie(t *testing.T) {
	checkNoLeaks(t)
	cs := &countingStore{inner: sessions.NewMemoryStore()}
	for _, opts := range [][]sessions.Option{nil, {sessions.WithStore(cs)}} {
		m, _ := startManager(t, sessions.Config{Keys: [][]byte{testKey('a')}, DisableAutoCleanup: true}, opts...)
		var p nextProbe
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Cookie", "other=1; sessionx=2; __Host-sessions=3")
		w := httptest.NewRecorder()
		m.Middleware(p.handler()).ServeHTTP(w, r)
		assert.Equal(t, int64(1), p.called.Load())
		assert.Zero(t, p.session.Load())
		assertNoSetCookie(t, w.Result())
		assert.Zero(t, cs.calls.Load(), "no cookie, no store call")
		assert.Zero(t, m.Stats().ActiveSessions, "nothing is created")
	}
}

func TestMiddlewareStaleCookies(t *testing.T) {
	for _, generic := range []bool{false, true} {
		name := "memory store"
		if generic {
			name = "generic store"
		}
		t.Run(name, func(t *testing.T) {
			checkNoLeaks(t)
			const idle = 100 * time.Millisecond
			newM := func(cfg sessions.Config) *sessions.Manager {
				cfg.Cookie.Insecure, cfg.DisableAutoCleanup = true, true
				var opts []sessions.Option
				if generic {
					cfg.Keys = [][]byte{testKey('a')}
					opts = append(opts, sessions.WithStore(&countingStore{inner: sessions.NewMemoryStore()}))
				}
				m, _ := startManager(t, cfg, opts...)
				return m
			}
			m := newM(sessions.Config{MaxSessionsPerUser: 1})
			short := newM(sessions.Config{IdleTimeout: idle})

			var p nextProbe
			h := m.Middleware(p.handler())
			check := func(name string, h http.Handler, ck *http.Cookie) {
				t.Helper()
				before, sess := p.called.Load(), p.session.Load()
				resp := serveCookie(h, ck.Name, ck.Value)
				assert.Equal(t, before+1, p.called.Load(), "%s: next is called", name)
				assert.Equal(t, sess, p.session.Load(), "%s: no session", name)
				assert.Equal(t, http.StatusOK, resp.StatusCode, name)
				assertExpiring(t, resp, ck.Name)
			}
			works := func(name string, h http.Handler, ck *http.Cookie) {
				t.Helper()
				sess := p.session.Load()
				serveCookie(h, ck.Name, ck.Value)
				require.Equal(t, sess+1, p.session.Load(), "%s: the cookie worked before", name)
			}

			s, ck := startCookie(t, m, "alice")
			works("terminated", h, ck)
			require.NoError(t, m.Terminate(ctx, s.ID()))
			check("terminated", h, ck)

			_, ck = startCookie(t, m, "bob")
			works("logged out", h, ck)
			r := httptest.NewRequest(http.MethodPost, "/logout", nil)
			r.AddCookie(ck)
			require.NoError(t, m.End(httptest.NewRecorder(), r))
			check("logged out", h, ck)

			_, ck = startCookie(t, m, "carol")
			works("evicted", h, ck)
			_, ck2 := startCookie(t, m, "carol") // limit 1
			check("evicted", h, ck)
			works("the evicting session", h, ck2)

			_, ck = startCookie(t, m, "dave")
			_, err := m.TerminateUser(ctx, "dave")
			require.NoError(t, err)
			check("user terminated", h, ck)

			hs := short.Middleware(p.handler())
			s, ck = startCookie(t, short, "erin")
			waitPast(t, s.LastActivity().Add(idle))
			check("expired", hs, ck)
		})
	}
}

func TestMiddlewareStoreFailure(t *testing.T) {
	checkNoLeaks(t)
	cs := &countingStore{inner: sessions.NewMemoryStore()}
	cfg := sessions.Config{Keys: [][]byte{testKey('a')}, Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true}

	t.Run("default error handler", func(t *testing.T) {
		m, log := startManager(t, cfg, sessions.WithStore(cs))
		_, ck := startCookie(t, m, "alice")
		var p nextProbe
		h := m.Middleware(p.handler())
		cs.fail.Store(true)
		resp := serveCookie(h, ck.Name, ck.Value)
		cs.fail.Store(false)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		assert.Zero(t, p.called.Load(), "next is not called")
		assertNoSetCookie(t, resp) // an outage is not a logout
		assert.Positive(t, m.Stats().StoreErrors)

		// The session outlived the outage.
		serveCookie(h, ck.Name, ck.Value)
		assert.Equal(t, int64(1), p.session.Load())
		assert.Zero(t, log.len())
	})

	t.Run("WithErrorHandler", func(t *testing.T) {
		var got error
		var calls int
		m, _ := startManager(t, cfg, sessions.WithStore(cs), sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			calls++
			got = err
			http.Error(w, "try later", http.StatusTeapot)
		}))
		_, ck := startCookie(t, m, "alice")
		var p nextProbe
		h := m.Middleware(p.handler())
		cs.fail.Store(true)
		resp := serveCookie(h, ck.Name, ck.Value)
		cs.fail.Store(false)
		assert.Equal(t, http.StatusTeapot, resp.StatusCode)
		assert.Equal(t, 1, calls)
		assert.ErrorIs(t, got, errStoreDown)
		assert.Zero(t, p.called.Load())
		assertNoSetCookie(t, resp)
	})

	t.Run("store failure in Start and End", func(t *testing.T) {
		m, _ := startManager(t, cfg, sessions.WithStore(cs))
		_, ck := startCookie(t, m, "alice")
		cs.fail.Store(true)
		defer cs.fail.Store(false)
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		_, err := m.Start(httptest.NewRecorder(), r, "bob", nil)
		assert.ErrorIs(t, err, errStoreDown)
		r.AddCookie(ck)
		assert.ErrorIs(t, m.End(httptest.NewRecorder(), r), errStoreDown)
		_, err = m.Create(ctx, "bob", nil)
		assert.ErrorIs(t, err, errStoreDown)
	})
}

func TestCookieAttributes(t *testing.T) {
	checkNoLeaks(t)
	for _, tc := range []struct {
		name     string
		cookie   sessions.CookieConfig
		wantName string
		secure   bool
		domain   string
		path     string
		sameSite http.SameSite
		maxAge   int
	}{
		{"default", sessions.CookieConfig{}, "__Host-session", true, "", "/", http.SameSiteLaxMode, 0},
		{"Insecure", sessions.CookieConfig{Insecure: true}, "session", false, "", "/", http.SameSiteLaxMode, 0},
		{"Domain", sessions.CookieConfig{Domain: "example.com"}, "session", true, "example.com", "/", http.SameSiteLaxMode, 0},
		{"Strict and MaxAge", sessions.CookieConfig{SameSite: http.SameSiteStrictMode, MaxAge: 2 * time.Hour}, "__Host-session", true, "", "/", http.SameSiteStrictMode, 7200},
		{"None", sessions.CookieConfig{SameSite: http.SameSiteNoneMode}, "__Host-session", true, "", "/", http.SameSiteNoneMode, 0},
		{"custom name and path", sessions.CookieConfig{Name: "sid", Path: "/app"}, "sid", true, "", "/app", http.SameSiteLaxMode, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := startManager(t, sessions.Config{Cookie: tc.cookie, DisableAutoCleanup: true})
			w := httptest.NewRecorder()
			_, err := m.Start(w, httptest.NewRequest(http.MethodPost, "/", nil), "alice", nil)
			require.NoError(t, err)
			resp := w.Result()
			ck := sessionCookie(t, resp, tc.wantName)
			check := func(ck *http.Cookie, raw string) {
				assert.Equal(t, tc.secure, ck.Secure, "Secure: %s", raw)
				assert.True(t, ck.HttpOnly, "HttpOnly: %s", raw)
				assert.Equal(t, tc.path, ck.Path, raw)
				assert.Equal(t, tc.domain, ck.Domain, raw)
				assert.Equal(t, tc.sameSite, ck.SameSite, raw)
			}
			raw := resp.Header.Get("Set-Cookie")
			check(ck, raw)
			assert.Equal(t, tc.maxAge, ck.MaxAge, raw)
			if tc.maxAge == 0 {
				assert.NotContains(t, raw, "Expires", "a browser-session cookie")
			}
			assert.LessOrEqual(t, len(ck.Value), 4096)

			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.AddCookie(ck)
			w = httptest.NewRecorder()
			require.NoError(t, m.End(w, r))
			resp = w.Result()
			ex := sessionCookie(t, resp, tc.wantName)
			check(ex, resp.Header.Get("Set-Cookie"))
			assert.Less(t, ex.MaxAge, 0, "End expires the cookie")
		})
	}
}

func TestFromContext(t *testing.T) {
	checkNoLeaks(t)
	s, ok := sessions.FromContext(context.Background())
	assert.False(t, ok)
	assert.Nil(t, s)

	m, log := startManager(t, sessions.Config{Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true})
	old, ck := startCookie(t, m, "alice")
	var steps []string
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur, ok := sessions.FromContext(r.Context())
		steps = append(steps, fmt.Sprint("before ", ok && cur.ID() == old.ID()))
		s, err := m.Start(w, r, "alice", nil)
		require.NoError(t, err)
		cur, ok = sessions.FromContext(r.Context())
		steps = append(steps, fmt.Sprint("after Start ", ok && cur.ID() == s.ID() && s.ID() != old.ID()))
		require.NoError(t, m.End(w, r))
		cur, ok = sessions.FromContext(r.Context())
		steps = append(steps, fmt.Sprint("after End ", ok, cur == nil))
		_, err = m.Get(ctx, s.ID())
		steps = append(steps, fmt.Sprint("new session ended ", errors.Is(err, sessions.ErrNotFound)))
	}))
	serveCookie(h, ck.Name, ck.Value)
	assert.Equal(t, []string{"before true", "after Start true", "after End false true", "new session ended true"}, steps)
	log.waitEvent(t, old.ID(), sessions.ReasonRenewed)

	// Without the Middleware there is no session in the context.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(ck)
	_, ok = sessions.FromContext(r.Context())
	assert.False(t, ok)
}

func TestStartAndEndWithoutMiddleware(t *testing.T) {
	checkNoLeaks(t)
	m, log := startManager(t, sessions.Config{Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true})
	old, ck := startCookie(t, m, "alice")

	// Start ends the session the request's cookie names.
	r := httptest.NewRequest(http.MethodPost, "/login", nil)
	r.AddCookie(ck)
	w := httptest.NewRecorder()
	s, err := m.Start(w, r, "alice", map[string]any{"k": 1})
	require.NoError(t, err)
	assert.NotEqual(t, old.ID(), s.ID())
	log.waitEvent(t, old.ID(), sessions.ReasonRenewed)
	v, _ := s.Get("k")
	assert.Equal(t, 1, v)
	ck2 := sessionCookie(t, w.Result(), "session")

	// End ends the session its cookie names.
	r = httptest.NewRequest(http.MethodPost, "/logout", nil)
	r.AddCookie(ck2)
	w = httptest.NewRecorder()
	require.NoError(t, m.End(w, r))
	assertExpiring(t, w.Result(), "session")
	log.waitEvent(t, s.ID(), sessions.ReasonLogout)

	// A forged cookie ends nothing.
	live, _ := startCookie(t, m, "bob")
	r = httptest.NewRequest(http.MethodPost, "/logout", nil)
	r.AddCookie(&http.Cookie{Name: "session", Value: live.ID()})
	require.NoError(t, m.End(httptest.NewRecorder(), r))
	_, err = m.Get(ctx, live.ID())
	assert.NoError(t, err)
}

func TestMiddlewareAnonymousSessions(t *testing.T) {
	checkNoLeaks(t)
	m, _ := startManager(t, sessions.Config{Cookie: sessions.CookieConfig{Insecure: true}, MaxSessionsPerUser: 1, DisableAutoCleanup: true})
	srv := httptest.NewServer(m.Middleware(app{m}.mux()))
	t.Cleanup(srv.Close)
	for range 3 {
		c := newClient(t, srv)
		x := do(t, c, "POST", srv.URL+"/login?user=")
		require.Equal(t, http.StatusOK, x.status, x.body)
		id := x.body
		x = do(t, c, "GET", srv.URL+"/whoami")
		assert.Equal(t, " "+id, x.body, "an anonymous session comes back")
		do(t, c, "POST", srv.URL+"/set?k=cart&v=3")
		assert.Equal(t, "3", do(t, c, "GET", srv.URL+"/get?k=cart").body)
	}
	st := m.Stats()
	assert.Equal(t, 3, st.ActiveSessions, "anonymous sessions are not limited")
	assert.Zero(t, st.UniqueUsers)
}

func TestMiddlewareRecordsActivity(t *testing.T) {
	checkNoLeaks(t)
	for _, generic := range []bool{false, true} {
		cfg := sessions.Config{Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true}
		var opts []sessions.Option
		if generic {
			cfg.Keys = [][]byte{testKey('a')}
			opts = append(opts, sessions.WithStore(&countingStore{inner: sessions.NewMemoryStore()}))
		}
		m, _ := startManager(t, cfg, opts...)
		s, ck := startCookie(t, m, "alice")
		start := s.LastActivity()
		h := m.Middleware(http.NotFoundHandler())
		waitPast(t, start)
		serveCookie(h, ck.Name, ck.Value)
		got, err := m.Get(ctx, s.ID())
		require.NoError(t, err)
		assert.True(t, got.LastActivity().After(start), "generic %v: a request records activity", generic)
	}
}

func TestMiddlewareKeepsSessionAliveAcrossIdleTimeout(t *testing.T) {
	checkNoLeaks(t)
	const idle = 300 * time.Millisecond
	m, _ := startManager(t, sessions.Config{IdleTimeout: idle, Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true})
	s, ck := startCookie(t, m, "alice")
	var p nextProbe
	h := m.Middleware(p.handler())
	waitPast(t, s.CreatedAt().Add(idle/2))
	serveCookie(h, ck.Name, ck.Value)
	require.Equal(t, int64(1), p.session.Load())
	touched := s.LastActivity()
	waitPast(t, s.CreatedAt().Add(idle))
	serveCookie(h, ck.Name, ck.Value)
	if time.Since(touched) < idle {
		assert.Equal(t, int64(2), p.session.Load(), "requests keep the session alive")
	}
}

func TestKeyRotation(t *testing.T) {
	checkNoLeaks(t)
	st := sessions.NewMemoryStore()
	k1, k2 := testKey('1'), testKey('2')
	base := sessions.Config{Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true}
	cfgOld, cfgNew := base, base
	cfgOld.Keys = [][]byte{k1}
	cfgNew.Keys = [][]byte{k2, k1}
	mOld, _ := startManager(t, cfgOld, sessions.WithStore(st))
	mNew, _ := startManager(t, cfgNew, sessions.WithStore(st))

	_, oldCk := startCookie(t, mOld, "alice")
	_, newCk := startCookie(t, mNew, "bob")
	var p nextProbe
	serveCookie(mNew.Middleware(p.handler()), oldCk.Name, oldCk.Value)
	assert.Equal(t, int64(1), p.session.Load(), "a cookie signed by an older key verifies")
	resp := serveCookie(mOld.Middleware(p.handler()), newCk.Name, newCk.Value)
	assert.Equal(t, int64(1), p.session.Load(), "Keys[0] signs: the new key is unknown to the old manager")
	assertExpiring(t, resp, "session")
}

func TestStartEnforcesTheLimit(t *testing.T) {
	checkNoLeaks(t)
	m, log := startManager(t, sessions.Config{MaxSessionsPerUser: 1, LimitPolicy: sessions.RejectNew,
		Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true})
	first, ck := startCookie(t, m, "alice")

	w := httptest.NewRecorder()
	s, err := m.Start(w, httptest.NewRequest(http.MethodPost, "/login", nil), "alice", nil)
	require.ErrorIs(t, err, sessions.ErrLimitReached)
	assert.Nil(t, s)
	assertNoSetCookie(t, w.Result())
	_, err = m.Get(ctx, first.ID())
	require.NoError(t, err, "nothing ended")

	// Logging in again from the session's own client renews it: the old
	// session ends first, so its slot is free.
	r := httptest.NewRequest(http.MethodPost, "/login", nil)
	r.AddCookie(ck)
	w = httptest.NewRecorder()
	s, err = m.Start(w, r, "alice", nil)
	require.NoError(t, err)
	assert.NotEqual(t, first.ID(), s.ID())
	log.waitEvent(t, first.ID(), sessions.ReasonRenewed)
}

func TestConcurrentRequestsOnOneSession(t *testing.T) {
	for _, generic := range []bool{false, true} {
		name := "memory store"
		if generic {
			name = "generic store"
		}
		t.Run(name, func(t *testing.T) {
			checkNoLeaks(t)
			cfg := sessions.Config{Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true}
			var opts []sessions.Option
			if generic {
				cfg.Keys = [][]byte{testKey('a')}
				opts = append(opts, sessions.WithStore(&countingStore{inner: sessions.NewMemoryStore()}))
			}
			m, _ := startManager(t, cfg, opts...)
			s, ck := startCookie(t, m, "alice")
			srv := httptest.NewServer(m.Middleware(app{m}.mux()))
			t.Cleanup(srv.Close)

			const goroutines, requests = 8, 10
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					c := &http.Client{Transport: srv.Client().Transport}
					for i := range requests {
						req, err := http.NewRequest("POST", fmt.Sprintf("%s/set?k=g%d-%d&v=%d", srv.URL, g, i, i), nil)
						if !assert.NoError(t, err) {
							return
						}
						req.AddCookie(ck)
						resp, err := c.Do(req)
						if !assert.NoError(t, err) {
							return
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						assert.Equal(t, http.StatusOK, resp.StatusCode)
					}
				})
			}
			wg.Wait()
			got, err := m.Get(ctx, s.ID())
			require.NoError(t, err)
			assert.Len(t, got.Data(), goroutines*requests, "concurrent requests that change different keys lose nothing")
		})
	}
}

func TestGenericStoreSavesBeforeTheResponse(t *testing.T) {
	checkNoLeaks(t)
	cs := &countingStore{inner: sessions.NewMemoryStore()}
	var handlerErr atomic.Value
	m, _ := startManager(t, sessions.Config{Keys: [][]byte{testKey('a')}, Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true},
		sessions.WithStore(cs))
	s, ck := startCookie(t, m, "alice")
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs, ok := sessions.FromContext(r.Context())
		if !ok {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		rs.Set("k", r.URL.Query().Get("v"))
		if r.URL.Query().Get("fail") != "" {
			cs.fail.Store(true)
			defer cs.fail.Store(false)
		}
		write := func() error { _, err := w.Write([]byte("first byte")); return err }
		if r.URL.Query().Get("string") != "" { // through the wrapper's WriteString
			sw, ok := w.(io.StringWriter)
			if !ok {
				handlerErr.Store(errors.New("the Middleware's writer is not an io.StringWriter"))
				return
			}
			write = func() error { _, err := sw.WriteString("first byte"); return err }
		}
		if err := write(); err != nil {
			handlerErr.Store(err)
			return
		}
		// The change was saved before the first byte left.
		got, err := cs.inner.Load(ctx, rs.ID())
		if err != nil || len(got.Values["k"]) == 0 {
			handlerErr.Store(fmt.Errorf("not saved before the first byte: %v", err))
		}
	}))

	r := httptest.NewRequest(http.MethodPost, "/?v=one", nil)
	r.AddCookie(ck)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Nil(t, handlerErr.Load())
	got, err := m.Get(ctx, s.ID())
	require.NoError(t, err)
	v, _ := got.Get("k")
	assert.Equal(t, "one", v)

	// A failed save before anything was written goes to the error handler.
	r = httptest.NewRequest(http.MethodPost, "/?v=two&fail=1", nil)
	r.AddCookie(ck)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.NotContains(t, w.Body.String(), "first byte")
	assert.NotNil(t, handlerErr.Load(), "the handler's write fails")
	assertNoSetCookie(t, w.Result())

	// The same through WriteString.
	handlerErr = atomic.Value{}
	r = httptest.NewRequest(http.MethodPost, "/?v=three&string=1", nil)
	r.AddCookie(ck)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "first byte", w.Body.String())
	assert.Equal(t, []string{"Cookie"}, w.Result().Header.Values("Vary"))
	assert.Nil(t, handlerErr.Load())
	got, err = m.Get(ctx, s.ID())
	require.NoError(t, err)
	v, _ = got.Get("k")
	assert.Equal(t, "three", v)

	r = httptest.NewRequest(http.MethodPost, "/?v=four&fail=1&string=1", nil)
	r.AddCookie(ck)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.NotContains(t, w.Body.String(), "first byte")
	assert.ErrorContains(t, handlerErr.Load().(error), "save failed", "the handler's WriteString fails")
	assertNoSetCookie(t, w.Result())
}
