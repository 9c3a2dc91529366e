// Package benchkit is the request harness and the runtime readings shared by
// the package's benchmarks (bench_test.go) and the comparison module
// (benchmarks/), so that both measure every library the same way. Nothing
// in the library imports it.
package benchkit

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var benchURL = &url.URL{Scheme: "http", Host: "example.com", Path: "/"}

// SizeName names a population size: "1k", "100k", "1M".
func SizeName(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1_000 && n%1_000 == 0:
		return strconv.Itoa(n/1_000) + "k"
	}
	return strconv.Itoa(n)
}

// UserName returns the i-th user ID: 7 bytes like "u123456" below a million.
func UserName(i int) string { return fmt.Sprintf("u%06d", i) }

// NewRequest returns a GET / carrying cookie ("name=value") unless it is
// empty. It is built by hand, not parsed, so that the harness costs little
// and the same for every library. It reads the cookie's bytes once, as a
// server's header parser has just done when a handler runs: without that,
// a population of a million cookies would make the library's first look at
// the header a cache miss that no server pays and that the bare handler,
// which never reads the cookie, does not pay either; with it the harness
// pays that miss on every row alike.
func NewRequest(cookie string) *http.Request {
	r := &http.Request{
		Method:     http.MethodGet,
		URL:        benchURL,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header, 2),
		Host:       "example.com",
		RemoteAddr: "192.0.2.1:1234",
		RequestURI: "/",
	}
	if cookie != "" {
		r.Header["Cookie"] = []string{cookie}
		var sum byte
		for i := 0; i < len(cookie); i += 16 {
			sum += cookie[i]
		}
		runtime.KeepAlive(sum)
	}
	return r
}

// Recorder is the ResponseWriter of every benchmarked request: it keeps the
// status, the headers and the first 256 bytes of the body, and one
// goroutine reuses it from request to request. httptest.ResponseRecorder
// costs about 1.8 µs and 10 allocations a request on the project's machine
// (it snapshots the headers and buffers the body): more than some
// libraries' whole work.
type Recorder struct {
	h    http.Header
	code int
	body []byte
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{h: make(http.Header)} }

// Header implements http.ResponseWriter.
func (w *Recorder) Header() http.Header { return w.h }

// WriteHeader implements http.ResponseWriter; the first status stays.
func (w *Recorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

// Write implements http.ResponseWriter.
func (w *Recorder) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if n := min(len(p), 256-len(w.body)); n > 0 {
		w.body = append(w.body, p[:n]...)
	}
	return len(p), nil
}

// Serve runs r through h, writing to w after clearing it, and returns w.
func Serve(h http.Handler, w *Recorder, r *http.Request) *Recorder {
	clear(w.h)
	w.code, w.body = 0, w.body[:0]
	h.ServeHTTP(w, r)
	return w
}

// StatusErr describes a response that is not 200 OK, as net/http would
// send it (a handler that writes nothing sends 200), or returns nil.
func StatusErr(w *Recorder) error {
	if w.code != 0 && w.code != http.StatusOK {
		return fmt.Errorf("status %d: %s", w.code, strings.TrimSpace(string(w.body)))
	}
	return nil
}

// SetCookie returns the "name=value" pair of the first non-empty cookie set
// in h.
func SetCookie(h http.Header) (string, error) {
	for _, sc := range h["Set-Cookie"] {
		pair, _, _ := strings.Cut(sc, ";")
		if _, v, ok := strings.Cut(pair, "="); ok && v != "" {
			return pair, nil
		}
	}
	return "", errors.New("no session cookie in the response")
}

// HeapInUse returns the bytes of live heap objects after a full collection.
func HeapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Waits is a reading of the runtime's wait counters, taken by ReadWaits.
type Waits struct {
	Lock   time.Duration // goroutines blocked on sync.Mutex, RWMutex.Lock and runtime locks
	GC     uint64        // completed collections
	sched  []uint64      // histogram of the time goroutines waited to run
	bounds []float64
}

// ReadWaits reads the runtime's wait counters.
func ReadWaits() Waits {
	s := []metrics.Sample{
		{Name: "/sync/mutex/wait/total:seconds"},
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/sched/latencies:seconds"},
	}
	metrics.Read(s)
	h := s[2].Value.Float64Histogram()
	return Waits{
		Lock:   time.Duration(s[0].Value.Float64() * 1e9),
		GC:     s[1].Value.Uint64(),
		sched:  slices.Clone(h.Counts),
		bounds: h.Buckets,
	}
}

// MaxSched returns the upper bound of the longest a goroutine waited to run
// between the readings w and after.
func (w Waits) MaxSched(after Waits) time.Duration {
	for i := len(after.sched) - 1; i >= 0; i-- {
		if after.sched[i] > w.sched[i] {
			return time.Duration(min(after.bounds[i+1], 3600) * 1e9)
		}
	}
	return 0
}

