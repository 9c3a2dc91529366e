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
