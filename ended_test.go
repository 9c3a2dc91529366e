package sessions_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// endedElsewhere is a handler whose session is logged out by another
// request while it runs (Terminate stands for it), and which then changes
// the session: the save finds it ended. With write set it writes a body,
// else it leaves the response to the Middleware.
func endedElsewhere(m *sessions.Manager, write bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
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
		if write {
			_, _ = w.Write([]byte("saved your cart"))
		}
	}
}

// TestSaveFindsSessionEnded: a logout elsewhere while a request ran is not
// an outage: no 503, no store error counted; the error handler gets an
// error wrapping ErrNotFound, and the default one answers 409 with the
// cookie expired.
func TestSaveFindsSessionEnded(t *testing.T) {
	checkNoLeaks(t)
	cfg := sessions.Config{Keys: [][]byte{testKey('e')}, Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true}
	for _, write := range []bool{true, false} {
		name := "handler writes"
		if !write {
			name = "handler writes nothing"
		}
		t.Run(name+"/default error handler", func(t *testing.T) {
			var buf syncBuffer
			m, _ := startManager(t, cfg, sessions.WithStore(&countingStore{inner: sessions.NewMemoryStore()}), jsonLogTo(&buf))
			s, ck := startCookie(t, m, "alice")
			srv := httptest.NewServer(m.Middleware(endedElsewhere(m, write)))
			t.Cleanup(srv.Close)
			x := do(t, &http.Client{Transport: srv.Client().Transport}, "POST", srv.URL, ck)
			assert.Equal(t, http.StatusConflict, x.status, x.body)
			assert.Contains(t, x.body, "session ended")
			assert.NotContains(t, x.body, "saved your cart")
			assertExpiring(t, x.resp, ck.Name)
			assertNotShared(t, x.resp)
			assert.Zero(t, m.Stats().StoreErrors, "not a store error")
			assert.NotContains(t, buf.String(), `"level":"ERROR"`)
			assert.Contains(t, buf.String(), logTag(s.ID()))
			assert.NotContains(t, buf.String(), s.ID())
		})
	}

	t.Run("WithErrorHandler", func(t *testing.T) {
		var got atomic.Value
		m, _ := startManager(t, cfg, sessions.WithStore(&countingStore{inner: sessions.NewMemoryStore()}),
			sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
				got.Store(err)
				if errors.Is(err, sessions.ErrNotFound) {
					http.Redirect(w, r, "/signin?ended=1", http.StatusSeeOther)
					return
				}
				http.Error(w, "down", http.StatusServiceUnavailable)
			}))
		_, ck := startCookie(t, m, "alice")
		resp := serveCookie(m.Middleware(endedElsewhere(m, true)), ck.Name, ck.Value)
		assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
		err, _ := got.Load().(error)
		require.Error(t, err)
		assert.ErrorIs(t, err, sessions.ErrNotFound, "an app can tell a session that ended from an outage")
		assertExpiring(t, resp, ck.Name)
		assert.Zero(t, m.Stats().StoreErrors)
	})

	t.Run("a real outage during the save stays a 503", func(t *testing.T) {
		cs := &countingStore{inner: sessions.NewMemoryStore()}
		m, _ := startManager(t, cfg, sessions.WithStore(cs))
		_, ck := startCookie(t, m, "alice")
		h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, _ := sessions.FromContext(r.Context())
			s.Set("k", "v")
			cs.fail.Store(true)
			_, _ = w.Write([]byte("body"))
		}))
		resp := serveCookie(h, ck.Name, ck.Value)
		cs.fail.Store(false)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		assertNoSetCookie(t, resp)
		assert.Positive(t, m.Stats().StoreErrors, "an outage is counted")
	})
}

// TestEndWhileStoreFails: End with a failing store returns the error and
// keeps the cookie and the session, so the user can retry; once the store
// is back, End works. A session already gone is a clean logout.
func TestEndWhileStoreFails(t *testing.T) {
	checkNoLeaks(t)
	cs := &countingStore{inner: sessions.NewMemoryStore()}
	m, log := startManager(t, sessions.Config{Keys: [][]byte{testKey('f')}, Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true},
		sessions.WithStore(cs))
	s, ck := startCookie(t, m, "alice")
	var endErr atomic.Value
	var after atomic.Bool
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("fail") != "" {
			cs.fail.Store(true)
			defer cs.fail.Store(false)
		}
		if err := m.End(w, r); err != nil {
			endErr.Store(err)
			_, ok := sessions.FromContext(r.Context())
			after.Store(ok)
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("bye"))
	}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := &http.Client{Transport: srv.Client().Transport}

	x := do(t, c, "POST", srv.URL+"/logout?fail=1", ck)
	assert.Equal(t, http.StatusServiceUnavailable, x.status)
	err, _ := endErr.Load().(error)
	assert.ErrorIs(t, err, errStoreDown)
	assertNoSetCookie(t, x.resp) // not told it is logged out
	assert.True(t, after.Load(), "the request keeps its session")
	_, err = m.Get(ctx, s.ID())
	require.NoError(t, err, "the session lives on")
	assert.Zero(t, log.len())

	x = do(t, c, "POST", srv.URL+"/logout", ck)
	assert.Equal(t, http.StatusOK, x.status, x.body)
	assertExpiring(t, x.resp, ck.Name)
	log.waitEvent(t, s.ID(), sessions.ReasonLogout)

	// Outside the Middleware too.
	s2, ck2 := startCookie(t, m, "bob")
	r := httptest.NewRequest(http.MethodPost, "/logout", nil)
	r.AddCookie(ck2)
	w := httptest.NewRecorder()
	cs.fail.Store(true)
	assert.ErrorIs(t, m.End(w, r), errStoreDown)
	cs.fail.Store(false)
	assertNoSetCookie(t, w.Result())

	// Already gone (terminated meanwhile): a clean logout.
	require.NoError(t, m.Terminate(ctx, s2.ID()))
	w = httptest.NewRecorder()
	require.NoError(t, m.End(w, r))
	assertExpiring(t, w.Result(), ck2.Name)
}
