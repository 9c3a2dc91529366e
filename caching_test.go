package sessions_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// cacheApp is an app whose handlers set the Cache-Control of the "cc"
// query parameter, before the session work or, with "after", after it.
type cacheApp struct{ m *sessions.Manager }

// handle returns the handler of one route: work is what it does with the
// session (nothing, Start or End).
func (a cacheApp) handle(work func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cc := r.URL.Query().Get("cc")
		after := r.URL.Query().Get("after") != ""
		if cc != "" && !after {
			w.Header().Set("Cache-Control", cc)
		}
		if err := work(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if cc != "" && after {
			w.Header().Set("Cache-Control", cc)
		}
		_, _ = w.Write([]byte("ok"))
	}
}

func (a cacheApp) routes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"/page": a.handle(func(http.ResponseWriter, *http.Request) error { return nil }),
		"/read": a.handle(func(_ http.ResponseWriter, r *http.Request) error {
			sessions.FromContext(r.Context())
			return nil
		}),
		"/login": a.handle(func(w http.ResponseWriter, r *http.Request) error {
			_, err := a.m.Start(w, r, "alice", nil)
			return err
		}),
		"/logout": a.handle(func(w http.ResponseWriter, r *http.Request) error { return a.m.End(w, r) }),
	}
}

// handler returns the app through net/http's ServeMux (the chi and echo
// runs are in internal/routertest, a module of their own).
func (a cacheApp) handler() http.Handler {
	mux := http.NewServeMux()
	for path, h := range a.routes() {
		mux.Handle(path, h)
	}
	return a.m.Middleware(mux)
}

// directives returns the Cache-Control directives of resp, lower-cased.
func directives(resp *http.Response) []string {
	var ds []string
	for _, line := range resp.Header.Values("Cache-Control") {
		for d := range strings.SplitSeq(line, ",") {
			if d = strings.TrimSpace(d); d != "" {
				ds = append(ds, strings.ToLower(d))
			}
		}
	}
	return ds
}

// varies reports whether resp's Vary lists name.
func varies(resp *http.Response, name string) bool {
	for _, line := range resp.Header.Values("Vary") {
		for v := range strings.SplitSeq(line, ",") {
			if strings.EqualFold(strings.TrimSpace(v), name) {
				return true
			}
		}
	}
	return false
}

// assertNotShared checks that a shared cache may not store resp, and that
// what the app asked for that is stricter or private-cache-only survived.
func assertNotShared(t *testing.T, resp *http.Response, kept ...string) {
	t.Helper()
	ds := directives(resp)
	assert.Contains(t, ds, "private", "Cache-Control %q", ds)
	assert.Contains(t, ds, `no-cache="set-cookie"`, "Cache-Control %q", ds)
	assert.NotContains(t, ds, "public", "Cache-Control %q", ds)
	for _, d := range ds {
		assert.False(t, strings.HasPrefix(d, "s-maxage"), "Cache-Control %q", ds)
	}
	for _, k := range kept {
		assert.Contains(t, ds, k, "the app's %q is kept: Cache-Control %q", k, ds)
	}
	assert.True(t, varies(resp, "Cookie"), "Vary %q", resp.Header.Values("Vary"))
}

