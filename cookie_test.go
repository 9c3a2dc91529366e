package sessions_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// rememberApp logs in with the "remember" choice of the query ("" → the
// default), lets a signed-in user change it, and says who is signed in.
type rememberApp struct{ m *sessions.Manager }

func (a rememberApp) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if _, err := a.m.Start(w, r, r.URL.Query().Get("user"), nil); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if rem := r.URL.Query().Get("remember"); rem != "" {
			if err := a.m.RememberMe(w, r, rem == "1"); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("POST /remember", func(w http.ResponseWriter, r *http.Request) {
		if err := a.m.RememberMe(w, r, r.URL.Query().Get("remember") == "1"); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("GET /whoami", app{a.m}.whoami)
	return a.m.Middleware(mux)
}

// setCookies returns resp's Set-Cookie values of the cookie name.
func setCookies(resp *http.Response, name string) []*http.Cookie {
	var cs []*http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == name {
			cs = append(cs, c)
		}
	}
	return cs
}

// TestPersistentCookieReissued: with Cookie.MaxAge, a session in use keeps
// its cookie: a request more than MaxAge/10 after the cookie was issued gets
// it again, with the full MaxAge; a request soon after does not.
func TestPersistentCookieReissued(t *testing.T) {
	checkNoLeaks(t)
	const maxAge = 3 * time.Second
	for _, generic := range []bool{false, true} {
		name := "memory store"
		cfg := sessions.Config{IdleTimeout: time.Minute, Cookie: sessions.CookieConfig{Insecure: true, MaxAge: maxAge}, DisableAutoCleanup: true}
		var opts []sessions.Option
		if generic {
			name = "generic store"
			cfg.Keys = [][]byte{testKey('p')}
			opts = append(opts, sessions.WithStore(&countingStore{inner: sessions.NewMemoryStore()}))
		}
		t.Run(name, func(t *testing.T) {
			m, _ := startManager(t, cfg, opts...)
			srv := httptest.NewServer(rememberApp{m}.handler())
			t.Cleanup(srv.Close)
			c := &http.Client{Transport: srv.Client().Transport}
			u := srv.URL

			loggedIn := time.Now()
			x := do(t, c, "POST", u+"/login?user=alice")
			require.Equal(t, http.StatusOK, x.status, x.body)
			ck := sessionCookie(t, x.resp, "session")
			assert.Equal(t, 3, ck.MaxAge)
			who := do(t, c, "GET", u+"/whoami", ck).body
			require.True(t, strings.HasPrefix(who, "alice "), who)

			// Soon after: not re-issued (the date in the cookie has whole
			// seconds, so "soon" is under MaxAge/10 after the end of the
			// second it was issued in).
			x = do(t, c, "GET", u+"/whoami", ck)
			assertNoSetCookie(t, x.resp)

			// Later: re-issued, persistent again, and kept out of shared
			// caches.
			waitPast(t, loggedIn.Add(time.Second+maxAge/10))
			x = do(t, c, "GET", u+"/whoami", ck)
			assert.Equal(t, who, x.body)
			re := setCookies(x.resp, "session")
			require.Len(t, re, 1, "re-issued once: %q", x.resp.Header.Values("Set-Cookie"))
			assert.Equal(t, 3, re[0].MaxAge)
			assert.NotEqual(t, ck.Value, re[0].Value)
			assertNotShared(t, x.resp)

			// The new cookie names the same session and is fresh; the old
			// one (another tab may still send it) still works.
			x = do(t, c, "GET", u+"/whoami", re[0])
			assert.Equal(t, who, x.body)
			assertNoSetCookie(t, x.resp)
			x = do(t, c, "GET", u+"/whoami", ck)
			assert.Equal(t, who, x.body)
		})
	}
}

// TestRememberMe: one manager gives a persistent cookie to a login that
// asks to be remembered and a browser-session cookie to one that does not;
// the choice is signed into the cookie, so it holds when the cookie is
// re-issued, and a signed-in user may change it.
func TestRememberMe(t *testing.T) {
	checkNoLeaks(t)
	const maxAge = 3 * time.Second
	m, _ := startManager(t, sessions.Config{IdleTimeout: time.Minute, Cookie: sessions.CookieConfig{Insecure: true, MaxAge: maxAge}, DisableAutoCleanup: true})
	srv := httptest.NewServer(rememberApp{m}.handler())
	t.Cleanup(srv.Close)
	c := &http.Client{Transport: srv.Client().Transport}
	u := srv.URL

	loggedIn := time.Now()
	x := do(t, c, "POST", u+"/login?user=alice&remember=1")
	require.Equal(t, http.StatusOK, x.status, x.body)
	require.Len(t, setCookies(x.resp, "session"), 1, "one Set-Cookie: RememberMe replaces Start's")
	remembered := sessionCookie(t, x.resp, "session")
	assert.Equal(t, 3, remembered.MaxAge)

	x = do(t, c, "POST", u+"/login?user=bob&remember=0")
	require.Equal(t, http.StatusOK, x.status, x.body)
	require.Len(t, setCookies(x.resp, "session"), 1)
	forgotten := sessionCookie(t, x.resp, "session")
	assert.Zero(t, forgotten.MaxAge, "a browser-session cookie")
	assert.NotContains(t, x.resp.Header.Get("Set-Cookie"), "Expires")
	assertNotShared(t, x.resp)
	assert.True(t, strings.HasPrefix(do(t, c, "GET", u+"/whoami", forgotten).body, "bob "))

	// Past the re-issue age: the remembered cookie comes back persistent;
	// the browser-session one is never re-issued (nothing would expire it).
	waitPast(t, loggedIn.Add(time.Second+maxAge/10))
	x = do(t, c, "GET", u+"/whoami", remembered)
	assert.True(t, strings.HasPrefix(x.body, "alice "), x.body)
	if re := setCookies(x.resp, "session"); assert.Len(t, re, 1) {
		assert.Equal(t, 3, re[0].MaxAge)
	}
	x = do(t, c, "GET", u+"/whoami", forgotten)
	assert.True(t, strings.HasPrefix(x.body, "bob "), x.body)
	assertNoSetCookie(t, x.resp)

	// "Keep me signed in" later: the browser-session cookie becomes
	// persistent, and the choice holds for the new cookie.
	x = do(t, c, "POST", u+"/remember?remember=1", forgotten)
	require.Equal(t, http.StatusOK, x.status, x.body)
	kept := sessionCookie(t, x.resp, "session")
	assert.Equal(t, 3, kept.MaxAge)
	assert.True(t, strings.HasPrefix(do(t, c, "GET", u+"/whoami", kept).body, "bob "))

	// No session: ErrNotFound.
	x = do(t, c, "POST", u+"/remember?remember=1")
	assert.Equal(t, http.StatusConflict, x.status)
	assert.Contains(t, x.body, sessions.ErrNotFound.Error())

	// Outside the Middleware it works on the request's cookie.
	r := httptest.NewRequest(http.MethodPost, "/remember", nil)
	r.AddCookie(remembered)
	w := httptest.NewRecorder()
	require.NoError(t, m.RememberMe(w, r, false))
	assert.Zero(t, sessionCookie(t, w.Result(), "session").MaxAge)

	// Without Cookie.MaxAge there is no lifetime to remember for.
	plain, _ := startManager(t, sessions.Config{Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true})
	_, pck := startCookie(t, plain, "carol")
	r = httptest.NewRequest(http.MethodPost, "/remember", nil)
	r.AddCookie(pck)
	assert.ErrorIs(t, plain.RememberMe(httptest.NewRecorder(), r, true), sessions.ErrInvalidConfig)
	w = httptest.NewRecorder()
	require.NoError(t, plain.RememberMe(w, r, false))
	assert.Zero(t, sessionCookie(t, w.Result(), "session").MaxAge)
}
