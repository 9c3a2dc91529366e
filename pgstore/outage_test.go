package pgstore

import (
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// TestOutage stops a real PostgreSQL mid-traffic: the Middleware answers
// 503 through the error handler, keeps the cookie and never calls the
// handler; when the server is back the same cookie works, without a
// restart of the app.
func TestOutage(t *testing.T) {
	srv := startPostgres(t)
	p := poolOn(t, srv.url(), true, func(c *pgxpool.Config) { c.ConnConfig.ConnectTimeout = time.Second })
	s := newStore(t, p)
	a := &app{}
	m, err := sessions.NewManager(sessions.Config{
		Keys: testKeys, IdleTimeout: time.Hour, Cookie: sessions.CookieConfig{Insecure: true}, CleanupInterval: 50 * time.Millisecond,
	}, sessions.WithStore(s), a.errorHandler(), sessions.WithLogger(slog.New(slog.DiscardHandler))) // the sweeper's warnings while down
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	a.serve(t, m)

	cookie := a.do(t, "/login?user=nora", nil).cookie(t)
	require.Equal(t, "nora name=nora", a.do(t, "/read", cookie).body)

	// Traffic goes on while the server stops and comes back: every answer
	// is the right user or a 503, and no answer touches the cookie.
	stopTraffic := make(chan struct{})
	var wg sync.WaitGroup
	var ok, unavailable atomic.Int64
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stopTraffic:
					return
				default:
				}
				res, err := a.try(t, "/read", cookie)
				if !assert.NoError(t, err) {
					return
				}
				switch res.code {
				case http.StatusOK:
					assert.Equal(t, "nora name=nora", res.body)
					ok.Add(1)
				case http.StatusServiceUnavailable:
					assert.Equal(t, "store unavailable\n", res.body, "answered by the error handler")
					unavailable.Add(1)
				default:
					t.Errorf("unexpected answer %d %q", res.code, res.body)
				}
				assert.Empty(t, res.cookies, "an answer set a cookie")
			}
		})
	}
	require.Eventually(t, func() bool { return ok.Load() > 10 }, 10*time.Second, time.Millisecond)

	srv.stop()
	down := a.do(t, "/read", cookie)
	assert.Equal(t, http.StatusServiceUnavailable, down.code)
	assert.Equal(t, "store unavailable\n", down.body, "answered by the error handler")
	assert.Empty(t, down.cookies, "the cookie is kept")
	require.Eventually(t, func() bool { return unavailable.Load() > 10 }, 10*time.Second, time.Millisecond)
	okDuring := ok.Load()
	assert.Positive(t, a.errors.Load())
	assert.Equal(t, "anonymous", a.do(t, "/read", nil).body, "requests without a session still work")
	login := a.do(t, "/login?user=otto", nil)
	assert.Equal(t, http.StatusServiceUnavailable, login.code, "a login while the store is down fails")

	srv.start()
	require.Eventually(t, func() bool { return ok.Load() > okDuring+10 }, 15*time.Second, time.Millisecond,
		"the same cookie works again once the server is back")
	close(stopTraffic)
	wg.Wait()
	assert.Equal(t, "nora name=nora", a.do(t, "/read", cookie).body)
	assert.Positive(t, m.Stats().StoreErrors)
	t.Logf("answers: %d ok, %d unavailable", ok.Load(), unavailable.Load())
}