func TestCachingHeaders(t *testing.T) {
	checkNoLeaks(t)
	const public = "public, max-age=600, s-maxage=600"
	for _, generic := range []bool{false, true} {
		cfg := sessions.Config{Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true}
		var opts []sessions.Option
		if generic {
			cfg.Keys = [][]byte{testKey('c')}
			opts = append(opts, sessions.WithStore(&countingStore{inner: sessions.NewMemoryStore()}))
		}
		m, _ := startManager(t, cfg, opts...)
		name := "memory store"
		if generic {
			name = "generic store"
		}
		h := cacheApp{m}.handler()
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			c := &http.Client{Transport: srv.Client().Transport}
			u := srv.URL
			_, ck := startCookie(t, m, "bob")
			forged := &http.Cookie{Name: ck.Name, Value: ck.Value[:len(ck.Value)-4] + "AAA="}

			// The Middleware's own expiring Set-Cookie, on a page the app
			// marked public: kept out of shared caches.
			x := do(t, c, "GET", u+"/page?cc="+url.QueryEscape(public), forged)
			require.Equal(t, http.StatusOK, x.status, x.body)
			assertExpiring(t, x.resp, ck.Name)
			assertNotShared(t, x.resp, "max-age=600")
			// The same when the app sets it after the Middleware has
			// expired the cookie (it always does: next runs after).
			x = do(t, c, "GET", u+"/page?after=1&cc="+url.QueryEscape(public), forged)
			assertExpiring(t, x.resp, ck.Name)
			assertNotShared(t, x.resp, "max-age=600")

			// A page served with a session varies on Cookie, and the app's
			// caching is its own when no cookie is set.
			x = do(t, c, "GET", u+"/page?cc="+url.QueryEscape(public), ck)
			assertNoSetCookie(t, x.resp)
			assert.True(t, varies(x.resp, "Cookie"), "Vary %q", x.resp.Header.Values("Vary"))
			assert.Contains(t, directives(x.resp), "public")

			// No cookie: a handler that read the session varies on Cookie;
			// one that did not (a static file) stays cacheable.
			x = do(t, c, "GET", u+"/read")
			assert.True(t, varies(x.resp, "Cookie"), "Vary %q", x.resp.Header.Values("Vary"))
			x = do(t, c, "GET", u+"/page?cc="+url.QueryEscape(public))
			assert.Empty(t, x.resp.Header.Values("Vary"))
			assert.Equal(t, strings.Split(public, ", "), directives(x.resp))

			// Start and End add to the app's Cache-Control, never weaken
			// it: no-store stays; public goes, set before or after.
			x = do(t, c, "POST", u+"/login?cc=no-store")
			require.Equal(t, http.StatusOK, x.status, x.body)
			login := sessionCookie(t, x.resp, ck.Name)
			assertNotShared(t, x.resp, "no-store")
			x = do(t, c, "POST", u+"/login?after=1&cc="+url.QueryEscape(public))
			assertNotShared(t, x.resp, "max-age=600")
			x = do(t, c, "POST", u+"/logout?cc=no-store,+must-revalidate", login)
			require.Equal(t, http.StatusOK, x.status, x.body)
			assertExpiring(t, x.resp, ck.Name)
			assertNotShared(t, x.resp, "no-store", "must-revalidate")
			x = do(t, c, "POST", u+"/logout?after=1&cc="+url.QueryEscape(public))
			assertNotShared(t, x.resp, "max-age=600")

			// A stale cookie, then a login in the same response: one
			// Set-Cookie, the new one.
			x = do(t, c, "POST", u+"/login", forged)
			require.Len(t, x.resp.Header.Values("Set-Cookie"), 1, "%q", x.resp.Header.Values("Set-Cookie"))
			assert.NotEmpty(t, sessionCookie(t, x.resp, ck.Name).Value)
		})
	}
}

// TestCachingHeadersMerge checks the Cache-Control merge on its own: what
// is added, what is dropped, what stays, with quoted commas and several
// header lines.
func TestCachingHeadersMerge(t *testing.T) {
	checkNoLeaks(t)
	m, _ := startManager(t, sessions.Config{Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true})
	for _, tc := range []struct {
		app  []string
		want string
	}{
		{nil, `private, no-cache="Set-Cookie"`},
		{[]string{"public, max-age=600"}, `max-age=600, private, no-cache="Set-Cookie"`},
		{[]string{"no-store"}, `no-store, private, no-cache="Set-Cookie"`},
		{[]string{"no-cache"}, `no-cache, private`},
		{[]string{"private, no-cache"}, `private, no-cache`},
		{[]string{`Public, S-Maxage=60, private="X-Secret"`}, `private, no-cache="Set-Cookie"`},
		{[]string{`no-cache="X-A, Set-Cookie"`, "max-age=5"}, `no-cache="X-A, Set-Cookie", max-age=5, private`},
		{[]string{`no-cache="X-A, X-B", public`}, `no-cache="X-A, X-B", private, no-cache="Set-Cookie"`},
		{[]string{`private, no-cache="Set-Cookie"`}, `private, no-cache="Set-Cookie"`},
	} {
		w := httptest.NewRecorder()
		for _, v := range tc.app {
			w.Header().Add("Cache-Control", v)
		}
		require.NoError(t, m.End(w, httptest.NewRequest(http.MethodPost, "/", nil)))
		assert.Equal(t, []string{tc.want}, w.Result().Header.Values("Cache-Control"), "app %q", tc.app)
		assert.Equal(t, []string{"Cookie"}, w.Result().Header.Values("Vary"), "app %q", tc.app)
	}
	// Vary: an existing list is extended once; "*" is left alone.
	for app, want := range map[string][]string{
		"Accept-Encoding": {"Accept-Encoding", "Cookie"},
		"accept, cookie":  {"accept, cookie"},
		"*":               {"*"},
	} {
		w := httptest.NewRecorder()
		w.Header().Set("Vary", app)
		require.NoError(t, m.End(w, httptest.NewRequest(http.MethodPost, "/", nil)))
		assert.Equal(t, want, w.Result().Header.Values("Vary"), "app Vary %q", app)
	}
}
