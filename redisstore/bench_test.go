package redisstore

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// benchStore returns a store on the test server whose client counts round
// trips, with one live session whose ID it returns.
func benchStore(b *testing.B, opts ...Option) (*Store, *counter, sessions.Record) {
	c := newClient(b)
	cnt := &counter{}
	c.AddHook(cnt)
	s := newStore(b, c, opts...)
	r := rec("bench-user", time.Hour)
	r.Values = map[string][]byte{"name": []byte("\x01bench"), "cart": make([]byte, 200)}
	_, err := s.Create(b.Context(), r, 5, sessions.EvictOldest)
	require.NoError(b, err)
	// Load every script into the server's cache.
	_, _ = s.Activate(b.Context(), r.ID, time.Now())
	_ = s.Update(b.Context(), r.ID, time.Now(), nil, nil)
	return s, cnt, r
}

// report adds the round trips per operation since start.
func report(b *testing.B, cnt *counter, start int64) {
	b.ReportMetric(float64(cnt.n.Load()-start)/float64(b.N), "roundtrips/op")
}

func BenchmarkLoad(b *testing.B) {
	s, cnt, r := benchStore(b)
	ctx := b.Context()
	start := cnt.n.Load()
	b.ResetTimer()
	for range b.N {
		if _, err := s.Load(ctx, r.ID); err != nil {
			b.Fatal(err)
		}
	}
	report(b, cnt, start)
}

// BenchmarkActivate is a read hit through the Middleware's store call: the
// activity write is coalesced away.
func BenchmarkActivate(b *testing.B) {
	s, cnt, r := benchStore(b)
	ctx := b.Context()
	start := cnt.n.Load()
	b.ResetTimer()
	for range b.N {
		if _, err := s.Activate(ctx, r.ID, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	report(b, cnt, start)
}

// BenchmarkActivateWrite makes every Activate write the activity.
func BenchmarkActivateWrite(b *testing.B) {
	s, cnt, r := benchStore(b, WithTouchWindow(0))
	ctx := b.Context()
	at := time.Now()
	start := cnt.n.Load()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Activate(ctx, r.ID, at.Add(time.Duration(i+1)*time.Millisecond)); err != nil {
			b.Fatal(err)
		}
	}
	report(b, cnt, start)
}

func BenchmarkUpdate(b *testing.B) {
	s, cnt, r := benchStore(b)
	ctx := b.Context()
	v := []byte("\x01value")
	start := cnt.n.Load()
	b.ResetTimer()
	for range b.N {
		if err := s.Update(ctx, r.ID, time.Now(), map[string][]byte{"k": v}, nil); err != nil {
			b.Fatal(err)
		}
	}
	report(b, cnt, start)
}

// BenchmarkCreate creates sessions for 100 users with a limit of 5
// (EvictOldest): once warm, every Create also evicts one.
func BenchmarkCreate(b *testing.B) {
	s, cnt, _ := benchStore(b)
	ctx := b.Context()
	recs := make([]sessions.Record, b.N)
	for i := range recs {
		recs[i] = rec("user"+strconv.Itoa(i%100), time.Hour)
	}
	start := cnt.n.Load()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Create(ctx, recs[i], 5, sessions.EvictOldest); err != nil {
			b.Fatal(err)
		}
	}
	report(b, cnt, start)
}

// BenchmarkExpiredSweep claims and acknowledges batches of 100 expired
// sessions among 10,000 live ones (1,000 with -short); one op is one batch.
func BenchmarkExpiredSweep(b *testing.B) {
	const batch = 100
	s, cnt, _ := benchStore(b)
	ctx := b.Context()
	live := 10000
	if testing.Short() {
		live = 1000
	}
	for i := range live {
		_, err := s.Create(ctx, rec("live"+strconv.Itoa(i%1000), time.Hour), 0, sessions.EvictOldest)
		require.NoError(b, err)
	}
	past := time.Now().Add(-time.Hour)
	var claimed int64
	var rt int64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for j := range batch {
			r := rec("gone"+strconv.Itoa(j%10), time.Minute)
			r.LastActivity, r.CreatedAt = past, past
			_, err := s.Create(ctx, r, 0, sessions.EvictOldest)
			require.NoError(b, err)
		}
		start := cnt.n.Load()
		b.StartTimer()
		recs, err := s.Expired(ctx, time.Now(), batch)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Ack(ctx, claimsOf(recs)); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		rt += cnt.n.Load() - start
		claimed += int64(len(recs))
		b.StartTimer()
	}
	require.EqualValues(b, int64(b.N)*batch, claimed)
	b.ReportMetric(float64(rt)/float64(b.N), "roundtrips/op")
	b.ReportMetric(batch, "sessions/op")
}

