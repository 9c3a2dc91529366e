package sessions_test

// Benchmarks of the request path and of the memory store (issue 4).
//
// Populations of 1k and 100k live sessions always run; 1M runs only when
// SESSIONS_BENCH_FULL=1 is set and -short is not (building a million
// sessions takes seconds). CI runs them once each to keep them compiling and
// working, in well under a minute:
//
//	go test -run '^$' -bench . -benchtime=1x -short .
//
// A full run, to read numbers from:
//
//	SESSIONS_BENCH_FULL=1 go test -run '^$' -bench . -count 6 -timeout 60m . | tee new.txt
//
// The comparison with scs and gorilla/sessions lives in the benchmarks/
// module (benchmarks/run.sh).
//
// Every request goes through the same path as the bare-handler baseline: a
// new *http.Request with one Cookie header and a recorder reused by the
// goroutine, so the difference from BenchmarkRequest/bare is what the
// Middleware costs.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokyopredictor/sessions"
	"github.com/tokyopredictor/sessions/internal/benchkit"
)

// benchFullEnv turns on the 1M-session populations (with -short unset).
const benchFullEnv = "SESSIONS_BENCH_FULL"

// benchKey is fixed so that runs are comparable; it signs nothing real.
var benchKey = []byte("bench-key-0123456789abcdefghijkl")

// chunkSize is how many Start or End requests run between two untimed
// refills, so the population stays within chunkSize of its size.
const chunkSize = 1024

func benchSizes() []int {
	sizes := []int{1_000, 100_000}
	if !testing.Short() && os.Getenv(benchFullEnv) == "1" {
		sizes = append(sizes, 1_000_000)
	}
	return sizes
}

func benchConfig() sessions.Config {
	return sessions.Config{
		DisableAutoCleanup: true, // sweeps are measured apart, in BenchmarkSweep
		Keys:               [][]byte{benchKey},
	}
}

func newBenchManager(b *testing.B, cfg sessions.Config, opts ...sessions.Option) *sessions.Manager {
	b.Helper()
	m, err := sessions.NewManager(cfg, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	return m
}

// payload is the session data of issue 4's memory target.
func payload(user string) map[string]any {
	return map[string]any{"user_id": user, "saldo": 1000}
}

// login starts a session for user with the payload and returns its cookie.
func login(m *sessions.Manager, user string) (string, error) {
	w := benchkit.NewRecorder()
	if _, err := m.Start(w, benchkit.NewRequest(""), user, payload(user)); err != nil {
		return "", err
	}
	return benchkit.SetCookie(w.Header())
}

// fill runs f(i) for i in [from, to) on GOMAXPROCS goroutines.
func fill(b *testing.B, from, to int, f func(i int) error) {
	b.Helper()
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := from + w; i < to; i += workers {
				if err := f(i); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
}

// population is a manager on the memory store holding live sessions, with
// the cookies of those sessions in a random order (so that requests do not
// walk memory in allocation order).
type population struct {
	m       *sessions.Manager
	cookies []string
}

func newPopulation(b *testing.B, n int) *population {
	b.Helper()
	p := &population{m: newBenchManager(b, benchConfig()), cookies: make([]string, n)}
	fill(b, 0, n, func(i int) (err error) {
		p.cookies[i], err = login(p.m, benchkit.UserName(i))
		return err
	})
	rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) {
		p.cookies[i], p.cookies[j] = p.cookies[j], p.cookies[i]
	})
	if got := p.m.Stats().ActiveSessions; got != n {
		b.Fatalf("population has %d live sessions, want %d", got, n)
	}
	return p
}

// tamper returns cookie with one byte of its MAC changed: the ID still names
// a live session, but the signature no longer verifies.
func tamper(b *testing.B, cookie string) string {
	b.Helper()
	name, value, _ := strings.Cut(cookie, "=")
	raw, err := base64.URLEncoding.DecodeString(value)
	if err != nil || len(raw) < 32 {
		b.Fatalf("cookie value does not decode: %v", err)
	}
	raw[len(raw)-32] ^= 1 // the first byte of the HMAC-SHA256
	return name + "=" + base64.URLEncoding.EncodeToString(raw)
}

var okBody = []byte("ok")

// The application handlers. Each answers 200 when it found what the
// workload expects and another status otherwise, so that a benchmark fails
// rather than measures the wrong path.

func bareApp(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(okBody) }