// RunRequests serves b.N requests through h, the i-th carrying
// cookies[i%len(cookies)], serially or from GOMAXPROCS goroutines
// (b.RunParallel). rt, when not nil, counts the store's round trips, which
// are reported per request (rt/op).
func RunRequests(b *testing.B, parallel bool, h http.Handler, cookies []string, rt *atomic.Int64) {
	b.ReportAllocs()
	var rt0 int64
	if rt != nil {
		rt0 = rt.Load()
	}
	b.ResetTimer()
	if !parallel {
		w := NewRecorder()
		for i := range b.N {
			if err := StatusErr(Serve(h, w, NewRequest(cookies[i%len(cookies)]))); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		var worker atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			// Workers start far apart, so they rarely share a session.
			i := int(worker.Add(1)-1) * (len(cookies)/runtime.GOMAXPROCS(0) + 1)
			w := NewRecorder()
			for ; pb.Next(); i++ {
				if err := StatusErr(Serve(h, w, NewRequest(cookies[i%len(cookies)]))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.StopTimer()
	if rt != nil {
		b.ReportMetric(float64(rt.Load()-rt0)/float64(b.N), "rt/op")
	}
}

// RunChunked runs b.N operations in chunks of at most chunk: prep(n) and
// after(n) run with the timer stopped around each chunk of n, and op(i) for
// i in [0, n), serially or spread over GOMAXPROCS goroutines. rt, when not
// nil, counts the store's round trips during op, reported per operation.
func RunChunked(b *testing.B, parallel bool, chunk int, prep, after func(n int) error, op func(i int) error, rt *atomic.Int64) {
	b.ReportAllocs()
	workers := 1
	if parallel {
		workers = runtime.GOMAXPROCS(0)
	}
	errs := make([]error, workers)
	var rtOps int64
	b.StopTimer()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(chunk, b.N-done)
		if err := prep(n); err != nil {
			b.Fatal(err)
		}
		var rt0 int64
		if rt != nil {
			rt0 = rt.Load()
		}
		b.StartTimer()
		if workers == 1 {
			for i := range n {
				if errs[0] = op(i); errs[0] != nil {
					break
				}
			}
		} else {
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := w; i < n; i += workers {
						if errs[w] = op(i); errs[w] != nil {
							return
						}
					}
				})
			}
			wg.Wait()
		}
		b.StopTimer()
		if rt != nil {
			rtOps += rt.Load() - rt0
		}
		if err := errors.Join(errs...); err != nil {
			b.Fatal(err)
		}
		if err := after(n); err != nil {
			b.Fatal(err)
		}
		done += n
	}
	if rt != nil {
		b.ReportMetric(float64(rtOps)/float64(b.N), "rt/op")
	}
}

// SweepPause measures how long requests wait on sweeps. Each of b.N rounds
// runs prepare (making sessions that have expired), then serves read-hit
// requests through h, carrying cookies in turn, on another goroutine twice:
// first while a goroutine spins for as long as the last sweep took (at
// least 20 ms), the latency requests see anyway on two shared cores, then
// while sweep runs. It reports the longest request during a sweep
// (max-req-µs) and during the spin (max-req-idle-µs) and, from
// runtime/metrics over the sweep: the time all goroutines spent blocked on
// sync.Mutex, RWMutex.Lock and runtime locks (lock-wait-µs; RWMutex.RLock
// waits are not counted there), the longest a runnable goroutine waited
// for a CPU (max-sched-µs, a histogram bucket's upper bound), the
// collections that ran (gc/sweep) and the requests served (req/sweep).
func SweepPause(b *testing.B, h http.Handler, cookies []string, prepare, sweep func() error) {
	b.Helper()
	var worst, worstIdle, worstLock, last, worstSched time.Duration
	requests, cycles := 0, 0
	for range b.N {
		if err := prepare(); err != nil {
			b.Fatal(err)
		}
		idle, _ := probeDuring(b, h, cookies, func() error {
			t := time.Now()
			for time.Since(t) < max(last, 20*time.Millisecond) {
			}
			return nil
		})
		worstIdle = max(worstIdle, idle)
		t := time.Now()
		w0 := ReadWaits()
		l, reqs := probeDuring(b, h, cookies, sweep)
		w1 := ReadWaits()
		last = time.Since(t)
		worst = max(worst, l)
		worstLock = max(worstLock, w1.Lock-w0.Lock)
		worstSched = max(worstSched, w0.MaxSched(w1))
		requests += reqs
		cycles += int(w1.GC - w0.GC)
	}
	b.ReportMetric(float64(worst.Microseconds()), "max-req-µs")
	b.ReportMetric(float64(worstIdle.Microseconds()), "max-req-idle-µs")
	b.ReportMetric(float64(worstLock.Microseconds()), "lock-wait-µs")
	b.ReportMetric(float64(worstSched.Microseconds()), "max-sched-µs")
	b.ReportMetric(float64(cycles)/float64(b.N), "gc/sweep")
	b.ReportMetric(float64(requests)/float64(b.N), "req/sweep")
}

