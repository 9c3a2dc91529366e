package benchmarks

// Memory per live session and the cost of a sweep, ours against scs's
// memstore.

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "unsafe" // go:linkname, for scs's sweep

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/tokyopredictor/sessions"
	"github.com/tokyopredictor/sessions/internal/benchkit"
)

// scsDeleteExpired is scs memstore's own sweep, which its cleanup goroutine
// runs every cleanup interval: it takes the store's write lock and walks
// every item. It is unexported; linking to it measures exactly the code scs
// runs, with no copy of ours in between.
//
//go:linkname scsDeleteExpired github.com/alexedwards/scs/v2/memstore.(*MemStore).deleteExpired
func scsDeleteExpired(m *memstore.MemStore)

// scsItems returns how many items (live or expired) st holds.
func scsItems(st *memstore.MemStore) int {
	return reflect.ValueOf(st).Elem().FieldByName("items").Len()
}

// userAgent is a typical browser's, kept by sessions that Manager.Start
// makes.
const userAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// BenchmarkMemory reports the heap each live session holds (B/session) with
// the payload {"user_id": "u123456", "saldo": 1000}: ours-mem made by
// Manager.Create, ours-mem-start by Manager.Start from requests that each
// carry their own User-Agent and remote address (which the session keeps),
// and scs-mem by scs's Commit (what LoadAndSave does for a new session).
// ns/op is not meaningful: it is the time to make all n sessions and two
// full collections (the timer keeps running, so that b.N stays 1 when a
// collection of a large heap takes long).
func BenchmarkMemory(b *testing.B) {
	ctx := context.Background()
	for _, n := range sizes() {
		for _, lib := range []string{"ours-mem", "ours-mem-start", "scs-mem"} {
			b.Run("live="+benchkit.SizeName(n)+"/lib="+lib, func(b *testing.B) {
				var perSession float64
				for range b.N {
					var make1 func(i int) error
					var count func() int
					var done func()
					switch lib {
					case "ours-mem", "ours-mem-start":
						m, err := sessions.NewManager(oursConfig())
						if err != nil {
							b.Fatal(err)
						}
						b.Cleanup(func() { _ = m.Close() }) // on failure; Close is idempotent
						done = func() { _ = m.Close() }
						count = func() int { return m.Stats().ActiveSessions }
						make1 = func(i int) error {
							user := benchkit.UserName(i)
							_, err := m.Create(ctx, user, payload(user))
							return err
						}
						if lib == "ours-mem-start" {
							make1 = func(i int) error {
								user := benchkit.UserName(i)
								r := benchkit.NewRequest("")
								// Strings a server allocates for each request.
								r.Header["User-Agent"] = []string{strings.Clone(userAgent)}
								r.RemoteAddr = "192.0.2." + strconv.Itoa(i%250) + ":" + strconv.Itoa(1024+i%60000)
								_, err := m.Start(benchkit.NewRecorder(), r, user, payload(user))
								return err
							}
						}
					case "scs-mem":
						st := memstore.NewWithCleanupInterval(0)
						sm := scs.New()
						sm.Store = st
						done = func() { runtime.KeepAlive(st) }
						count = func() int { return scsItems(st) }
						make1 = func(i int) error {
							_, err := scsLogin(sm, benchkit.UserName(i))
							return err
						}
					}
					before := benchkit.HeapInUse()
					for i := range n {
						if err := make1(i); err != nil {
							b.Fatal(err)
						}
					}
					after := benchkit.HeapInUse()
					if got := count(); got != n {
						b.Fatalf("%d live sessions, want %d", got, n)
					}
					perSession = (float64(after) - float64(before)) / float64(n)
					done()
				}
				b.ReportMetric(perSession, "B/session")
			})
		}
	}
}

// shortIdle is how long the sessions made to expire live: they have
// expired by the time they are all made.
const shortIdle = time.Millisecond // the shortest IdleTimeout sessions.NewManager accepts

// sweeper is a population of live sessions that a sweep can be measured on.
type sweeper struct {
	addExpired func(k, round int) error // adds k sessions that have expired
	sweep      func() (int, error)      // one sweep; how many it removed
	live       func() int
	probe      http.Handler // read-hit requests
	cookies    []string     // of live sessions, for the probe
}

// waitPast polls, bounded, until shortIdle has passed since t.
func waitPast(t time.Time) error {
	deadline := time.Now().Add(5 * time.Second)
	for time.Since(t) <= shortIdle {
		if time.Now().After(deadline) {
			return fmt.Errorf("clock did not pass %v", t.Add(shortIdle))
		}
		runtime.Gosched()
	}
	return nil
}

