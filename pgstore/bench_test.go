package pgstore

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
	"github.com/tokyopredictor/sessions/internal/benchkit"
)

// The benchmarks compare the store's read hit with the floor any
// PostgreSQL-backed session pays: one plain primary-key SELECT of the same
// row, through the same pool. On a shared, noisy machine separate
// benchmarks drift by 2x between runs, so BenchmarkReadHitRatio alternates
// the two in chunks of chunkOps and reports both and their ratio:
//
//	go test -run '^$' -bench 'Ratio' -benchtime 20000x -count 6 .
//
// Each benchmark fills a fresh table with benchLive sessions (fewer with
// -short).

const chunkOps = 50

func benchLiveN() int {
	if testing.Short() {
		return 50
	}
	return 1000
}

// benchStore returns a store over a fresh table with benchLive sessions
// (idle timeout one hour, so Activate writes nothing during a run), and
// their IDs.
func benchStore(b *testing.B) (*Store, []string) {
	p := newPool(b)
	s := newStore(b, p)
	ids := make([]string, benchLiveN())
	for i := range ids {
		r := rec(fmt.Sprint("u", i%500), time.Hour)
		r.Values = map[string][]byte{"user_id": []byte("\x01u123456"), "saldo": []byte("\x03\x07\xd0")}
		_, err := s.Create(b.Context(), r, 0, sessions.EvictOldest)
		require.NoError(b, err)
		ids[i] = r.ID
	}
	return s, ids
}

// BenchmarkReadHit: Activate of a live session (the Middleware's read)
// against Load and against a plain SELECT of the same row by key.
func BenchmarkReadHit(b *testing.B) {
	s, ids := benchStore(b)
	plain := "SELECT " + cols + " FROM " + pgx.Identifier{s.table}.Sanitize() + " WHERE key = $1"
	b.Run("op=activate", func(b *testing.B) {
		i := 0
		for b.Loop() {
			_, err := s.Activate(b.Context(), ids[i%len(ids)], time.Now())
			require.NoError(b, err)
			i++
		}
	})
	b.Run("op=load", func(b *testing.B) {
		i := 0
		for b.Loop() {
			_, err := s.Load(b.Context(), ids[i%len(ids)])
			require.NoError(b, err)
			i++
		}
	})
	b.Run("op=plain-select", func(b *testing.B) {
		i := 0
		for b.Loop() {
			var r row
			require.NoError(b, s.pool.QueryRow(b.Context(), plain, hashID(ids[i%len(ids)])).Scan(r.dest()...))
			i++
		}
	})
}

// BenchmarkReadHitParallel is BenchmarkReadHit with every CPU's goroutine
// at work on the pool.
func BenchmarkReadHitParallel(b *testing.B) {
	s, ids := benchStore(b)
	plain := "SELECT " + cols + " FROM " + pgx.Identifier{s.table}.Sanitize() + " WHERE key = $1"
	b.Run("op=activate", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := s.Activate(b.Context(), ids[i%len(ids)], time.Now()); err != nil {
					b.Error(err)
					return
				}
				i += 7
			}
		})
	})
	b.Run("op=plain-select", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				var r row
				if err := s.pool.QueryRow(b.Context(), plain, hashID(ids[i%len(ids)])).Scan(r.dest()...); err != nil {
					b.Error(err)
					return
				}
				i += 7
			}
		})
	})
}

// discard is a ResponseWriter that keeps the status and headers only.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

// BenchmarkMiddlewareReadHit: a request whose handler reads its session,
// through the Manager's Middleware on the store, against a bare handler
// that runs the plain SELECT of the same row.
func BenchmarkMiddlewareReadHit(b *testing.B) {
	p := newPool(b)
	s := newStore(b, p)
	n := min(200, benchLiveN())
	m, request, keys := benchSessions(b, s, "u", n)
	b.Run("stack=sessions", func(b *testing.B) {
		h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sess, ok := sessions.FromContext(r.Context())
			if !ok {
				b.Error("no session")
				return
			}
			if v, _ := sess.Get("user_id"); v != "u123456" {
				b.Errorf("user_id %v", v)
			}
		}))
		d := &discard{h: http.Header{}}
		i := 0
		for b.Loop() {
			h.ServeHTTP(d, request(i))
			i++
		}
	})
	plain := "SELECT " + cols + " FROM " + pgx.Identifier{s.table}.Sanitize() + " WHERE key = $1"
	b.Run("stack=plain-select", func(b *testing.B) {
		d := &discard{h: http.Header{}}
		i := 0
		for b.Loop() {
			r := request(i)
			var rw row
			if err := p.QueryRow(r.Context(), plain, keys[i%n]).Scan(rw.dest()...); err != nil {
				b.Error(err)
			}
			d.WriteHeader(http.StatusOK)
			i++
		}
	})
}

// BenchmarkCreate: Create of a user's session with a limit (the user's
// lock, expired clearing, eviction check and insert in one round trip).
func BenchmarkCreate(b *testing.B) {
	p := newPool(b)
	s := newStore(b, p)
	i := 0
	for b.Loop() {
		_, err := s.Create(b.Context(), rec(fmt.Sprint("u", i%1000), time.Hour), 5, 0)
		require.NoError(b, err)
		i++
	}
}

