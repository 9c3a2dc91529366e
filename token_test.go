package sessions_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// serveHeader sends one request to h with the header name: value.
func serveHeader(h http.Handler, method, path, name, value string) *http.Response {
	r := httptest.NewRequest(method, path, nil)
	if name != "" {
		r.Header.Set(name, value)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

// TestHeaderToken: with WithTokenHeader, an API client sends the session
// token in a header instead of the cookie, verified the same way: a bad
// token is no session and costs no store call, and never a 5xx.
func TestHeaderToken(t *testing.T) {
	checkNoLeaks(t)
	for _, tc := range []struct {
		name    string
		header  string
		prefix  string // before the token in the request header
		generic bool
	}{
		{"X-Session-Token memory store", "X-Session-Token", "", false},
		{"X-Session-Token generic store", "x-session-token", "", true},
		{"Authorization Bearer", "Authorization", "Bearer ", false},
		{"Authorization Bearer generic store", "Authorization", "Bearer ", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := sessions.NewMemoryStore()
			cfg := sessions.Config{Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true}
			var store sessions.Store = mem
			var cs *countingStore
			if tc.generic {
				cs = &countingStore{inner: mem}
				store = cs
				cfg.Keys = [][]byte{testKey('t')}
			}
			m, log := startManager(t, cfg, sessions.WithStore(store), sessions.WithTokenHeader(tc.header))
			other, _ := startManager(t, sessions.Config{Keys: [][]byte{testKey('o')}, DisableAutoCleanup: true},
				sessions.WithStore(&countingStore{inner: mem}))
			var p nextProbe
			mux := http.NewServeMux()
			mux.HandleFunc("POST /login", app{m}.login)
			mux.HandleFunc("POST /logout", app{m}.logout)
			mux.Handle("/", p.handler())
			h := m.Middleware(mux)
			name := http.CanonicalHeaderKey(tc.header)

			// Start gives the client its token: in the response header of
			// the same name, or from Token (Authorization).
			resp := serveHeader(h, "POST", "/login?user=alice", "", "")
			require.Equal(t, http.StatusOK, resp.StatusCode)
			ck := sessionCookie(t, resp, "session")
			token := resp.Header.Get(name)
			if name == "Authorization" {
				assert.Empty(t, token, "no Authorization response header")
				s, err := m.Get(ctx, readBody(t, resp))
				require.NoError(t, err)
				token, err = m.Token(s)
				require.NoError(t, err)
			}
			require.NotEmpty(t, token)
			assert.Equal(t, ck.Value, token, "the token is the cookie's signed value")

			// The token alone finds the session; the response varies on
			// the header and sets no cookie.
			resp = serveHeader(h, "GET", "/", name, tc.prefix+token)
			assert.Equal(t, int64(1), p.session.Load())
			assert.True(t, varies(resp, name), "Vary %q", resp.Header.Values("Vary"))
			assertNoSetCookie(t, resp)
			if name == "Authorization" {
				serveHeader(h, "GET", "/", name, "bearer "+token)
				assert.Equal(t, int64(2), p.session.Load(), "the scheme is case-insensitive")
				p.session.Add(-1)
			}

			// A session made by Create, for an API login.
			s, err := m.Create(ctx, "bob", nil)
			require.NoError(t, err)
			apiToken, err := m.Token(s)
			require.NoError(t, err)
			serveHeader(h, "GET", "/", name, tc.prefix+apiToken)
			assert.Equal(t, int64(2), p.session.Load())

			// Bad tokens: no session, no store call, no cookie, no 5xx.
			_, foreign := startCookie(t, other, "mallory")
			live, _ := m.Get(ctx, readBody(t, serveHeader(h, "POST", "/login?user=carol", "", "")))
			require.NotNil(t, live)
			invalid := m.Stats().InvalidCookies
			for bad, v := range badCookies(token, foreign.Value, live.ID()) {
				if bad == "empty" {
					continue // an empty header is no token
				}
				before, sess := p.called.Load(), p.session.Load()
				var calls int64
				if cs != nil {
					calls = cs.calls.Load()
				}
				resp := serveHeader(h, "GET", "/", name, tc.prefix+v)
				assert.Equal(t, before+1, p.called.Load(), "%s: next is called", bad)
				assert.Equal(t, sess, p.session.Load(), "%s: no session", bad)
				assert.Equal(t, http.StatusOK, resp.StatusCode, bad)
				assertNoSetCookie(t, resp)
				if cs != nil {
					assert.Equal(t, calls, cs.calls.Load(), "%s: a bad token costs no store call", bad)
				}
			}
			assert.Greater(t, m.Stats().InvalidCookies, invalid)
			if name == "Authorization" {
				// Another scheme is not a token of ours.
				invalid = m.Stats().InvalidCookies
				sess := p.session.Load()
				serveHeader(h, "GET", "/", name, "Basic "+token)
				assert.Equal(t, sess, p.session.Load())
				assert.Equal(t, invalid, m.Stats().InvalidCookies)
			}

			// End with the token ends the session; the token is dead.
			resp = serveHeader(h, "POST", "/logout", name, tc.prefix+token)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			first, err := m.Get(ctx, live.ID())
			require.NoError(t, err, "other sessions live on")
			assert.Equal(t, "carol", first.UserID())
			sess := p.session.Load()
			serveHeader(h, "GET", "/", name, tc.prefix+token)
			assert.Equal(t, sess, p.session.Load(), "a logged-out token finds nothing")
			require.Eventually(t, func() bool { return log.reasons()[sessions.ReasonLogout] == 1 }, waitFor, poll, "one logout")
		})
	}

	t.Run("off by default", func(t *testing.T) {
		m, _ := startManager(t, sessions.Config{Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true})
		s, ck := startCookie(t, m, "alice")
		var p nextProbe
		h := m.Middleware(p.handler())
		serveHeader(h, "GET", "/", "Authorization", "Bearer "+ck.Value)
		serveHeader(h, "GET", "/", "X-Session-Token", ck.Value)
		assert.Zero(t, p.session.Load())
		tok, err := m.Token(s)
		require.NoError(t, err)
		assert.NotEmpty(t, tok)
		_, err = m.Token(nil)
		assert.ErrorIs(t, err, sessions.ErrNotFound)
	})
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}
