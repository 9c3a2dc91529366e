package redisstore

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
	"github.com/tokyopredictor/sessions/internal/benchkit"
)

// BenchmarkRatio compares a read hit with its floor, alternating the two
// in chunks (benchkit.Alternate) so that both see the same machine: a
// request through the Middleware whose handler reads a value of its
// session (200 live sessions, each with a user_id and a saldo, as in the
// benchmarks module), and the store's Activate alone (the Middleware's
// read; the stored activity is recent, so it writes nothing), against one
// plain GET of a 100-byte value through the same client, serial and from
// GOMAXPROCS goroutines:
//
//	go test -run '^$' -bench Ratio -benchtime 20000x -count 6 ./redisstore
func BenchmarkRatio(b *testing.B) {
	c := newClient(b)
	s := newStore(b, c)
	m, err := sessions.NewManager(sessions.Config{
		Keys: testKeys, IdleTimeout: time.Hour, DisableAutoCleanup: true,
		MaxSessionsPerUser: sessions.Unlimited, Cookie: sessions.CookieConfig{Insecure: true},
	}, sessions.WithStore(s))
	require.NoError(b, err)
	b.Cleanup(func() { _ = m.Close() })
	cookies := make([]string, 200)
	ids := make([]string, len(cookies))
	for i := range cookies {
		sess, err := m.Create(b.Context(), fmt.Sprint("ratio-", i), map[string]any{"user_id": fmt.Sprint("u", i), "saldo": 1000})
		require.NoError(b, err)
		token, err := m.Token(sess)
		require.NoError(b, err)
		cookies[i] = "session=" + token
		ids[i] = sess.ID()
	}
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := sessions.FromContext(r.Context())
		if !ok {
			b.Error("no session")
			return
		}
		if _, ok := s.Get("user_id"); !ok {
			b.Error("no user_id")
		}
	}))
	key := s.o.prefix + "floor"
	require.NoError(b, c.Set(b.Context(), key, make([]byte, 100), time.Hour).Err())
	read := func(i int) {
		w := benchkit.Serve(h, benchkit.NewRecorder(), benchkit.NewRequest(cookies[i%len(cookies)]))
		if err := benchkit.StatusErr(w); err != nil {
			b.Error(err)
		}
	}
	activate := func(i int) {
		if _, err := s.Activate(b.Context(), ids[i%len(ids)], time.Now()); err != nil {
			b.Error(err)
		}
	}
	get := func(int) {
		if err := c.Get(b.Context(), key).Err(); err != nil {
			b.Error(err)
		}
	}
	for _, parallel := range []bool{false, true} {
		mode := "serial"
		if parallel {
			mode = "parallel"
		}
		b.Run("op=read-hit/mode="+mode, func(b *testing.B) {
			benchkit.Alternate(b, parallel, 50, "read-hit", "get", read, get)
		})
		b.Run("op=activate/mode="+mode, func(b *testing.B) {
			benchkit.Alternate(b, parallel, 50, "activate", "get", activate, get)
		})
	}
}
