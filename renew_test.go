package sessions_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// serve runs one request through h with cookie (if not nil) and returns
// the session cookie the response set, if any, and the recorder.
func serve(t *testing.T, h http.Handler, path string, cookie *http.Cookie) (*http.Cookie, *httptest.ResponseRecorder) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, nil)
	if cookie != nil {
		r.AddCookie(cookie)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	for _, c := range w.Result().Cookies() {
		if c.Name == "session" {
			return c, w
		}
	}
	return nil, w
}

// renewApp logs in on /login, raises the session's role and renews its ID
// on /sudo, and reports the session on /whoami.
func renewApp(t *testing.T, m *sessions.Manager) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		_, err := m.Start(w, r, r.URL.Query().Get("user"), map[string]any{"role": "user", "cart": 3})
		require.NoError(t, err)
	})
	mux.HandleFunc("/sudo", func(w http.ResponseWriter, r *http.Request) {
		s, ok := sessions.FromContext(r.Context())
		if !ok {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		s.Set("role", "admin") // pending on a shared store: Renew saves it first
		renewed, err := m.Renew(w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		now, _ := sessions.FromContext(r.Context())
		assert.Same(t, renewed, now, "FromContext sees the renewed session")
		renewed.Set("sudo_at", time.Now().Unix()) // saved by the Middleware under the new ID
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := sessions.FromContext(r.Context()); !ok {
			http.Error(w, "no session", http.StatusUnauthorized)
		}
	})
	return m.Middleware(mux)
}

func TestRenew(t *testing.T) {
	checkNoLeaks(t)
	cfg := sessions.Config{
		IdleTimeout: time.Hour, AbsoluteTimeout: 30 * time.Minute, MaxSessionsPerUser: 2,
		DisableAutoCleanup: true, Cookie: sessions.CookieConfig{Insecure: true},
	}
	bothStores(t, cfg, func(t *testing.T, m *sessions.Manager, log *eventLog) {
		h := renewApp(t, m)
		first, _ := serve(t, h, "/login?user=alice", nil)
		require.NotNil(t, first)
		other, _ := serve(t, h, "/login?user=alice", nil) // alice's second device: at the limit now
		require.NotNil(t, other)
		before, err := m.UserSessions(ctx, "alice")
		require.NoError(t, err)
		require.Len(t, before, 2)

		renewedCookie, w := serve(t, h, "/sudo", first)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.NotNil(t, renewedCookie, "Renew sets the new cookie")
		assert.NotEqual(t, first.Value, renewedCookie.Value)
		assert.Contains(t, w.Header().Values("Vary"), "Cookie")

		_, w = serve(t, h, "/whoami", first)
		assert.Equal(t, http.StatusUnauthorized, w.Code, "the old ID is dead")
		_, w = serve(t, h, "/whoami", renewedCookie)
		assert.Equal(t, http.StatusOK, w.Code, "the new one lives")
		_, w = serve(t, h, "/whoami", other)
		assert.Equal(t, http.StatusOK, w.Code, "the user's other session was not evicted")

		after, err := m.UserSessions(ctx, "alice")
		require.NoError(t, err)
		require.Len(t, after, 2, "the old ID was replaced, not a session added")
		byID := map[string]*sessions.Session{}
		for _, s := range before {
			byID[s.ID()] = s
		}
		var renewed, was *sessions.Session
		for _, s := range after {
			if byID[s.ID()] == nil {
				renewed = s
			}
		}
		require.NotNil(t, renewed)
		for _, s := range before {
			found := false
			for _, a := range after {
				found = found || a.ID() == s.ID()
			}
			if !found {
				was = s
			}
		}
		require.NotNil(t, was)
		assert.Equal(t, "alice", renewed.UserID())
		assert.True(t, was.CreatedAt().Equal(renewed.CreatedAt()), "same creation time")
		assert.True(t, was.ExpiresAt().Equal(renewed.ExpiresAt()), "same absolute deadline: %v, was %v", renewed.ExpiresAt(), was.ExpiresAt())
		role, _ := sessions.Value[string](renewed, "role")
		assert.Equal(t, "admin", role, "the change made before Renew went with the session")
		cart, _ := sessions.Value[int](renewed, "cart")
		assert.Equal(t, 3, cart, "same data")
		_, ok := renewed.Get("sudo_at")
		assert.True(t, ok, "a change made after Renew is saved under the new ID")

		_, err = m.Cleanup(ctx) // a barrier: the hooks have run
		require.NoError(t, err)
		assert.Zero(t, log.len(), "no hook: no session ended, and no data went to a hook")
		assert.Empty(t, m.Stats().Ended)
		assert.Equal(t, 2, m.Stats().ActiveSessions)

		_, w = serve(t, h, "/sudo", nil)
		assert.Equal(t, http.StatusUnauthorized, w.Code)
		_, err = m.Renew(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", nil))
		assert.ErrorIs(t, err, sessions.ErrNotFound, "Renew with no session")
	})
}

// TestRenewConcurrentKeepsTheLimit renews each of a user's sessions many
// times at once, at the limit, while a reader counts the user's sessions:
// never more than the limit, on the memory store never fewer either, and
// nothing evicted or ended.
func TestRenewConcurrentKeepsTheLimit(t *testing.T) {
	checkNoLeaks(t)
	const limit, rounds = 3, 40
	cfg := sessions.Config{MaxSessionsPerUser: limit, DisableAutoCleanup: true, Cookie: sessions.CookieConfig{Insecure: true}}
	bothStores(t, cfg, func(t *testing.T, m *sessions.Manager, log *eventLog) {
		memory := t.Name() == "TestRenewConcurrentKeepsTheLimit/memory"
		login := func() *http.Cookie {
			w := httptest.NewRecorder()
			_, err := m.Start(w, httptest.NewRequest(http.MethodPost, "/", nil), "carol", map[string]any{"n": 1})
			require.NoError(t, err)
			return w.Result().Cookies()[0]
		}
		cookies := []*http.Cookie{login(), login(), login()}
		stop := make(chan struct{})
		counted := make(chan struct{})
		go func() {
			defer close(counted)
			for {
				select {
				case <-stop:
					return
				default:
				}
				ss, err := m.UserSessions(ctx, "carol")
				if !assert.NoError(t, err) {
					return
				}
				assert.LessOrEqual(t, len(ss), limit)
				if memory {
					assert.Len(t, ss, limit, "on the memory store the swap is one step")
				}
			}
		}()
		done := make(chan struct{})
		for _, c := range cookies {
			go func() {
				defer func() { done <- struct{}{} }()
				for range rounds {
					r := httptest.NewRequest(http.MethodPost, "/", nil)
					r.AddCookie(c)
					w := httptest.NewRecorder()
					if _, err := m.Renew(w, r); !assert.NoError(t, err) {
						return
					}
					c = w.Result().Cookies()[0]
				}
			}()
		}
		for range cookies {
			<-done
		}
		close(stop)
		<-counted
		ss, err := m.UserSessions(ctx, "carol")
		require.NoError(t, err)
		assert.Len(t, ss, limit)
		_, err = m.Cleanup(ctx)
		require.NoError(t, err)
		assert.Zero(t, log.len(), "nothing ended")
	})
}