// probeDuring runs f while read-hit requests run through h on another
// goroutine, and returns the longest request and how many ran.
func probeDuring(b *testing.B, h http.Handler, cookies []string, f func() error) (time.Duration, int) {
	b.Helper()
	stop := make(chan struct{})
	type result struct {
		longest time.Duration
		n       int
		err     error
	}
	done := make(chan result)
	go func() {
		var res result
		defer func() { done <- res }()
		w := NewRecorder()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			t := time.Now()
			Serve(h, w, NewRequest(cookies[i%len(cookies)]))
			res.longest = max(res.longest, time.Since(t))
			res.n++
			if res.err = StatusErr(w); res.err != nil {
				return
			}
		}
	}()
	err := f()
	close(stop)
	res := <-done
	if err = errors.Join(err, res.err); err != nil {
		b.Fatal(err)
	}
	return res.longest, res.n
}

// RunStarts runs b.N login requests through h (see RunChunked for chunk,
// parallel and rt): each carries no cookie and an X-User header naming
// user(). After each chunk, untimed, logout ends the sessions whose
// response headers it gets.
func RunStarts(b *testing.B, parallel bool, chunk int, h http.Handler, user func() string, logout func(http.Header) error, rt *atomic.Int64) {
	users := make([]string, chunk)
	recs := newRecorders(chunk)
	RunChunked(b, parallel, chunk,
		func(n int) error {
			for i := range n {
				users[i] = user()
			}
			return nil
		},
		func(n int) error {
			for i := range n {
				if err := logout(recs[i].Header()); err != nil {
					return err
				}
			}
			return nil
		},
		func(i int) error {
			r := NewRequest("")
			r.Header["X-User"] = []string{users[i]}
			return StatusErr(Serve(h, recs[i], r))
		}, rt)
}

// RunEnds runs b.N logout requests through h (see RunChunked for chunk,
// parallel and rt), each carrying the cookie of a session that login made,
// untimed, before the chunk.
func RunEnds(b *testing.B, parallel bool, chunk int, h http.Handler, login func() (string, error), rt *atomic.Int64) {
	cookies := make([]string, chunk)
	recs := newRecorders(chunk)
	RunChunked(b, parallel, chunk,
		func(n int) error {
			for i := range n {
				c, err := login()
				if err != nil {
					return err
				}
				cookies[i] = c
			}
			return nil
		},
		func(int) error { return nil },
		func(i int) error { return StatusErr(Serve(h, recs[i], NewRequest(cookies[i]))) }, rt)
}

func newRecorders(n int) []*Recorder {
	recs := make([]*Recorder, n)
	for i := range recs {
		recs[i] = NewRecorder()
	}
	return recs
}

// Alternate runs a and c alternately, in chunks of chunk operations each,
// and reports each one's time per operation (nameA-ns/op, nameC-ns/op) and
// their ratio: on a shared, noisy machine, where separate benchmarks drift
// by 2× between runs, both see the same conditions. With parallel,
// GOMAXPROCS goroutines (b.RunParallel) each alternate, and the times are
// summed over them. About b.N operations of each run (whole chunks).
func Alternate(b *testing.B, parallel bool, chunk int, nameA, nameC string, a, c func(i int)) {
	var ta, tc, chunks atomic.Int64
	one := func(start int) {
		t0 := time.Now()
		for i := range chunk {
			a(start + i)
		}
		t1 := time.Now()
		for i := range chunk {
			c(start + i)
		}
		ta.Add(int64(t1.Sub(t0)))
		tc.Add(int64(time.Since(t1)))
		chunks.Add(1)
	}
	b.ResetTimer()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for {
				for range chunk {
					if !pb.Next() {
						return
					}
				}
				one(int(chunks.Load()) * chunk)
			}
		})
	} else {
		for start := 0; start < b.N; start += chunk {
			one(start)
		}
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	if ops := float64(chunks.Load() * int64(chunk)); ops > 0 && tc.Load() > 0 {
		b.ReportMetric(float64(ta.Load())/ops, nameA+"-ns/op")
		b.ReportMetric(float64(tc.Load())/ops, nameC+"-ns/op")
		b.ReportMetric(float64(ta.Load())/float64(tc.Load()), "ratio")
	}
}