// benchSessions returns a Manager on s that has made n sessions (users
// prefix0, prefix1, …, with the benchmarks module's payload), a request
// carrying the cookie of the i-th (mod n), and each session's row key.
func benchSessions(b *testing.B, s *Store, prefix string, n int) (*sessions.Manager, func(i int) *http.Request, [][]byte) {
	m, err := sessions.NewManager(sessions.Config{Keys: testKeys, IdleTimeout: time.Hour, DisableAutoCleanup: true,
		MaxSessionsPerUser: sessions.Unlimited, Cookie: sessions.CookieConfig{Insecure: true}}, sessions.WithStore(s))
	require.NoError(b, err)
	b.Cleanup(func() { _ = m.Close() })
	cookies := make([]string, n)
	keys := make([][]byte, n)
	for i := range cookies {
		sess, err := m.Create(b.Context(), fmt.Sprint(prefix, i), map[string]any{"user_id": "u123456", "saldo": 1000})
		require.NoError(b, err)
		token, err := m.Token(sess)
		require.NoError(b, err)
		cookies[i] = "session=" + token
		keys[i] = hashID(sess.ID())
	}
	request := func(i int) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
		r.Header.Set("Cookie", cookies[i%n])
		return r
	}
	return m, request, keys
}

// BenchmarkReadHitRatio: Activate (the Middleware's read; the stored
// activity is recent, so it writes nothing) and Load against the plain
// SELECT of the same row by key, alternating; and a request whose handler
// reads its session through the Middleware against a bare handler that
// runs the plain SELECT.
func BenchmarkReadHitRatio(b *testing.B) {
	s, ids := benchStore(b)
	plain := "SELECT " + cols + " FROM " + pgx.Identifier{s.table}.Sanitize() + " WHERE key = $1"
	plainSelect := func(i int) {
		var r row
		if err := s.pool.QueryRow(b.Context(), plain, hashID(ids[i%len(ids)])).Scan(r.dest()...); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("op=activate", func(b *testing.B) {
		benchkit.Alternate(b, false, chunkOps, "activate", "select", func(i int) {
			if _, err := s.Activate(b.Context(), ids[i%len(ids)], time.Now()); err != nil {
				b.Fatal(err)
			}
		}, plainSelect)
	})
	b.Run("op=load", func(b *testing.B) {
		benchkit.Alternate(b, false, chunkOps, "load", "select", func(i int) {
			if _, err := s.Load(b.Context(), ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
		}, plainSelect)
	})
	b.Run("op=request", func(b *testing.B) {
		n := min(200, len(ids))
		m, request, keys := benchSessions(b, s, "r", n)
		h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, ok := sessions.FromContext(r.Context()); !ok {
				b.Error("no session")
			}
		}))
		bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var rw row
			if err := s.pool.QueryRow(r.Context(), plain, keys[0]).Scan(rw.dest()...); err != nil {
				b.Error(err)
			}
		})
		d := &discard{h: http.Header{}}
		benchkit.Alternate(b, false, chunkOps, "sessions", "bare+select", func(i int) { h.ServeHTTP(d, request(i)) }, func(i int) { bare.ServeHTTP(d, request(i)) })
	})
	b.Run("op=vs-scs-statements", func(b *testing.B) {
		// What scs's pgxstore sends for a read hit when IdleTimeout is set
		// (scs v2.9.0 data.go marks every loaded session Modified, so
		// LoadAndSave commits it; pgxstore.go Find and Commit): its SELECT
		// and its upsert of the whole blob, in its documented schema, sent
		// by a bare handler. scs's own Go work (gob, middleware) is left
		// out, which flatters it.
		n := min(200, len(ids))
		m, request, _ := benchSessions(b, s, "s", n)
		scsTable := newTable(b, s.pool)
		q := pgx.Identifier{scsTable}.Sanitize()
		_, err := s.pool.Exec(b.Context(), "CREATE TABLE "+q+" (token TEXT PRIMARY KEY, data BYTEA NOT NULL, expiry TIMESTAMPTZ NOT NULL)")
		require.NoError(b, err)
		_, err = s.pool.Exec(b.Context(), "CREATE INDEX ON "+q+" (expiry)")
		require.NoError(b, err)
		find := "SELECT data FROM " + q + " WHERE token = $1 AND current_timestamp < expiry"
		commit := "INSERT INTO " + q + " (token, data, expiry) VALUES ($1, $2, $3) ON CONFLICT (token) DO UPDATE SET data = EXCLUDED.data, expiry = EXCLUDED.expiry"
		tokens := make([]string, n)
		blob := make([]byte, 120) // about what scs's gob of {"user_id", "saldo"} and a deadline weighs
		for i := range tokens {
			tokens[i] = newID() + newID()[:11] // 43 characters, as scs's tokens
			_, err = s.pool.Exec(b.Context(), commit, tokens[i], blob, time.Now().Add(time.Hour))
			require.NoError(b, err)
		}
		h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, ok := sessions.FromContext(r.Context()); !ok {
				b.Error("no session")
			}
		}))
		scs := func(i int) {
			var data []byte
			if err := s.pool.QueryRow(b.Context(), find, tokens[i%n]).Scan(&data); err != nil {
				b.Fatal(err)
			}
			if _, err := s.pool.Exec(b.Context(), commit, tokens[i%n], data, time.Now().Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
		d := &discard{h: http.Header{}}
		benchkit.Alternate(b, false, chunkOps, "sessions", "scs-statements", func(i int) { h.ServeHTTP(d, request(i)) }, scs)
	})
}
