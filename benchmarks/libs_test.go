package benchmarks

// One adapter per library: the same application handlers written against
// each library's API, and the population each needs.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	redigo "github.com/gomodule/redigo/redis"
	gsessions "github.com/gorilla/sessions"
	goredis "github.com/redis/go-redis/v9"

	"github.com/tokyopredictor/sessions"
	"github.com/tokyopredictor/sessions/internal/benchkit"
	oursredis "github.com/tokyopredictor/sessions/redisstore"
)

// The workloads. Each handler answers 200 when it found what the workload
// expects, and another status otherwise, so that a benchmark fails rather
// than measures the wrong path.
const (
	opReadHit   = "read-hit"      // valid cookie of a live session; read a value
	opReadLean  = "read-hit-lean" // read-hit through the lean harness (runLean)
	opWriteHit  = "write-hit"     // the same; set a value
	opMiss      = "miss"          // no cookie
	opBadCookie = "bad-cookie"    // a cookie the library must not accept
	opStart     = "start"         // log in from a request with no session
	opEnd       = "end"           // log out a live session
)

var allOps = []string{opReadHit, opReadLean, opWriteHit, opMiss, opBadCookie, opStart, opEnd}

// instance is a library set up with a population of live sessions.
type instance struct {
	cookies []string // cookies of the live sessions, in random order
	forged  []string // cookies the library must not accept
	handler func(op string) http.Handler
	login   func(user string) (string, error) // a new live session's cookie
	logout  func(h http.Header) error         // end the session a start response set
	rt      *atomic.Int64                     // store round trips, when counted
	close   func()

	mgr *sessions.Manager     // this library's manager, for sweeps
	mem *sessions.MemoryStore // its memory store
	scs *scsPopulation        // an scs population (cache entry)
}

// serve makes each app a handler through the library's middleware wrap and
// sets in.handler, and in.logout to end a session through opEnd.
func (in *instance) serve(apps map[string]http.HandlerFunc, wrap func(http.Handler) http.Handler) {
	handlers := map[string]http.Handler{}
	for op, app := range apps {
		handlers[op] = wrap(app)
	}
	in.handler = func(op string) http.Handler { return handlers[op] }
	in.logout = func(h http.Header) error {
		c, err := benchkit.SetCookie(h)
		if err != nil {
			return err
		}
		return benchkit.StatusErr(benchkit.Serve(handlers[opEnd], benchkit.NewRecorder(), benchkit.NewRequest(c)))
	}
}

// payload is the session data of issue 4's memory target.
func payload(user string) map[string]any {
	return map[string]any{"user_id": user, "saldo": 1000}
}

func newSaldo(r *http.Request) int { return 1000 + int(r.ContentLength) } // a computed value, as an app would set

func fail(w http.ResponseWriter, code int, msg string) { http.Error(w, msg, code) }

// ---- bare handler ------------------------------------------------------

func bareInstance() *instance {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(okBody) })
	ck := "session=MTc2NDI2NzAwMHxBQUFBQUFBQUFBQUFBQUFBQUFBQUFBPT18AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	return &instance{
		cookies: []string{ck}, forged: []string{ck},
		handler: func(string) http.Handler { return h },
		login:   func(string) (string, error) { return ck, nil },
		logout:  func(http.Header) error { return nil },
	}
}

// ---- this library ------------------------------------------------------

func oursConfig() sessions.Config {
	return sessions.Config{DisableAutoCleanup: true, Keys: [][]byte{hashKey}}
}

