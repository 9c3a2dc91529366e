package redisstore

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// TestManagerRenew renews a session's ID on Redis through one manager and
// checks through another: same user, data, creation time and absolute
// deadline; the old ID dead; the user's other session kept under a limit
// of two; and no termination hook on either manager.
func TestManagerRenew(t *testing.T) {
	ms, log := newManagers(t, 2, sessions.Config{
		IdleTimeout: time.Hour, AbsoluteTimeout: 30 * time.Minute, MaxSessionsPerUser: 2,
		CleanupInterval: 20 * time.Millisecond, Cookie: sessions.CookieConfig{Insecure: true},
	})
	ctx := t.Context()
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		_, err := ms[0].Start(w, r, "rene", map[string]any{"role": "user", "cart": 3})
		assert.NoError(t, err)
	})
	mux.HandleFunc("/sudo", func(w http.ResponseWriter, r *http.Request) {
		s, ok := sessions.FromContext(r.Context())
		if !ok {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		s.Set("role", "admin")
		if _, err := ms[0].Renew(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	h := ms[0].Middleware(mux)
	post := func(path string, c *http.Cookie) (*http.Cookie, int) {
		r := httptest.NewRequest(http.MethodPost, path, nil)
		if c != nil {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		for _, c := range w.Result().Cookies() {
			if c.Name == "session" && c.Value != "" {
				return c, w.Code
			}
		}
		return nil, w.Code
	}
	first, _ := post("/login", nil)
	require.NotNil(t, first)
	second, _ := post("/login", nil)
	require.NotNil(t, second)
	before, err := ms[1].UserSessions(ctx, "rene")
	require.NoError(t, err)
	require.Len(t, before, 2)

	renewed, code := post("/sudo", first)
	require.Equal(t, http.StatusOK, code)
	require.NotNil(t, renewed)

	after, err := ms[1].UserSessions(ctx, "rene")
	require.NoError(t, err)
	require.Len(t, after, 2, "the old ID was replaced, not a session added or evicted")
	old := map[string]*sessions.Session{}
	for _, s := range before {
		old[s.ID()] = s
	}
	var was, now *sessions.Session
	for _, s := range after {
		if old[s.ID()] == nil {
			now = s
		} else {
			delete(old, s.ID())
		}
	}
	require.NotNil(t, now)
	require.Len(t, old, 1)
	for _, s := range old {
		was = s
	}
	_, err = ms[1].Get(ctx, was.ID())
	assert.ErrorIs(t, err, sessions.ErrNotFound, "the old ID is dead")
	assert.True(t, was.CreatedAt().Equal(now.CreatedAt()), "same creation time")
	assert.True(t, was.ExpiresAt().Equal(now.ExpiresAt()), "same absolute deadline")
	assert.Equal(t, map[string]any{"role": "admin", "cart": 3}, now.Data(), "same data, with the change made before Renew")

	for _, m := range ms { // a sweep each, and a barrier for their hooks
		_, err := m.Cleanup(ctx)
		require.NoError(t, err)
	}
	assert.Zero(t, log.len(), "no termination hook ran")
}

// TestManagerTouchExpired: Touch of a session that has expired, not yet
// swept, brings nothing back on Redis either.
func TestManagerTouchExpired(t *testing.T) {
	ms, _ := newManagers(t, 1, sessions.Config{IdleTimeout: 50 * time.Millisecond, DisableAutoCleanup: true})
	ctx := t.Context()
	s, err := ms[0].Create(ctx, "tess", nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return time.Now().After(s.ExpiresAt()) }, 5*time.Second, time.Millisecond)
	s.Touch()
	assert.ErrorIs(t, s.Save(ctx), sessions.ErrNotFound)
	assert.ErrorIs(t, ms[0].Touch(ctx, s.ID()), sessions.ErrNotFound)
	_, err = ms[0].Get(ctx, s.ID())
	assert.ErrorIs(t, err, sessions.ErrNotFound)
}
