package routertest

// The request and cookie edges of issue 9 and 10 through chi and echo; the
// net/http runs, and the details, are in the root's caching_test.go,
// cookie_test.go, token_test.go and ended_test.go.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// edgeRoutes are the handlers of the edge tests, each setting the
// Cache-Control of its "cc" query parameter ("after": after its work).
func edgeRoutes(m *sessions.Manager) map[string]http.HandlerFunc {
	withCC := func(work func(w http.ResponseWriter, r *http.Request) (string, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			cc, after := r.URL.Query().Get("cc"), r.URL.Query().Get("after") != ""
			if cc != "" && !after {
				w.Header().Set("Cache-Control", cc)
			}
			body, err := work(w, r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if cc != "" && after {
				w.Header().Set("Cache-Control", cc)
			}
			fmt.Fprint(w, body)
		}
	}
	return map[string]http.HandlerFunc{
		"/page": withCC(func(http.ResponseWriter, *http.Request) (string, error) { return "page", nil }),
		"/whoami": withCC(func(_ http.ResponseWriter, r *http.Request) (string, error) {
			if s, ok := sessions.FromContext(r.Context()); ok {
				return s.UserID(), nil
			}
			return "none", nil
		}),
		"/login": withCC(func(w http.ResponseWriter, r *http.Request) (string, error) {
			s, err := m.Start(w, r, r.URL.Query().Get("user"), nil)
			if err != nil {
				return "", err
			}
			if rem := r.URL.Query().Get("remember"); rem != "" {
				if err := m.RememberMe(w, r, rem == "1"); err != nil {
					return "", err
				}
			}
			return s.ID(), nil
		}),
		"/logout": withCC(func(w http.ResponseWriter, r *http.Request) (string, error) { return "bye", m.End(w, r) }),
		// A logout elsewhere while the request runs, then a change.
		"/ended": func(w http.ResponseWriter, r *http.Request) {
			s, ok := sessions.FromContext(r.Context())
			if !ok {
				http.Error(w, "no session", http.StatusUnauthorized)
				return
			}
			if err := m.Terminate(r.Context(), s.ID()); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			s.Set("cart", "3 items")
			fmt.Fprint(w, "saved your cart")
		},
	}
}

// edgeRouters returns the routes behind the Middleware in chi and echo.
func edgeRouters(m *sessions.Manager) map[string]http.Handler {
	r := chi.NewRouter()
	r.Use(m.Middleware)
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(echo.WrapMiddleware(m.Middleware))
	for path, h := range edgeRoutes(m) {
		r.Handle(path, h)
		e.Any(path, echo.WrapHandler(h))
	}
	return map[string]http.Handler{"chi": r, "echo": e}
}

// edgeDirectives returns resp's Cache-Control directives, lower-cased.
func edgeDirectives(resp *http.Response) []string {
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

func edgeVaries(resp *http.Response, name string) bool {
	for _, line := range resp.Header.Values("Vary") {
		for v := range strings.SplitSeq(line, ",") {
			if strings.EqualFold(strings.TrimSpace(v), name) {
				return true
			}
		}
	}
	return false
}

// assertPrivate checks that no shared cache may store resp and that the
// app's kept directives survived.
func assertPrivate(t *testing.T, resp *http.Response, kept ...string) {
	t.Helper()
	ds := edgeDirectives(resp)
	assert.Contains(t, ds, "private", "Cache-Control %q", ds)
	assert.Contains(t, ds, `no-cache="set-cookie"`, "Cache-Control %q", ds)
	assert.NotContains(t, ds, "public", "Cache-Control %q", ds)
	for _, k := range kept {
		assert.Contains(t, ds, k, "Cache-Control %q", ds)
	}
	assert.True(t, edgeVaries(resp, "Cookie"), "Vary %q", resp.Header.Values("Vary"))
}

func TestRouterEdges(t *testing.T) {
	checkNoLeaks(t)
	const maxAge = 3 * time.Second
	public := url.QueryEscape("public, max-age=600")
	for _, generic := range []bool{false, true} {
		cfg := sessions.Config{IdleTimeout: time.Minute, Cookie: sessions.CookieConfig{Insecure: true, MaxAge: maxAge}, DisableAutoCleanup: true}
		opts := []sessions.Option{sessions.WithTokenHeader("X-Session-Token")}
		store := "memory store"
		if generic {
			store = "generic store"
			cfg.Keys = [][]byte{testKey('r')}
			opts = append(opts, sessions.WithStore(genericStore{sessions.NewMemoryStore()}))
		}
		m, _ := startManager(t, cfg, opts...)
		for name, h := range edgeRouters(m) {
			t.Run(name+" "+store, func(t *testing.T) {
				srv := httptest.NewServer(h)
				t.Cleanup(srv.Close)
				c := &http.Client{Transport: srv.Client().Transport}
				u := srv.URL

				// Login: persistent by default, no-store kept, public dropped.
				loggedIn := time.Now()
				x := do(t, c, "POST", u+"/login?user=alice&cc=no-store")
				require.Equal(t, http.StatusOK, x.status, x.body)
				ck := sessionCookie(t, x.resp, "session")
				assert.Equal(t, 3, ck.MaxAge)
				assertPrivate(t, x.resp, "no-store")
				token := x.resp.Header.Get("X-Session-Token")
				assert.Equal(t, ck.Value, token)
				x = do(t, c, "POST", u+"/login?user=bob&remember=0&after=1&cc="+public)
				require.Equal(t, http.StatusOK, x.status, x.body)
				bob := sessionCookie(t, x.resp, "session")
				assert.Zero(t, bob.MaxAge, "RememberMe(false): a browser-session cookie")
				assertPrivate(t, x.resp, "max-age=600")

				// A session page varies on Cookie and is not re-issued yet.
				x = do(t, c, "GET", u+"/whoami?cc="+public, ck)
				assert.Equal(t, "alice", x.body)
				assertNoSetCookie(t, x.resp)
				assert.True(t, edgeVaries(x.resp, "Cookie"))

				// The Middleware's own expiring cookie on a public page.
				forged := &http.Cookie{Name: "session", Value: ck.Value[:len(ck.Value)-4] + "AAA="}
				for _, q := range []string{"?cc=" + public, "?after=1&cc=" + public} {
					x = do(t, c, "GET", u+"/page"+q, forged)
					assert.Equal(t, http.StatusOK, x.status)
					assertExpiring(t, x.resp, "session")
					assertPrivate(t, x.resp, "max-age=600")
				}

				// The header token, and bad ones.
				req, _ := http.NewRequest("GET", u+"/whoami", nil)
				req.Header.Set("X-Session-Token", token)
				resp, err := c.Do(req)
				require.NoError(t, err)
				body := readAll(t, resp)
				assert.Equal(t, "alice", body)
				assert.True(t, edgeVaries(resp, "X-Session-Token"))
				for _, bad := range []string{"garbage", token[:len(token)-2], forged.Value} {
					req.Header.Set("X-Session-Token", bad)
					resp, err := c.Do(req)
					require.NoError(t, err)
					assert.Equal(t, "none", readAll(t, resp))
					assert.Equal(t, http.StatusOK, resp.StatusCode)
				}

				// Past a tenth of MaxAge: the persistent cookie comes back;
				// the browser-session one does not.
				waitPast(t, loggedIn.Add(time.Second+maxAge/10))
				x = do(t, c, "GET", u+"/whoami", ck)
				assert.Equal(t, "alice", x.body)
				re := sessionCookie(t, x.resp, "session")
				assert.Equal(t, 3, re.MaxAge)
				assertPrivate(t, x.resp)
				x = do(t, c, "GET", u+"/whoami", bob)
				assert.Equal(t, "bob", x.body)
				assertNoSetCookie(t, x.resp)

				// Ended while the request ran (shared stores save before the
				// response; on the memory store there is nothing to save).
				x = do(t, c, "POST", u+"/ended", re)
				if generic {
					assert.Equal(t, http.StatusConflict, x.status, x.body)
					assert.NotContains(t, x.body, "saved your cart")
					assertExpiring(t, x.resp, "session")
					assertPrivate(t, x.resp)
					assert.Zero(t, m.Stats().StoreErrors)
				} else {
					assert.Equal(t, http.StatusOK, x.status, x.body)
				}
				x = do(t, c, "GET", u+"/whoami", re)
				assert.Equal(t, "none", x.body)
			})
		}
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 512)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

// waitPast waits until the clock has passed at.
func waitPast(t *testing.T, at time.Time) {
	t.Helper()
	require.Eventually(t, func() bool { return time.Now().After(at) }, waitFor+time.Until(at), poll)
}
