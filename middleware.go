package sessions

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

type ctxKey struct{}

// requestState is what the Middleware keeps in a request's context: the
// request's session, which Start and End replace.
type requestState struct {
	m *Manager
	s atomic.Pointer[Session]
}

// stateContext is the context the Middleware gives a request: its parent
// with the requestState as the value of ctxKey{}. It is context.WithValue
// and the state in one allocation instead of two.
type stateContext struct {
	context.Context
	st requestState
}

func (c *stateContext) Value(key any) any {
	if key == (ctxKey{}) {
		return &c.st
	}
	return c.Context.Value(key)
}

// FromContext returns the session of the request whose context ctx is, as
// the Middleware found it or Start and End have since left it.
func FromContext(ctx context.Context) (*Session, bool) {
	st, _ := ctx.Value(ctxKey{}).(*requestState)
	if st == nil {
		return nil, false
	}
	s := st.s.Load()
	return s, s != nil
}

// state returns r's requestState if this manager's Middleware made it.
func (m *Manager) state(r *http.Request) *requestState {
	st, _ := r.Context().Value(ctxKey{}).(*requestState)
	if st == nil || st.m != m {
		return nil
	}
	return st
}

// Middleware loads the request's session from its signed cookie into the
// request context (read it with FromContext) and records activity on it.
//
// A request with no cookie goes on with no session; nothing is created. A
// cookie that does not verify (forged, tampered, signed by an unknown key,
// malformed, empty, oversized), or that names a session that has ended or
// expired, is expired on the response and the request goes on with no
// session; a cookie that does not verify costs no store access. When the
// store fails, the error handler answers (503 by default), next is not
// called and the cookie is kept.
//
// With a shared store, the session's changes are saved before the first
// byte of the response leaves, and again after next returns if it changed
// the session after that. A failed save goes to the error handler if nothing
// was written yet, else to the log.
func (m *Manager) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := &stateContext{Context: r.Context()}
		st := &sc.st
		st.m = m
		if value, ok := readCookie(r, m.cfg.Cookie.Name); ok {
			s, err := m.fromCookie(r.Context(), value)
			switch {
			case err == nil:
				st.s.Store(s)
			case errors.Is(err, errBadCookie):
				m.stats.invalidCookies.Add(1)
				m.cookies.expire(w)
			case errors.Is(err, ErrNotFound):
				m.cookies.expire(w)
			default:
				m.onError(w, r, err)
				return
			}
		}
		r = r.WithContext(sc)
		if m.mem != nil {
			next.ServeHTTP(w, r)
			return
		}
		sw := &saveWriter{ResponseWriter: w, st: st, r: r}
		next.ServeHTTP(sw, r)
		sw.finish()
	})
}

// fromCookie returns the live session a cookie value names and records
// activity on it. On the memory store a value that verified before is
// recognised without recomputing the MAC.
func (m *Manager) fromCookie(ctx context.Context, value string) (*Session, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	now := time.Now()
	if m.mem != nil && len(value) <= maxCookieLen {
		if id, ok := unverified(value); ok {
			if s := m.mem.lookup(id); s != nil && s.remembers(m.cookies, value) {
				if s.expiredAt(now.UnixNano()) {
					return nil, ErrNotFound
				}
				s.touchAt(now.UnixNano())
				return s, nil
			}
		}
	}
	id, err := m.cookies.decode(value)
	if err != nil {
		return nil, err
	}
	s, err := m.b.get(ctx, id, true, now)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, err
	case err != nil:
		return nil, m.storeErr("load", err)
	}
	if m.mem != nil {
		s.remember(m.cookies, value)
	}
	return s, nil
}