// oursSweeper sweeps the ours-mem request population: the sessions to
// expire are made by a second manager on the same store whose IdleTimeout
// is shortIdle.
func oursSweeper(b *testing.B, n int) *sweeper {
	in := libraryNamed(b, "ours-mem").get(b, n)
	cfg := oursConfig()
	cfg.IdleTimeout = shortIdle
	short, err := sessions.NewManager(cfg, sessions.WithStore(in.mem))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = short.Close() }) // not the store's last manager: ends nothing
	ctx := context.Background()
	return &sweeper{
		addExpired: func(k, round int) error {
			if err := fill(k, func(i int) error {
				user := "x" + strconv.Itoa(round) + "-" + strconv.Itoa(i)
				_, err := short.Create(ctx, user, payload(user))
				return err
			}); err != nil {
				return err
			}
			return waitPast(time.Now())
		},
		sweep:   func() (int, error) { return in.mgr.Cleanup(ctx) },
		live:    func() int { return in.mgr.Stats().ActiveSessions },
		probe:   in.handler(opReadHit),
		cookies: in.cookies[:min(len(in.cookies), 1024)],
	}
}

// scsSweeper sweeps the scs memstore population: the sessions to expire
// are committed by a SessionManager whose Lifetime is shortIdle.
func scsSweeper(b *testing.B, n int) *sweeper {
	p := scsMemPopulation(b, n)
	st := p.store.(*memstore.MemStore)
	short := scs.New()
	short.Store = st
	short.Lifetime = shortIdle
	in := libraryNamed(b, "scs-mem-idle").get(b, n) // on the same store, for the probe
	return &sweeper{
		addExpired: func(k, round int) error {
			if err := fill(k, func(i int) error {
				_, err := scsLogin(short, "x"+strconv.Itoa(round)+"-"+strconv.Itoa(i))
				return err
			}); err != nil {
				return err
			}
			return waitPast(time.Now())
		},
		sweep: func() (int, error) {
			before := scsItems(st)
			scsDeleteExpired(st)
			return before - scsItems(st), nil
		},
		live:    func() int { return scsItems(st) },
		probe:   in.handler(opReadHit),
		cookies: in.cookies[:min(len(in.cookies), 1024)],
	}
}

var sweepers = []struct {
	name string
	get  func(b *testing.B, n int) *sweeper
}{{"ours-mem", oursSweeper}, {"scs-mem", scsSweeper}}

var sweepRound int // names the expired sessions of each round apart

// BenchmarkSweep measures one sweep (ns/op) of n live sessions and 1% or
// 10% of n more that have expired: Manager.Cleanup for ours (hooks
// included, none registered), memstore's own deleteExpired for scs.
func BenchmarkSweep(b *testing.B) {
	for _, n := range sizes() {
		for _, pct := range []int{1, 10} {
			for _, sw := range sweepers {
				b.Run(fmt.Sprintf("live=%s/expired=%d%%/lib=%s", benchkit.SizeName(n), pct, sw.name), func(b *testing.B) {
					s := sw.get(b, n)
					k := n * pct / 100
					live := s.live()
					b.ReportAllocs()
					b.ResetTimer()
					for range b.N {
						b.StopTimer()
						sweepRound++
						if err := s.addExpired(k, sweepRound); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
						got, err := s.sweep()
						if err != nil || got != k {
							b.Fatalf("sweep removed %d (%v), want %d", got, err, k)
						}
					}
					b.StopTimer()
					if got := s.live(); got != live {
						b.Fatalf("%d live after the sweeps, want %d", got, live)
					}
				})
			}
		}
	}
}

// BenchmarkSweepPause serves read-hit requests on another goroutine during
// each sweep of n live and 10% more expired sessions and reports the
// longest and what else ran (see benchkit.SweepPause; RWMutex.RLock waits,
// such as scs's readers', are not in lock-wait-µs). ns/op is not
// meaningful: it covers making the expired sessions, the baseline and the
// sweep (the timer keeps running so that b.N stays small).
func BenchmarkSweepPause(b *testing.B) {
	for _, n := range sizes() {
		for _, sw := range sweepers {
			b.Run(fmt.Sprintf("live=%s/expired=10%%/lib=%s", benchkit.SizeName(n), sw.name), func(b *testing.B) {
				s := sw.get(b, n)
				k := n / 10
				benchkit.SweepPause(b, s.probe, s.cookies,
					func() error {
						sweepRound++
						return s.addExpired(k, sweepRound)
					},
					func() error {
						if got, err := s.sweep(); err != nil || got != k {
							return fmt.Errorf("sweep removed %d (%v), want %d", got, err, k)
						}
						return nil
					})
			})
		}
	}
}