func readApp(w http.ResponseWriter, r *http.Request) {
	s, ok := sessions.FromContext(r.Context())
	if !ok {
		http.Error(w, "no session", http.StatusNotFound)
		return
	}
	if _, ok := s.Get("user_id"); !ok {
		http.Error(w, "no user_id", http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(okBody)
}

func writeApp(w http.ResponseWriter, r *http.Request) {
	s, ok := sessions.FromContext(r.Context())
	if !ok {
		http.Error(w, "no session", http.StatusNotFound)
		return
	}
	s.Set("saldo", 1000+int(r.ContentLength)) // a computed value, as an app would set
	_, _ = w.Write(okBody)
}

func noSessionApp(w http.ResponseWriter, r *http.Request) {
	if _, ok := sessions.FromContext(r.Context()); ok {
		http.Error(w, "unexpected session", http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(okBody)
}

func startApp(m *sessions.Manager) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user := r.Header["X-User"][0]
		if _, err := m.Start(w, r, user, payload(user)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(okBody)
	}
}

func endApp(m *sessions.Manager) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := sessions.FromContext(r.Context()); !ok {
			http.Error(w, "no session", http.StatusNotFound)
			return
		}
		if err := m.End(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(okBody)
	}
}

var modes = []struct {
	name     string
	parallel bool
}{{"serial", false}, {"parallel", true}}

// BenchmarkRequest measures one request through the Middleware on the
// memory store, for each workload, with 1k, 100k (and 1M) live sessions,
// against a bare handler through the same harness.
//
//   - read-hit: a valid cookie of a live session; the handler reads a value.
//   - write-hit: the same; the handler sets a value.
//   - miss: no cookie.
//   - bad-cookie: a live session's cookie with its MAC altered.
//   - start: a login (Manager.Start) from a request with no session.
//   - end: a logout (Manager.End) of a live session.
func BenchmarkRequest(b *testing.B) {
	b.Run("bare", func(b *testing.B) {
		cookies := []string{"__Host-session=MTc2NDI2NzAwMHxBQUFBQUFBQUFBQUFBQUFBQUFBQUFBPT18AAAA"}
		for _, mode := range modes {
			b.Run(mode.name, func(b *testing.B) {
				benchkit.RunRequests(b, mode.parallel, http.HandlerFunc(bareApp), cookies, nil)
			})
		}
	})
	for _, n := range benchSizes() {
		b.Run("live="+benchkit.SizeName(n), func(b *testing.B) {
			p := newPopulation(b, n)
			m := p.m
			forged := make([]string, min(n, 1024))
			for i := range forged {
				forged[i] = tamper(b, p.cookies[i])
			}
			simple := []struct {
				name    string
				h       http.HandlerFunc
				cookies []string
			}{
				{"read-hit", readApp, p.cookies},
				{"write-hit", writeApp, p.cookies},
				{"miss", noSessionApp, []string{""}},
				{"bad-cookie", noSessionApp, forged},
			}
			for _, wl := range simple {
				h := m.Middleware(wl.h)
				for _, mode := range modes {
					b.Run(wl.name+"/"+mode.name, func(b *testing.B) {
						benchkit.RunRequests(b, mode.parallel, h, wl.cookies, nil)
					})
				}
			}

			var logins atomic.Int64 // user numbers for logins, above the population's
			logins.Store(int64(n))
			nextUser := func() string { return benchkit.UserName(int(logins.Add(1))) }
			end := m.Middleware(endApp(m))
			for _, mode := range modes {
				b.Run("start/"+mode.name, func(b *testing.B) {
					w := benchkit.NewRecorder()
					logout := func(h http.Header) error {
						c, err := benchkit.SetCookie(h)
						if err != nil {
							return err
						}
						return benchkit.StatusErr(benchkit.Serve(end, w, benchkit.NewRequest(c)))
					}
					benchkit.RunStarts(b, mode.parallel, chunkSize, m.Middleware(startApp(m)), nextUser, logout, nil)
				})
			}
			for _, mode := range modes {
				b.Run("end/"+mode.name, func(b *testing.B) {
					benchkit.RunEnds(b, mode.parallel, chunkSize, end,
						func() (string, error) { return login(m, nextUser()) }, nil)
				})
			}
			if got := m.Stats().ActiveSessions; got != n {
				b.Errorf("population has %d live sessions after the workloads, want %d", got, n)
			}
		})
	}
}

// expiredSet adds k sessions that have expired to the store of short, a
// manager whose IdleTimeout is shortIdle, and returns once they all have.
func expiredSet(b *testing.B, short *sessions.Manager, k int, round int) {
	b.Helper()
	ctx := context.Background()
	fill(b, 0, k, func(i int) error {
		user := "x" + strconv.Itoa(round) + "-" + strconv.Itoa(i)
		_, err := short.Create(ctx, user, payload(user))
		return err
	})
	// Poll (bounded) until the last of them is past its idle deadline.
	deadline := time.Now().Add(5 * time.Second)
	last := time.Now()
	for time.Since(last) <= shortIdle {
		if time.Now().After(deadline) {
			b.Fatal("expired sessions did not expire in time")
		}
		runtime.Gosched()
	}
}

const shortIdle = time.Millisecond // the shortest IdleTimeout NewManager accepts

// sweepSetup returns a manager holding n live sessions, the cookies of 1024
// of them (for probe requests), and a manager sharing its store whose
// sessions expire after shortIdle.
func sweepSetup(b *testing.B, n int) (m, short *sessions.Manager, cookies []string) {
	b.Helper()
	st := sessions.NewMemoryStore()
	m = newBenchManager(b, benchConfig(), sessions.WithStore(st))
	cfg := benchConfig()
	cfg.IdleTimeout = shortIdle
	short = newBenchManager(b, cfg, sessions.WithStore(st))
	probes := min(n, 1024)
	cookies = make([]string, probes)
	ctx := context.Background()
	fill(b, 0, n, func(i int) (err error) {
		user := benchkit.UserName(i)
		if i < probes {
			cookies[i], err = login(m, user)
			return err
		}
		_, err = m.Create(ctx, user, payload(user))
		return err
	})
	return m, short, cookies
}

// BenchmarkSweep measures Manager.Cleanup (one sweep) with n live sessions
// and 1% or 10% of n more that have expired; ns/op is one sweep, hooks
// included (none registered).
//
// The pause sub-benchmark serves read-hit requests on another goroutine
// during each sweep of 10% and reports the longest and what else ran (see
// benchkit.SweepPause). Its ns/op is not meaningful: the timer keeps
// running through making the expired sessions and the baseline, so that
// b.N stays small.
func BenchmarkSweep(b *testing.B) {
	for _, n := range benchSizes() {
		b.Run("live="+benchkit.SizeName(n), func(b *testing.B) {
			m, short, cookies := sweepSetup(b, n)
			ctx := context.Background()
			round := 0
			sweep := func(b *testing.B, k int) {
				got, err := m.Cleanup(ctx)
				if err != nil || got != k {
					b.Fatalf("Cleanup = %d, %v; want %d", got, err, k)
				}
			}
			for _, pct := range []int{1, 10} {
				k := n * pct / 100
				b.Run(fmt.Sprintf("expired=%d%%", pct), func(b *testing.B) {
					b.ReportAllocs()
					for range b.N {
						b.StopTimer()
						round++
						expiredSet(b, short, k, round)
						b.StartTimer()
						sweep(b, k)
					}
				})
			}
			k := n / 10
			b.Run("pause/expired=10%", func(b *testing.B) {
				benchkit.SweepPause(b, m.Middleware(http.HandlerFunc(readApp)), cookies,
					func() error {
						round++
						expiredSet(b, short, k, round)
						return nil
					},
					func() error { sweep(b, k); return nil })
			})
		})
	}
}

// BenchmarkMemory reports the heap each live session holds on the memory
// store (B/session), with the payload {"user_id": "u123456", "saldo": 1000}:
// "create" makes them with Manager.Create; "start" with Manager.Start from
// requests that each carry their own User-Agent and remote address strings,
// which the session keeps. ns/op is not meaningful: it covers making the n
// sessions and two full collections (the timer keeps running, so that b.N
// stays 1 when collecting a large heap takes long).
func BenchmarkMemory(b *testing.B) {
	const userAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	ctx := context.Background()
	for _, n := range benchSizes() {
		for _, via := range []string{"create", "start"} {
			b.Run("live="+benchkit.SizeName(n)+"/via="+via, func(b *testing.B) {
				var perSession float64
				for range b.N {
					m, err := sessions.NewManager(benchConfig())
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { _ = m.Close() }) // on failure; Close is idempotent
					before := benchkit.HeapInUse()
					for i := range n {
						user := benchkit.UserName(i)
						if via == "create" {
							_, err = m.Create(ctx, user, payload(user))
						} else {
							r := benchkit.NewRequest("")
							// Strings a server would have allocated for this request.
							r.Header["User-Agent"] = []string{strings.Clone(userAgent)}
							r.RemoteAddr = "192.0.2." + strconv.Itoa(i%250) + ":" + strconv.Itoa(1024+i%60000)
							_, err = m.Start(benchkit.NewRecorder(), r, user, payload(user))
						}
						if err != nil {
							b.Fatal(err)
						}
					}
					after := benchkit.HeapInUse()
					perSession = (float64(after) - float64(before)) / float64(n)
					if got := m.Stats().ActiveSessions; got != n {
						b.Fatalf("%d live sessions, want %d", got, n)
					}
					runtime.KeepAlive(m)
					_ = m.Close()
				}
				b.ReportMetric(perSession, "B/session")
			})
		}
	}
}
