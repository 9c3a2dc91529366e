package redisstore

// Issue 13 items 8 and 9 through the Middleware on a real Redis: a logout
// elsewhere while a request runs is no outage, and End while Redis stalls
// does not tell the browser it is logged out.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"

	"github.com/tokyopredictor/sessions/redisstore/internal/faultproxy"
)

// webManager returns a manager on st with Insecure cookies, closed at the
// end of the test.
func webManager(t *testing.T, st sessions.Store, opts ...sessions.Option) *sessions.Manager {
	t.Helper()
	cfg := sessions.Config{Keys: testKeys, Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true}
	m, err := sessions.NewManager(cfg, append([]sessions.Option{sessions.WithStore(st), sessions.WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// webLogin starts a session for user on m and returns its cookie.
func webLogin(t *testing.T, m *sessions.Manager, user string) (*sessions.Session, *http.Cookie) {
	t.Helper()
	w := httptest.NewRecorder()
	s, err := m.Start(w, httptest.NewRequest(http.MethodPost, "/login", nil), user, nil)
	require.NoError(t, err)
	cks := w.Result().Cookies()
	require.Len(t, cks, 1)
	return s, cks[0]
}

// webDo sends method path to h's server with ck and returns the response
// and its body.
func webDo(t *testing.T, srv *httptest.Server, method, path string, ck *http.Cookie) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	require.NoError(t, err)
	req.AddCookie(ck)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// expired returns resp's expiring Set-Cookie of name, or nil.
func expired(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name && c.MaxAge < 0 && c.Value == "" {
			return c
		}
	}
	return nil
}

func TestMiddlewareSessionEndedWhileRequestRan(t *testing.T) {
	c := newClient(t)
	st := newStore(t, c)
	var got atomic.Value
	handlers := map[string][]sessions.Option{
		"default error handler": nil,
		"WithErrorHandler": {sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			got.Store(err)
			sessions.DefaultErrorHandler(w, r, err)
		})},
	}
	for name, opts := range handlers {
		t.Run(name, func(t *testing.T) {
			m := webManager(t, st, opts...)
			elsewhere := webManager(t, st) // another process on the same Redis
			h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, ok := sessions.FromContext(r.Context())
				if !ok {
					http.Error(w, "no session", http.StatusUnauthorized)
					return
				}
				if err := elsewhere.Terminate(r.Context(), s.ID()); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				s.Set("cart", "3 items")
				fmt.Fprint(w, "saved your cart")
			}))
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			_, ck := webLogin(t, m, "alice")

			resp, body := webDo(t, srv, "POST", "/cart", ck)
			assert.Equal(t, http.StatusConflict, resp.StatusCode, body)
			assert.Contains(t, body, "session ended")
			assert.NotContains(t, body, "saved your cart")
			assert.NotNil(t, expired(resp, ck.Name), "the cookie is expired: %q", resp.Header.Values("Set-Cookie"))
			assert.Zero(t, m.Stats().StoreErrors, "a logout elsewhere is not a store error")
			if opts != nil {
				err, _ := got.Load().(error)
				assert.ErrorIs(t, err, sessions.ErrNotFound)
			}
			resp, body = webDo(t, srv, "GET", "/", ck)
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, body)
		})
	}
}

func TestEndWhileRedisStalls(t *testing.T) {
	newClient(t) // skips without a server
	p, err := faultproxy.Start(testAddr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	c := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	st := newStore(t, c)
	m := webManager(t, st)
	var endErr atomic.Value
	var kept atomic.Bool
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("stall") != "" {
			p.Stall()
		}
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if err := m.End(w, r.WithContext(ctx)); err != nil {
			endErr.Store(err)
			_, ok := sessions.FromContext(r.Context())
			kept.Store(ok)
			http.Error(w, "could not sign you out; try again", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "bye")
	}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s, ck := webLogin(t, m, "alice")

	resp, body := webDo(t, srv, "POST", "/logout?stall=1", ck)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
	err, _ = endErr.Load().(error)
	require.Error(t, err)
	assert.False(t, errors.Is(err, sessions.ErrNotFound), "%v", err)
	assert.Empty(t, resp.Header.Values("Set-Cookie"), "a stalled store does not log the browser out")
	assert.True(t, kept.Load(), "the request keeps its session")

	// The user tries again once Redis answers: signed out, cookie expired.
	p.Reset()
	p.Release()
	resp, body = webDo(t, srv, "POST", "/logout", ck)
	assert.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.NotNil(t, expired(resp, ck.Name), "%q", resp.Header.Values("Set-Cookie"))
	_, err = m.Get(context.Background(), s.ID())
	assert.ErrorIs(t, err, sessions.ErrNotFound)
}
