package benchmarks

// The request harness every library goes through, the population cache and
// the knobs.
//
// Environment:
//
//	SESSIONS_BENCH_FULL=1   also run 100k and 1M live sessions (not with -short)
//	SESSIONS_BENCH_REDIS    Redis address for the Redis rows (default 127.0.0.1:6379)
//	CI                      when set, a missing Redis fails instead of skipping

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tokyopredictor/sessions/internal/benchkit"
)

const benchFullEnv = "SESSIONS_BENCH_FULL"

// chunkSize is how many start or end requests run between two untimed
// refills, so that populations stay within chunkSize of their size.
const chunkSize = 1024

var (
	okBody = []byte("ok")
	// hashKey is fixed so that runs are comparable; it signs nothing real.
	hashKey = []byte("bench-key-0123456789abcdefghijkl")
)

// full reports whether the 100k and 1M populations run.
func full() bool { return !testing.Short() && os.Getenv(benchFullEnv) == "1" }

// sizes returns the population sizes of the in-memory rows.
func sizes() []int {
	if full() {
		return []int{1_000, 100_000, 1_000_000}
	}
	return []int{1_000}
}

// tamper returns a securecookie-format cookie with the first byte of its
// MAC changed, so that it no longer verifies.
func tamper(cookie string) (string, error) {
	name, value, _ := strings.Cut(cookie, "=")
	raw, err := base64.URLEncoding.DecodeString(value)
	if err != nil || len(raw) < 32 {
		return "", fmt.Errorf("cookie value does not decode: %v", err)
	}
	raw[len(raw)-32] ^= 1
	return name + "=" + base64.URLEncoding.EncodeToString(raw), nil
}

// fill runs f(i) for i in [0, n) on GOMAXPROCS goroutines.
func fill(n int, f func(i int) error) error {
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := f(i); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func shuffle(s []string) {
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
}

// The population cache: a library's instance with n live sessions is built
// once per process and shared by every benchmark that needs it; TestMain
// closes them all.
var (
	cacheMu sync.Mutex
	cache   = map[string]*instance{}
	closers []func()
)

func cached(b *testing.B, key string, build func() (*instance, error)) *instance {
	b.Helper()
	cacheMu.Lock()
	in, ok := cache[key]
	cacheMu.Unlock()
	if ok {
		return in
	}
	// Benchmarks run one at a time: no other caller builds key meanwhile.
	// build may itself use the cache.
	in, err := build()
	if err != nil {
		b.Fatalf("%s: %v", key, err)
	}
	cacheMu.Lock()
	cache[key] = in
	if in.close != nil {
		closers = append(closers, in.close)
	}
	cacheMu.Unlock()
	return in
}

// atExit registers f to run when the benchmarks are done.
func atExit(f func()) {
	cacheMu.Lock()
	closers = append(closers, f)
	cacheMu.Unlock()
}

func TestMain(m *testing.M) {
	code := m.Run()
	cacheMu.Lock()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
	cacheMu.Unlock()
	os.Exit(code)
}

// runLean is benchkit.RunRequests without building a request each time: requests
// are built beforehand (for up to 4096 of the cookies) and reused. What it
// measures is the library's path alone.
func runLean(b *testing.B, parallel bool, h http.Handler, cookies []string) {
	reqs := make([]*http.Request, min(len(cookies), 4096))
	for i := range reqs {
		reqs[i] = benchkit.NewRequest(cookies[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	if !parallel {
		w := benchkit.NewRecorder()
		for i := range b.N {
			if err := benchkit.StatusErr(benchkit.Serve(h, w, reqs[i%len(reqs)])); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	var worker atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		w := benchkit.NewRecorder()
		i := int(worker.Add(1)-1) * (len(reqs)/runtime.GOMAXPROCS(0) + 1)
		for ; pb.Next(); i++ {
			if err := benchkit.StatusErr(benchkit.Serve(h, w, reqs[i%len(reqs)])); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