// oursInstance sets up a Manager on store (the memory store when nil) with
// n live sessions made by Manager.Start.
func oursInstance(n int, store sessions.Store, rt *atomic.Int64, closeStore func()) (*instance, error) {
	var opts []sessions.Option
	if store != nil {
		opts = append(opts, sessions.WithStore(store))
	}
	m, err := sessions.NewManager(oursConfig(), opts...)
	if err != nil {
		return nil, err
	}
	mem, _ := store.(*sessions.MemoryStore)
	in := &instance{rt: rt, mgr: m, mem: mem, close: func() {
		_ = m.Close()
		if closeStore != nil {
			closeStore()
		}
	}}
	in.login = func(user string) (string, error) {
		w := benchkit.NewRecorder()
		if _, err := m.Start(w, benchkit.NewRequest(""), user, payload(user)); err != nil {
			return "", err
		}
		return benchkit.SetCookie(w.Header())
	}
	apps := map[string]http.HandlerFunc{
		opReadHit: func(w http.ResponseWriter, r *http.Request) {
			s, ok := sessions.FromContext(r.Context())
			if !ok {
				fail(w, http.StatusNotFound, "no session")
				return
			}
			if _, ok := s.Get("user_id"); !ok {
				fail(w, http.StatusInternalServerError, "no user_id")
				return
			}
			_, _ = w.Write(okBody)
		},
		opWriteHit: func(w http.ResponseWriter, r *http.Request) {
			s, ok := sessions.FromContext(r.Context())
			if !ok {
				fail(w, http.StatusNotFound, "no session")
				return
			}
			s.Set("saldo", newSaldo(r))
			_, _ = w.Write(okBody)
		},
		opStart: func(w http.ResponseWriter, r *http.Request) {
			user := r.Header["X-User"][0]
			if _, err := m.Start(w, r, user, payload(user)); err != nil {
				fail(w, http.StatusInternalServerError, err.Error())
				return
			}
			_, _ = w.Write(okBody)
		},
		opEnd: func(w http.ResponseWriter, r *http.Request) {
			if _, ok := sessions.FromContext(r.Context()); !ok {
				fail(w, http.StatusNotFound, "no session")
				return
			}
			if err := m.End(w, r); err != nil {
				fail(w, http.StatusInternalServerError, err.Error())
				return
			}
			_, _ = w.Write(okBody)
		},
	}
	noSession := func(w http.ResponseWriter, r *http.Request) {
		if _, ok := sessions.FromContext(r.Context()); ok {
			fail(w, http.StatusInternalServerError, "unexpected session")
			return
		}
		_, _ = w.Write(okBody)
	}
	apps[opMiss], apps[opBadCookie] = noSession, noSession
	in.serve(apps, m.Middleware)

	in.cookies = make([]string, n)
	if err := fill(n, func(i int) (err error) {
		in.cookies[i], err = in.login(benchkit.UserName(i))
		return err
	}); err != nil {
		in.close()
		return nil, err
	}
	shuffle(in.cookies)
	in.forged = make([]string, min(n, 1024))
	for i := range in.forged {
		if in.forged[i], err = tamper(in.cookies[i]); err != nil {
			in.close()
			return nil, err
		}
	}
	return in, nil
}

// ---- scs v2 -------------------------------------------------------------

// scsLogin makes a session with the payload through sm, as a login would,
// and returns its cookie.
func scsLogin(sm *scs.SessionManager, user string) (string, error) {
	ctx, err := sm.Load(context.Background(), "")
	if err != nil {
		return "", err
	}
	sm.Put(ctx, "user_id", user)
	sm.Put(ctx, "saldo", 1000)
	token, _, err := sm.Commit(ctx)
	if err != nil {
		return "", err
	}
	return sm.Cookie.Name + "=" + token, nil
}

// scsPopulation is a store holding n sessions made by scs (IdleTimeout
// unset), with their cookies in random order.
type scsPopulation struct {
	store   scs.Store
	cookies []string
}

func newSCSPopulation(store scs.Store, n int) (*scsPopulation, error) {
	sm := scs.New()
	sm.Store = store
	p := &scsPopulation{store: store, cookies: make([]string, n)}
	if err := fill(n, func(i int) (err error) {
		p.cookies[i], err = scsLogin(sm, benchkit.UserName(i))
		return err
	}); err != nil {
		return nil, err
	}
	shuffle(p.cookies)
	return p, nil
}

