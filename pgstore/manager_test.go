package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// tracer is a pgx tracer that counts round trips (each query sent alone
// and each batch counts one; statement preparation counts one) and the
// errors the server answered, by SQLSTATE.
type tracer struct {
	trips atomic.Int64
	mu    sync.Mutex
	codes map[string]int
}

func (tr *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	tr.trips.Add(1)
	return ctx
}

func (tr *tracer) TraceQueryEnd(_ context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	tr.note(d.Err)
}

func (tr *tracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	tr.trips.Add(1)
	return ctx
}

func (tr *tracer) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	tr.note(d.Err)
}

func (tr *tracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (tr *tracer) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	tr.trips.Add(1)
	return ctx
}

func (tr *tracer) TracePrepareEnd(_ context.Context, _ *pgx.Conn, d pgx.TracePrepareEndData) {
	tr.note(d.Err)
}

func (tr *tracer) note(err error) {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.codes == nil {
		tr.codes = map[string]int{}
	}
	tr.codes[pe.Code]++
}

// errorCodes returns the SQLSTATEs the server answered and how often.
func (tr *tracer) errorCodes() map[string]int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := map[string]int{}
	for k, v := range tr.codes {
		out[k] = v
	}
	return out
}

// traced returns a pool configuration function that installs tr.
func traced(tr *tracer) func(*pgxpool.Config) {
	return func(c *pgxpool.Config) { c.ConnConfig.Tracer = tr }
}

// hookLog records the endings managers report, by session ID.
type hookLog struct {
	mu     sync.Mutex
	events map[string][]sessions.Event
	by     map[string][]int // which managers reported each
}

func newHookLog() *hookLog {
	return &hookLog{events: map[string][]sessions.Event{}, by: map[string][]int{}}
}

func (l *hookLog) hook(manager int) func(sessions.Event) {
	return func(ev sessions.Event) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.events[ev.SessionID] = append(l.events[ev.SessionID], ev)
		l.by[ev.SessionID] = append(l.by[ev.SessionID], manager)
	}
}

func (l *hookLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// requireOnce checks that every ending was reported once.
func (l *hookLog) requireOnce(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, evs := range l.events {
		require.Len(t, evs, 1, "session %s ended %d times (managers %v)", id, len(evs), l.by[id])
	}
}

// cluster is n managers, each with its own pool (as n processes), on one
// table; their hooks record into log, their pools report to tr.
type cluster struct {
	ms     []*sessions.Manager
	stores []*Store
	pools  []*pgxpool.Pool
	log    *hookLog
	tr     *tracer
	table  string
}

func newCluster(t *testing.T, n int, cfg sessions.Config, opts ...Option) *cluster {
	t.Helper()
	c := &cluster{log: newHookLog(), tr: &tracer{}}
	cfg.Keys = testKeys
	for i := range n {
		p := newPool(t, traced(c.tr))
		if i == 0 {
			c.table = newTable(t, p)
		}
		s := storeOn(t, p, c.table, opts...)
		m, err := sessions.NewManager(cfg, sessions.WithStore(s))
		require.NoError(t, err)
		m.OnTerminate(c.log.hook(i))
		t.Cleanup(func() { _ = m.Close() })
		c.ms = append(c.ms, m)
		c.pools = append(c.pools, p)
		c.stores = append(c.stores, s)
	}
	return c
}

func (c *cluster) close() {
	for _, m := range c.ms {
		_ = m.Close()
	}
}

// storeErrors sums the managers' store errors.
func (c *cluster) storeErrors() uint64 {
	var n uint64
	for _, m := range c.ms {
		n += m.Stats().StoreErrors
	}
	return n
}

// app is an HTTP server with a manager's Middleware in front of a small
// handler set.
type app struct {
	srv    *httptest.Server
	errors atomic.Int64 // calls of the error handler
}

type response struct {
	code    int
	body    string
	cookies []*http.Cookie
}

func (r response) cookie(t *testing.T) *http.Cookie {
	t.Helper()
	for _, c := range r.cookies {
		if c.Name == "session" && c.Value != "" {
			return c
		}
	}
	t.Fatalf("no session cookie in the response (%d %q)", r.code, r.body)
	return nil
}

func (r response) expiresCookie() bool {
	for _, c := range r.cookies {
		if c.Name == "session" && (c.MaxAge < 0 || c.Value == "") {
			return true
		}
	}
	return false
}

// newApp serves m's Middleware.
func newApp(t *testing.T, m *sessions.Manager) *app { return (&app{}).serve(t, m) }

// serve starts a's server with m's Middleware.
func (a *app) serve(t *testing.T, m *sessions.Manager) *app {
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		if _, err := m.Start(w, r, user, map[string]any{"name": user}); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		s, ok := sessions.FromContext(r.Context())
		if !ok {
			_, _ = io.WriteString(w, "anonymous")
			return
		}
		data := s.Data()
		var b strings.Builder
		b.WriteString(s.UserID())
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range data {
				if !yield(k) {
					return
				}
			}
		}) {
			fmt.Fprintf(&b, " %s=%v", k, data[k])
		}
		_, _ = io.WriteString(w, b.String())
	})
	mux.HandleFunc("/set", func(w http.ResponseWriter, r *http.Request) {
		s, ok := sessions.FromContext(r.Context())
		if !ok {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		s.Set(r.URL.Query().Get("k"), r.URL.Query().Get("v"))
		_, _ = io.WriteString(w, "set")
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := m.End(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	a.srv = httptest.NewServer(m.Middleware(mux))
	t.Cleanup(a.srv.Close)
	return a
}

// errorHandler is the manager option that answers store errors with 503
// "store unavailable" and counts them in a.
func (a *app) errorHandler() sessions.Option {
	return sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		a.errors.Add(1)
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
	})
}

// do sends a GET for path with cookie (if not nil) and fails the test on a
// transport error; call it from the test's goroutine only.
func (a *app) do(t *testing.T, path string, cookie *http.Cookie) response {
	t.Helper()
	res, err := a.try(t, path, cookie)
	require.NoError(t, err)
	return res
}

// try is do for any goroutine: it returns the transport error.
func (a *app) try(t *testing.T, path string, cookie *http.Cookie) (response, error) {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, a.srv.URL+path, nil)
	if err != nil {
		return response{}, err
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	res, err := a.srv.Client().Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return response{code: res.StatusCode, body: string(body), cookies: res.Cookies()}, err
}