// benchManager returns a manager on a counted store and a signed cookie of
// one live session.
func benchManager(b *testing.B) (*sessions.Manager, *counter, *http.Cookie) {
	c := newClient(b)
	cnt := &counter{}
	c.AddHook(cnt)
	s := newStore(b, c)
	m, err := sessions.NewManager(sessions.Config{
		Keys: testKeys, DisableAutoCleanup: true, MaxSessionsPerUser: sessions.Unlimited,
		Cookie: sessions.CookieConfig{Insecure: true},
	}, sessions.WithStore(s))
	require.NoError(b, err)
	b.Cleanup(func() { _ = m.Close() })
	w := httptest.NewRecorder()
	_, err = m.Start(w, httptest.NewRequest(http.MethodGet, "/login", nil), "bench", map[string]any{"name": "bench"})
	require.NoError(b, err)
	cookies := w.Result().Cookies()
	require.Len(b, cookies, 1)
	return m, cnt, cookies[0]
}

// BenchmarkRequestRead is a request through the Middleware that reads its
// session.
func BenchmarkRequestRead(b *testing.B) {
	m, cnt, cookie := benchManager(b)
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := sessions.FromContext(r.Context())
		if !ok {
			b.Fatal("no session")
		}
		_, _ = s.Get("name")
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(cookie)
	h.ServeHTTP(httptest.NewRecorder(), req)
	start := cnt.n.Load()
	b.ResetTimer()
	for range b.N {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	report(b, cnt, start)
}

// BenchmarkRequestWrite is a request through the Middleware that changes
// one value of its session.
func BenchmarkRequestWrite(b *testing.B) {
	m, cnt, cookie := benchManager(b)
	i := 0
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := sessions.FromContext(r.Context())
		if !ok {
			b.Fatal("no session")
		}
		i++
		s.Set("counter", i)
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(cookie)
	h.ServeHTTP(httptest.NewRecorder(), req)
	start := cnt.n.Load()
	b.ResetTimer()
	for range b.N {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	report(b, cnt, start)
}

// BenchmarkStart logs in (Manager.Start) without a previous session.
func BenchmarkStart(b *testing.B) {
	m, cnt, _ := benchManager(b)
	req := httptest.NewRequest(http.MethodGet, "/login", nil)
	start := cnt.n.Load()
	b.ResetTimer()
	for i := range b.N {
		if _, err := m.Start(httptest.NewRecorder(), req, "user"+strconv.Itoa(i%1000), map[string]any{"name": "x"}); err != nil {
			b.Fatal(err)
		}
	}
	report(b, cnt, start)
}

// BenchmarkFloorGet is the floor of a read hit: one plain GET of a
// 100-byte value through the same client as the other benchmarks, serial
// and parallel. Compare BenchmarkRequestRead with it in one run:
//
//	go test -run '^$' -bench 'FloorGet|RequestRead' -count 6 ./redisstore
func BenchmarkFloorGet(b *testing.B) {
	c := newClient(b)
	cnt := &counter{}
	c.AddHook(cnt)
	key := newPrefix(b, c) + "floor"
	require.NoError(b, c.Set(b.Context(), key, make([]byte, 100), time.Hour).Err())
	ctx := b.Context()
	b.Run("mode=serial", func(b *testing.B) {
		start := cnt.n.Load()
		for range b.N {
			if err := c.Get(ctx, key).Err(); err != nil {
				b.Fatal(err)
			}
		}
		report(b, cnt, start)
	})
	b.Run("mode=parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := c.Get(ctx, key).Err(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkRequestReadParallel is BenchmarkRequestRead from GOMAXPROCS
// goroutines, beside BenchmarkFloorGet/mode=parallel.
func BenchmarkRequestReadParallel(b *testing.B) {
	m, _, cookie := benchManager(b)
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := sessions.FromContext(r.Context())
		if !ok {
			b.Error("no session")
			return
		}
		_, _ = s.Get("name")
	}))
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.AddCookie(cookie)
		for pb.Next() {
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
	})
}