// scsInstance sets up scs with IdleTimeout idle on the population's store.
func scsInstance(p *scsPopulation, idle time.Duration, rt *atomic.Int64) *instance {
	sm := scs.New()
	sm.Store = p.store
	sm.IdleTimeout = idle
	in := &instance{cookies: p.cookies, rt: rt}
	in.login = func(user string) (string, error) { return scsLogin(sm, user) }
	apps := map[string]http.HandlerFunc{
		opReadHit: func(w http.ResponseWriter, r *http.Request) {
			if sm.GetString(r.Context(), "user_id") == "" {
				fail(w, http.StatusNotFound, "no session")
				return
			}
			_, _ = w.Write(okBody)
		},
		opWriteHit: func(w http.ResponseWriter, r *http.Request) {
			if !sm.Exists(r.Context(), "user_id") {
				fail(w, http.StatusNotFound, "no session")
				return
			}
			sm.Put(r.Context(), "saldo", newSaldo(r))
			_, _ = w.Write(okBody)
		},
		opStart: func(w http.ResponseWriter, r *http.Request) {
			user := r.Header["X-User"][0]
			if err := sm.RenewToken(r.Context()); err != nil {
				fail(w, http.StatusInternalServerError, err.Error())
				return
			}
			sm.Put(r.Context(), "user_id", user)
			sm.Put(r.Context(), "saldo", 1000)
			_, _ = w.Write(okBody)
		},
		opEnd: func(w http.ResponseWriter, r *http.Request) {
			if !sm.Exists(r.Context(), "user_id") {
				fail(w, http.StatusNotFound, "no session")
				return
			}
			if err := sm.Destroy(r.Context()); err != nil {
				fail(w, http.StatusInternalServerError, err.Error())
				return
			}
			_, _ = w.Write(okBody)
		},
	}
	noSession := func(w http.ResponseWriter, r *http.Request) {
		if sm.Exists(r.Context(), "user_id") {
			fail(w, http.StatusInternalServerError, "unexpected session")
			return
		}
		_, _ = w.Write(okBody)
	}
	apps[opMiss], apps[opBadCookie] = noSession, noSession
	in.serve(apps, sm.LoadAndSave)
	// scs tokens are not signed: a forged cookie is a well-formed token the
	// store does not know.
	in.forged = make([]string, 64)
	for i := range in.forged {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		in.forged[i] = sm.Cookie.Name + "=" + base64.RawURLEncoding.EncodeToString(b)
	}
	return in
}

// scsMemPopulation returns the process's scs memstore population of n
// sessions (no cleanup goroutine: sweeps are run by BenchmarkSweep).
func scsMemPopulation(b *testing.B, n int) *scsPopulation {
	b.Helper()
	return cached(b, "scs-memstore/"+benchkit.SizeName(n), func() (*instance, error) {
		p, err := newSCSPopulation(memstore.NewWithCleanupInterval(0), n)
		if err != nil {
			return nil, err
		}
		return &instance{scs: p}, nil
	}).scs
}

// ---- gorilla/sessions CookieStore --------------------------------------

