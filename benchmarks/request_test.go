package benchmarks

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/tokyopredictor/sessions"
	"github.com/tokyopredictor/sessions/internal/benchkit"
)

// library is one row set of the comparison.
type library struct {
	name  string
	redis bool // needs Redis; runs at 1k live sessions only
	big   bool // also runs read-hit at 100k and 1M live sessions, and read-hit-lean
	get   func(b *testing.B, n int) *instance
}

var libraries = []library{
	{name: "bare", big: true, get: func(b *testing.B, _ int) *instance {
		return cached(b, "bare", func() (*instance, error) { return bareInstance(), nil })
	}},
	{name: "ours-mem", big: true, get: func(b *testing.B, n int) *instance {
		return cached(b, "ours-mem/"+benchkit.SizeName(n), func() (*instance, error) {
			return oursInstance(n, sessions.NewMemoryStore(), nil, nil)
		})
	}},
	{name: "scs-mem", big: true, get: func(b *testing.B, n int) *instance {
		return cached(b, "scs-mem/"+benchkit.SizeName(n), func() (*instance, error) {
			return scsInstance(scsMemPopulation(b, n), 0, nil), nil
		})
	}},
	{name: "scs-mem-idle", big: true, get: func(b *testing.B, n int) *instance {
		return cached(b, "scs-mem-idle/"+benchkit.SizeName(n), func() (*instance, error) {
			return scsInstance(scsMemPopulation(b, n), 30*time.Minute, nil), nil
		})
	}},
	{name: "gorilla-cookie", get: func(b *testing.B, n int) *instance {
		return cached(b, "gorilla-cookie/"+benchkit.SizeName(n), func() (*instance, error) { return gorillaInstance(n) })
	}},
	{name: "ours-redis", redis: true, get: func(b *testing.B, n int) *instance {
		return cached(b, "ours-redis/"+benchkit.SizeName(n), func() (*instance, error) { return oursRedisInstance(n) })
	}},
	{name: "scs-redis", redis: true, get: func(b *testing.B, n int) *instance {
		return cached(b, "scs-redis/"+benchkit.SizeName(n), func() (*instance, error) { return scsRedisInstance(n, 0) })
	}},
	{name: "scs-redis-idle", redis: true, get: func(b *testing.B, n int) *instance {
		return cached(b, "scs-redis-idle/"+benchkit.SizeName(n), func() (*instance, error) { return scsRedisInstance(n, 30*time.Minute) })
	}},
}

func libraryNamed(b *testing.B, name string) library {
	for _, l := range libraries {
		if l.name == name {
			return l
		}
	}
	b.Fatalf("no library %q", name)
	return library{}
}

var modes = []struct {
	name     string
	parallel bool
}{{"serial", false}, {"parallel", true}}

// loginSeq numbers the users of start and end requests, above every
// population's.
var loginSeq atomic.Int64

func init() { loginSeq.Store(10_000_000) }

// nextUser names the user of the next start or end request.
func nextUser() string { return benchkit.UserName(int(loginSeq.Add(1))) }

// BenchmarkRequest runs each workload through each library, with 1k live
// sessions (and read-hit with 100k and 1M when SESSIONS_BENCH_FULL=1):
//
//	BenchmarkRequest/live=1k/op=read-hit/mode=serial/lib=scs-mem-idle
//
// lib=bare is the floor: the same harness and a handler that only writes
// "ok". rt/op, on the Redis rows, counts store round trips per request.
// read-hit-lean is read-hit through a harness that allocates nothing of
// its own (requests built beforehand, a response writer that keeps
// nothing): it shows the library's path alone, and how that scales on
// GOMAXPROCS cores.
func BenchmarkRequest(b *testing.B) {
	for _, n := range sizes() {
		ops := allOps
		if n > 1_000 {
			ops = []string{opReadHit, opReadLean}
		}
		for _, op := range ops {
			for _, mode := range modes {
				for _, lib := range libraries {
					if (n > 1_000 || op == opReadLean) && !lib.big {
						continue
					}
					b.Run("live="+benchkit.SizeName(n)+"/op="+op+"/mode="+mode.name+"/lib="+lib.name, func(b *testing.B) {
						if lib.redis {
							requireRedis(b)
						}
						runOp(b, lib.get(b, n), op, mode.parallel)
					})
				}
			}
		}
	}
}

func runOp(b *testing.B, in *instance, op string, parallel bool) {
	h := in.handler(op)
	switch op {
	case opReadLean:
		runLean(b, parallel, in.handler(opReadHit), in.cookies)
	case opReadHit, opWriteHit:
		benchkit.RunRequests(b, parallel, h, in.cookies, in.rt)
	case opMiss:
		benchkit.RunRequests(b, parallel, h, []string{""}, in.rt)
	case opBadCookie:
		benchkit.RunRequests(b, parallel, h, in.forged, in.rt)
	case opStart:
		benchkit.RunStarts(b, parallel, chunkSize, h, nextUser, in.logout, in.rt)
	case opEnd:
		benchkit.RunEnds(b, parallel, chunkSize, h,
			func() (string, error) { return in.login(nextUser()) }, in.rt)
	default:
		b.Fatalf("unknown workload %q", op)
	}
}

// BenchmarkFloor/securecookie-decode is one verification of a signed
// session ID, as securecookie does it (HMAC-SHA256 and base64, no
// encryption, no serializer): the least a library that verifies every
// request's cookie pays.
func BenchmarkFloor(b *testing.B) {
	sc := securecookie.New(hashKey, nil)
	sc.SetSerializer(securecookie.NopEncoder{})
	sc.MaxAge(0)
	id := make([]byte, 16)
	value, err := sc.Encode("session", id)
	if err != nil {
		b.Fatal(err)
	}
	decode := func() error {
		var dst []byte
		return sc.Decode("session", value, &dst)
	}
	for _, mode := range modes {
		b.Run("op=securecookie-decode/mode="+mode.name, func(b *testing.B) {
			b.ReportAllocs()
			if !mode.parallel {
				for range b.N {
					if err := decode(); err != nil {
						b.Fatal(err)
					}
				}
				return
			}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := decode(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
