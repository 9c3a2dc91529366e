package sessions_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// logTag is the log tag of a session ID: what logs show instead of it.
func logTag(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:4])
}

// jsonLogTo returns a logger option writing JSON to buf.
func jsonLogTo(buf *syncBuffer) sessions.Option {
	return sessions.WithLogger(slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
}

// TestDefaultErrorHandlerLogs: a store failure answered with 503 is in the
// log, with the session's tag and never its ID.
func TestDefaultErrorHandlerLogs(t *testing.T) {
	checkNoLeaks(t)
	var buf syncBuffer
	cs := &countingStore{inner: sessions.NewMemoryStore()}
	m, _ := startManager(t, sessions.Config{Keys: [][]byte{testKey('l')}, Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true},
		sessions.WithStore(cs), jsonLogTo(&buf))
	s, ck := startCookie(t, m, "alice")
	h := m.Middleware(http.NotFoundHandler())

	cs.fail.Store(true)
	resp := serveCookie(h, ck.Name, ck.Value)
	cs.fail.Store(false)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	out := buf.String()
	assert.Contains(t, out, `"level":"ERROR"`)
	assert.Contains(t, out, errStoreDown.Error())
	assert.Contains(t, out, logTag(s.ID()), "the session's tag")
	assert.NotContains(t, out, s.ID(), "never the ID")
	assert.NotContains(t, out, ck.Value, "never the cookie")
}

// TestOneTimeWarnings: Start outside the Middleware, and a Secure cookie
// set on plain http for a remote client, are each said once.
func TestOneTimeWarnings(t *testing.T) {
	checkNoLeaks(t)
	count := func(buf *syncBuffer, s string) int { return strings.Count(buf.String(), s) }
	const outside = "did not pass through this manager's Middleware"
	const insecure = "browsers drop it"

	t.Run("outside the Middleware", func(t *testing.T) {
		var buf syncBuffer
		m, _ := startManager(t, sessions.Config{Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true}, jsonLogTo(&buf))
		h := m.Middleware(http.HandlerFunc(app{m}.login))
		serveCookie(h, "x", "y")
		assert.Zero(t, count(&buf, outside), "through the Middleware: nothing to say")
		for range 3 {
			startCookie(t, m, "alice")
		}
		assert.Equal(t, 1, count(&buf, outside), buf.String())
		require.NoError(t, m.End(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil)))
		assert.Equal(t, 1, count(&buf, outside), "once per manager")
		assert.Zero(t, count(&buf, insecure), "Insecure cookies: nothing to say")
	})

	t.Run("Secure cookie on plain http", func(t *testing.T) {
		var buf syncBuffer
		m, _ := startManager(t, sessions.Config{DisableAutoCleanup: true}, jsonLogTo(&buf))
		h := m.Middleware(http.HandlerFunc(app{m}.login))
		login := func(remote string, edit func(r *http.Request)) {
			r := httptest.NewRequest(http.MethodPost, "/login?user=alice", nil)
			r.RemoteAddr = remote
			if edit != nil {
				edit(r)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		}
		login("127.0.0.1:5000", nil)
		login("[::1]:5000", nil)
		login("203.0.113.9:5000", func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "https") })
		login("203.0.113.9:5000", func(r *http.Request) { r.Header.Set("Forwarded", "for=198.51.100.1;proto=https") })
		tlsReq := httptest.NewRequest(http.MethodPost, "https://example.com/login?user=alice", nil)
		tlsReq.RemoteAddr = "203.0.113.9:5000"
		h.ServeHTTP(httptest.NewRecorder(), tlsReq)
		assert.Zero(t, count(&buf, insecure), "loopback, https and proxied https: nothing to say\n%s", buf.String())

		login("203.0.113.9:5000", nil)
		login("198.51.100.7:5000", nil)
		assert.Equal(t, 1, count(&buf, insecure), buf.String())
		assert.Contains(t, buf.String(), "203.0.113.9")
	})
}

// TestReasonJSON: a Reason is its name in JSON, also as a map key, and
// reads back.
func TestReasonJSON(t *testing.T) {
	checkNoLeaks(t)
	m, log := startManager(t, sessions.Config{Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true})
	_, ck := startCookie(t, m, "alice")
	r := httptest.NewRequest(http.MethodPost, "/logout", nil)
	r.AddCookie(ck)
	require.NoError(t, m.End(httptest.NewRecorder(), r))
	require.Eventually(t, func() bool { return log.len() == 1 }, waitFor, poll)

	b, err := json.Marshal(m.Stats().Ended)
	require.NoError(t, err)
	assert.JSONEq(t, `{"logout": 1}`, string(b))
	var back map[sessions.Reason]uint64
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, map[sessions.Reason]uint64{sessions.ReasonLogout: 1}, back)

	for r := sessions.ReasonLogout; r <= sessions.ReasonShutdown+1; r++ {
		b, err := json.Marshal(r)
		require.NoError(t, err)
		assert.Equal(t, `"`+r.String()+`"`, string(b))
		var got sessions.Reason
		require.NoError(t, json.Unmarshal(b, &got), string(b))
		assert.Equal(t, r, got)
	}
	var got sessions.Reason
	assert.Error(t, json.Unmarshal([]byte(`"nope"`), &got))
	b, err = json.Marshal(sessions.Event{Reason: sessions.ReasonIdle})
	require.NoError(t, err)
	assert.Contains(t, string(b), `"Reason":"idle"`)
}

// TestSessionLogValue: logging a session shows its tag, user and times,
// never its ID or its values.
func TestSessionLogValue(t *testing.T) {
	checkNoLeaks(t)
	m, _ := startManager(t, sessions.Config{DisableAutoCleanup: true})
	s, err := m.Create(ctx, "alice", map[string]any{"secret": "hunter2"})
	require.NoError(t, err)
	var buf syncBuffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("hello", "session", s)
	var rec struct {
		Session map[string]any `json:"session"`
	}
	require.NoError(t, json.Unmarshal([]byte(buf.String()), &rec), buf.String())
	assert.Equal(t, logTag(s.ID()), rec.Session["tag"])
	assert.Equal(t, "alice", rec.Session["user"])
	for _, k := range []string{"created", "last_activity", "expires"} {
		v, _ := rec.Session[k].(string)
		_, err := time.Parse(time.RFC3339Nano, v)
		assert.NoError(t, err, "%s: %q", k, v)
	}
	assert.NotContains(t, buf.String(), s.ID())
	assert.NotContains(t, buf.String(), "hunter2")
}