func gorillaInstance(n int) (*instance, error) {
	const name = "session"
	store := gsessions.NewCookieStore(hashKey) // signed, not encrypted, like ours
	store.Options = &gsessions.Options{Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode}
	in := &instance{logout: func(http.Header) error { return nil }} // nothing server-side
	in.login = func(user string) (string, error) {
		r := benchkit.NewRequest("")
		s, err := store.New(r, name)
		if err != nil {
			return "", err
		}
		s.Values["user_id"], s.Values["saldo"] = user, 1000
		w := benchkit.NewRecorder()
		if err := s.Save(r, w); err != nil {
			return "", err
		}
		return benchkit.SetCookie(w.Header())
	}
	apps := map[string]http.HandlerFunc{
		opReadHit: func(w http.ResponseWriter, r *http.Request) {
			s, err := store.Get(r, name)
			if err != nil || s.IsNew {
				fail(w, http.StatusNotFound, "no session")
				return
			}
			if s.Values["user_id"] == nil {
				fail(w, http.StatusInternalServerError, "no user_id")
				return
			}
			_, _ = w.Write(okBody)
		},
		opWriteHit: func(w http.ResponseWriter, r *http.Request) {
			s, err := store.Get(r, name)
			if err != nil || s.IsNew {
				fail(w, http.StatusNotFound, "no session")
				return
			}
			s.Values["saldo"] = newSaldo(r)
			if err := s.Save(r, w); err != nil {
				fail(w, http.StatusInternalServerError, err.Error())
				return
			}
			_, _ = w.Write(okBody)
		},
		opStart: func(w http.ResponseWriter, r *http.Request) {
			s, _ := store.Get(r, name) // a new session when there is none
			s.Values["user_id"], s.Values["saldo"] = r.Header["X-User"][0], 1000
			if err := s.Save(r, w); err != nil {
				fail(w, http.StatusInternalServerError, err.Error())
				return
			}
			_, _ = w.Write(okBody)
		},
		opEnd: func(w http.ResponseWriter, r *http.Request) {
			s, err := store.Get(r, name)
			if err != nil || s.IsNew {
				fail(w, http.StatusNotFound, "no session")
				return
			}
			s.Options.MaxAge = -1
			if err := s.Save(r, w); err != nil {
				fail(w, http.StatusInternalServerError, err.Error())
				return
			}
			_, _ = w.Write(okBody)
		},
	}
	noSession := func(w http.ResponseWriter, r *http.Request) {
		if s, err := store.Get(r, name); err == nil && !s.IsNew {
			fail(w, http.StatusInternalServerError, "unexpected session")
			return
		}
		_, _ = w.Write(okBody)
	}
	apps[opMiss], apps[opBadCookie] = noSession, noSession
	in.handler = func(op string) http.Handler { return apps[op] }
	in.cookies = make([]string, n)
	if err := fill(n, func(i int) (err error) {
		in.cookies[i], err = in.login(benchkit.UserName(i))
		return err
	}); err != nil {
		return nil, err
	}
	shuffle(in.cookies)
	in.forged = make([]string, min(n, 1024))
	for i := range in.forged {
		var err error
		if in.forged[i], err = tamper(in.cookies[i]); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// ---- Redis --------------------------------------------------------------

const redisHint = `redis-server --port 6379 --save "" --appendonly no --daemonize yes`

func redisAddr() string {
	if a := os.Getenv("SESSIONS_BENCH_REDIS"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// requireRedis skips b when no Redis answers, or fails it in CI.
func requireRedis(b *testing.B) {
	b.Helper()
	c, err := net.DialTimeout("tcp", redisAddr(), time.Second)
	if err != nil {
		if os.Getenv("CI") != "" {
			b.Fatalf("no Redis at %s: %v", redisAddr(), err)
		}
		b.Skipf("no Redis at %s (%v); start one with: %s", redisAddr(), err, redisHint)
	}
	_ = c.Close()
}

// uniquePrefix returns a key prefix no other run uses.
func uniquePrefix(lib string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("bench:%s:%x:", lib, b)
}

// deleteKeys removes every key under prefix.
func deleteKeys(c goredis.UniversalClient, prefix string) error {
	ctx := context.Background()
	var keys []string
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				return err
			}
			keys = keys[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(keys) > 0 {
		return c.Del(ctx, keys...).Err()
	}
	return nil
}

// rtHook counts go-redis round trips: one per command or pipeline.
type rtHook struct{ n *atomic.Int64 }

func (h rtHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (h rtHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h rtHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

func newGoRedis(rt *atomic.Int64) goredis.UniversalClient {
	c := goredis.NewClient(&goredis.Options{Addr: redisAddr()})
	if rt != nil {
		c.AddHook(rtHook{rt})
	}
	return c
}

func oursRedisInstance(n int) (*instance, error) {
	rt := new(atomic.Int64)
	c := newGoRedis(rt)
	prefix := uniquePrefix("ours")
	st, err := oursredis.New(c, oursredis.WithPrefix(prefix))
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return oursInstance(n, st, rt, func() {
		_ = deleteKeys(c, prefix)
		_ = c.Close()
	})
}

// rtConn counts redigo round trips: a Do or Flush that sends something.
type rtConn struct {
	redigo.Conn
	n       *atomic.Int64
	pending int
}

func (c *rtConn) Send(cmd string, args ...any) error {
	c.pending++
	return c.Conn.Send(cmd, args...)
}

func (c *rtConn) Flush() error {
	if c.pending > 0 {
		c.n.Add(1)
		c.pending = 0
	}
	return c.Conn.Flush()
}

func (c *rtConn) Do(cmd string, args ...any) (any, error) {
	if cmd != "" || c.pending > 0 {
		c.n.Add(1)
		c.pending = 0
	}
	return c.Conn.Do(cmd, args...)
}

func scsRedisPool(rt *atomic.Int64) *redigo.Pool {
	return &redigo.Pool{
		MaxIdle: 64,
		Dial: func() (redigo.Conn, error) {
			c, err := redigo.Dial("tcp", redisAddr())
			if err != nil {
				return nil, err
			}
			return &rtConn{Conn: c, n: rt}, nil
		},
	}
}

// scsRedisInstance sets up scs on redisstore with n sessions; idle is its
// IdleTimeout.
func scsRedisInstance(n int, idle time.Duration) (*instance, error) {
	rt := new(atomic.Int64)
	pool := scsRedisPool(rt)
	prefix := uniquePrefix("scs")
	p, err := newSCSPopulation(redisstore.NewWithPrefix(pool, prefix), n)
	if err != nil {
		_ = pool.Close()
		return nil, err
	}
	in := scsInstance(p, idle, rt)
	in.close = func() {
		c := newGoRedis(nil)
		_ = deleteKeys(c, prefix)
		_ = c.Close()
		_ = pool.Close()
	}
	return in, nil
}