// Start logs a user in: it creates a session for userID holding a copy of
// data, as Create does, and sets its cookie on w. It always issues a new
// session ID: a session the request already carried (through the
// Middleware or its cookie) is ended first (ReasonRenewed), and its data is
// not carried over unless the caller passes it in data. After Start,
// FromContext(r.Context()) returns the new session. The session records the
// request's User-Agent and RemoteAddr.
func (m *Manager) Start(w http.ResponseWriter, r *http.Request, userID string, data map[string]any) (*Session, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	st := m.state(r)
	if id, ok := m.requestSession(r, st); ok {
		if err := m.end(r.Context(), id, ReasonRenewed); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	s, err := m.create(r.Context(), userID, data, &clientInfo{userAgent: r.UserAgent(), remoteAddr: r.RemoteAddr})
	if err != nil {
		return nil, err
	}
	value, err := m.cookies.encode(s.id)
	if err != nil {
		_ = m.end(r.Context(), s.id, ReasonTerminated)
		return nil, err
	}
	if m.mem != nil {
		s.remember(m.cookies, value)
	}
	noCache(w)
	http.SetCookie(w, m.cookies.cookie(value))
	if st != nil {
		st.s.Store(s)
	}
	return s, nil
}

// End logs the request's user out: it ends the request's session
// (ReasonLogout) and expires its cookie on w. A request with no session is
// not an error. After End, FromContext(r.Context()) finds no session.
func (m *Manager) End(w http.ResponseWriter, r *http.Request) error {
	if m.closed.Load() {
		return ErrClosed
	}
	st := m.state(r)
	id, ok := m.requestSession(r, st)
	if st != nil {
		st.s.Store(nil)
	}
	noCache(w)
	m.cookies.expire(w)
	if !ok {
		return nil
	}
	if err := m.end(r.Context(), id, ReasonLogout); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// requestSession returns the ID of the session r carries: the one the
// Middleware found, or else the one its cookie names if the cookie verifies.
func (m *Manager) requestSession(r *http.Request, st *requestState) (uuid.UUID, bool) {
	if st != nil {
		if s := st.s.Load(); s != nil {
			return s.id, true
		}
		return uuid.UUID{}, false
	}
	if value, ok := readCookie(r, m.cfg.Cookie.Name); ok {
		if id, err := m.cookies.decode(value); err == nil {
			return id, true
		}
	}
	return uuid.UUID{}, false
}

// noCache keeps shared caches from storing a response that sets a session
// cookie.
func noCache(w http.ResponseWriter) {
	h := w.Header()
	h.Add("Vary", "Cookie")
	h.Set("Cache-Control", `no-cache="Set-Cookie"`)
}

// errSaveFailed is what a handler's writes return after a failed save made
// the error handler answer instead.
var errSaveFailed = errors.New("sessions: session save failed; the error handler answered")

// saveWriter saves the request's session before the response's first byte
// leaves (shared stores only).
type saveWriter struct {
	http.ResponseWriter
	st      *requestState
	r       *http.Request
	started bool // the response has begun (or the error handler answered)
	failed  bool // a save failed before anything was written
}

// begin saves before the first header or byte; it reports whether the
// handler's output may go on.
func (w *saveWriter) begin() bool {
	if !w.started {
		w.started = true
		if err := w.save(); err != nil {
			w.failed = true
			w.st.m.onError(w.ResponseWriter, w.r, err)
		}
	}
	return !w.failed
}

func (w *saveWriter) save() error {
	s := w.st.s.Load()
	if s == nil {
		return nil
	}
	return s.Save(context.WithoutCancel(w.r.Context()))
}

// finish saves what the handler changed after the response began, or all
// of it if the handler wrote nothing.
func (w *saveWriter) finish() {
	if w.failed {
		return
	}
	if !w.started {
		w.begin()
		return
	}
	if err := w.save(); err != nil {
		w.st.m.log.Error("sessions: saving session after the response began failed", "err", err)
	}
}

func (w *saveWriter) WriteHeader(code int) {
	if w.begin() {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *saveWriter) Write(b []byte) (int, error) {
	if !w.begin() {
		return 0, errSaveFailed
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher.
func (w *saveWriter) Flush() {
	if w.begin() {
		_ = http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// Hijack implements http.Hijacker.
func (w *saveWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !w.begin() {
		return nil, nil, errSaveFailed
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *saveWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
