package sessions

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

type ctxKey struct{}

// requestState is what the Middleware keeps in a request's context: the
// request's session, which Start and End replace, and what the response's
// headers must say about it.
type requestState struct {
	m     *Manager
	s     atomic.Pointer[Session]
	flags atomic.Uint32 // stateCookieSet, stateAccessed
	from  uint8         // the request header the session was loaded from: fromNone, fromCookie or fromToken
}

// requestState.flags.
const (
	stateCookieSet = 1 << iota // the Manager set or expired the session cookie on the response
	stateAccessed              // the handler asked FromContext
)

// requestState.from.
const (
	fromNone   = iota // no session was loaded
	fromCookie        // from the cookie
	fromToken         // from the token header (see WithTokenHeader)
)

// has reports whether flag is set on st.
func (st *requestState) has(flag uint32) bool { return st.flags.Load()&flag != 0 }

// set sets flag on st; it writes only when the flag is not set yet.
func (st *requestState) set(flag uint32) {
	if !st.has(flag) {
		st.flags.Or(flag)
	}
}

// fromHeader returns the name of the request header the session was
// loaded from; "" when none was.
func (st *requestState) fromHeader() string {
	switch st.from {
	case fromCookie:
		return cookieHeader
	case fromToken:
		return st.m.web.tokenHeader
	}
	return ""
}

// stateContext is the context the Middleware gives a request: its parent
// with the requestState as the value of ctxKey{}, and the ResponseWriter the
// handler writes to. It is context.WithValue, the state and the writer in
// one allocation instead of three, of 96 bytes on 64-bit platforms (a size
// class of the allocator; TestStateContextSize keeps it there).
type stateContext struct {
	context.Context
	st requestState
	w  respWriter
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
	st.set(stateAccessed) // the response depends on the session, or on there being none
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

// Middleware loads the request's session from its signed cookie (or the
// token header, see WithTokenHeader) into the request context (read it with
// FromContext) and records activity on it.
//
// A request with no cookie goes on with no session; nothing is created. A
// cookie that does not verify (forged, tampered, signed by an unknown key,
// malformed, empty, oversized), or that names a session that has ended or
// expired, is expired on the response and the request goes on with no
// session; a cookie that does not verify costs no store access. When the
// store fails, the error handler answers (503 by default), next is not
// called and the cookie is kept.
//
// With Cookie.MaxAge set, a request whose persistent cookie was issued more
// than a tenth of MaxAge ago gets it again, so a browser keeps the cookie
// for as long as the session is in use (see Manager.RememberMe).
//
// Responses follow the caching policy of caching.go: one served with a
// session, or whose handler asked FromContext, varies on Cookie (or the
// token header), and one that sets or expires the cookie is kept out of
// shared caches, whatever Cache-Control the handler set.
//
// With a shared store, the session's changes are saved before the first
// byte of the response leaves, and again after next returns if it changed
// the session after that. A failed save goes to the error handler if nothing
// was written yet, else to the log; a save that finds the session ended (a
// logout elsewhere while the request ran) expires the cookie and gives the
// error handler an error wrapping ErrNotFound (409 by default), and is not
// counted as a store error.
func (m *Manager) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := &stateContext{Context: r.Context()}
		st := &sc.st
		st.m = m
		r = r.WithContext(sc)
		sc.w = respWriter{ResponseWriter: w, st: st, r: r}
		rw := &sc.w
		value, from, ok := m.requestToken(r)
		if ok {
			now := time.Now()
			s, parts, err := m.fromCookie(sc, value, now)
			switch {
			case err == nil:
				st.s.Store(s)
				st.from = fromToken
				if from == cookieHeader {
					st.from = fromCookie
				}
				if from == cookieHeader && m.cookies.stale(parts, now) {
					m.reissue(rw.Header(), st, s)
				}
			case errors.Is(err, errBadCookie):
				m.stats.invalidCookies.Add(1)
				if from == cookieHeader {
					m.sendCookie(rw.Header(), st, m.cookies.expired)
				}
			case errors.Is(err, ErrNotFound):
				if from == cookieHeader {
					m.sendCookie(rw.Header(), st, m.cookies.expired)
				}
			default:
				m.onError(w, r, err)
				return
			}
		}
		next.ServeHTTP(rw, r)
		rw.finish()
	})
}

// cookieHeader is the request header of the session cookie.
const cookieHeader = "Cookie"

// requestToken returns r's session cookie value, or else its token header,
// and which request header it came from.
func (m *Manager) requestToken(r *http.Request) (value, from string, ok bool) {
	if v, ok := readCookie(r, m.cfg.Cookie.Name); ok {
		return v, cookieHeader, true
	}
	if v, ok := m.readToken(r); ok {
		return v, m.web.tokenHeader, true
	}
	return "", "", false
}

// fromCookie returns the live session a cookie value (or header token)
// names, and records activity on it at now. With the session it returns
// the value's clear parts (see parseValue), for the re-issue check; the
// zero valueParts when they could not be read. A value verified before is
// recognised without recomputing the MAC: on the memory store by the
// session it names (remembers), on a shared store by the codec
// (verifiedBefore).
func (m *Manager) fromCookie(ctx context.Context, value string, now time.Time) (*Session, valueParts, error) {
	if m.closed.Load() {
		return nil, valueParts{}, ErrClosed
	}
	var p valueParts
	parsed := false
	if len(value) <= maxCookieLen {
		p, parsed = parseValue(value)
	}
	if m.mem != nil && parsed {
		if s := m.mem.lookup(p.id); s != nil && s.remembers(m.cookies, value) {
			if s.expiredAt(now.UnixNano()) {
				return nil, valueParts{}, ErrNotFound
			}
			s.touchAt(now.UnixNano())
			return s, p, nil
		}
	}
	id := p.id
	if !parsed || !m.cookies.verifiedBefore(value, id) {
		var err error
		if id, err = m.cookies.decode(value); err != nil {
			return nil, valueParts{}, err
		}
		m.cookies.noteVerified(value, id)
	}
	s, err := m.b.get(ctx, id, true, now)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, valueParts{}, err
	case err != nil:
		return nil, valueParts{}, &sessionError{tag: logID(id.String()), err: m.storeErr("load", err)}
	}
	if m.mem != nil {
		s.remember(m.cookies, value)
	}
	return s, p, nil
}

// sendCookie sets line as the response's Set-Cookie of the session
// cookie, under the caching policy, and records on st (if any) that the
// response carries it.
func (m *Manager) sendCookie(h http.Header, st *requestState, line string) {
	setCookie(h, m.cfg.Cookie.Name, line)
	if st != nil {
		st.set(stateCookieSet)
	}
}

// reissue sends s's persistent cookie again, newly signed, so that the
// browser keeps it for another Cookie.MaxAge.
func (m *Manager) reissue(h http.Header, st *requestState, s *Session) {
	value, err := m.cookies.encode(s.id)
	if err != nil {
		m.log.Warn("sessions: re-issuing a persistent cookie failed", "session", logID(s.ID()), "err", err)
		return
	}
	if m.mem != nil {
		s.rememberIssued(m.cookies, value)
	}
	m.sendCookie(h, st, m.cookies.cookie(value).String())
}

// Start logs a user in: it creates a session for userID holding a copy of
// data, as Create does, and sets its cookie on w. It always issues a new
// session ID: a session the request already carried (through the
// Middleware, its cookie or its token header) is ended first
// (ReasonRenewed), and its data is not carried over unless the caller
// passes it in data. After Start, FromContext(r.Context()) returns the new
// session. The session records the request's User-Agent and RemoteAddr.
//
// The cookie is persistent for Cookie.MaxAge when that is set (call
// RememberMe(w, r, false) after Start for a browser-session cookie), else
// a browser-session cookie. With WithTokenHeader, the response also
// carries the token in that header (except Authorization).
//
// Outside the Middleware Start still works, but FromContext cannot see the
// new session; the manager says so once in the log. A Secure cookie set on
// a plain-http request from another host is also said once: browsers drop
// it.
func (m *Manager) Start(w http.ResponseWriter, r *http.Request, userID string, data map[string]any) (*Session, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	st := m.state(r)
	if st == nil {
		m.warnOutside("Start")
	}
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
	m.warnInsecure(r)
	h := w.Header()
	m.sendCookie(h, st, m.cookies.cookie(value).String())
	if name := m.web.tokenHeader; name != "" && name != "Authorization" {
		h.Set(name, value)
	}
	if st != nil {
		st.s.Store(s)
	}
	return s, nil
}

// End logs the request's user out: it ends the request's session
// (ReasonLogout) and expires its cookie on w. A request with no session,
// or whose session has ended already, is not an error. When the store
// fails, End returns the error and leaves both the session and the cookie
// as they are, so that the user can try again: it never tells the browser
// it is logged out while the session lives on. After a successful End,
// FromContext(r.Context()) finds no session.
func (m *Manager) End(w http.ResponseWriter, r *http.Request) error {
	if m.closed.Load() {
		return ErrClosed
	}
	st := m.state(r)
	if st == nil {
		m.warnOutside("End")
	}
	if id, ok := m.requestSession(r, st); ok {
		if err := m.end(r.Context(), id, ReasonLogout); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	if st != nil {
		st.s.Store(nil)
	}
	m.sendCookie(w.Header(), st, m.cookies.expired)
	return nil
}

// RememberMe chooses, for the request's session, between a persistent
// cookie (remember: it lasts Cookie.MaxAge after it was last issued, and is
// re-issued while the session is in use) and a browser-session cookie (the
// browser drops it when it closes), and sets the cookie again on w. Call it
// after Start, or on any later request ("keep me signed in on this
// device"). The choice is signed into the cookie, so it holds for the
// session's life; a new login (Start) begins with the default again:
// persistent when Cookie.MaxAge is set, else browser-session.
//
// Remembering needs Cookie.MaxAge: without it RememberMe(w, r, true)
// returns an error wrapping ErrInvalidConfig. A request with no live
// session is ErrNotFound.
//
// How the limits combine: the server ends the session IdleTimeout after
// its last request, or AbsoluteTimeout after it was created, whichever
// comes first, whatever the cookie. The browser drops a persistent cookie
// MaxAge after it was last issued (Start, RememberMe, or a request more
// than MaxAge/10 after the last issue), and a browser-session cookie when
// it closes. The user stays signed in while both hold: with MaxAge at
// least IdleTimeout, a persistent cookie never ends a session the server
// would keep, and the session ends exactly as the server decides.
func (m *Manager) RememberMe(w http.ResponseWriter, r *http.Request, remember bool) error {
	if m.closed.Load() {
		return ErrClosed
	}
	if remember && m.cfg.Cookie.MaxAge <= 0 {
		return fmt.Errorf("%w: Cookie.MaxAge: remembering a login needs a persistent cookie lifetime", ErrInvalidConfig)
	}
	st := m.state(r)
	var s *Session
	if st != nil {
		s = st.s.Load()
	} else if id, ok := m.requestSession(r, nil); ok {
		var err error
		if s, err = m.b.get(r.Context(), id, false, time.Now()); err != nil && !errors.Is(err, ErrNotFound) {
			return m.storeErr("get", err)
		}
	}
	if s == nil {
		return ErrNotFound
	}
	value, err := m.cookies.encodeFor(s.id, !remember)
	if err != nil {
		return err
	}
	if m.mem != nil {
		s.rememberIssued(m.cookies, value)
	}
	m.sendCookie(w.Header(), st, m.cookies.cookie(value).String())
	return nil
}

// Token returns a signed token for s: what its cookie carries, for a
// client that sends it in the WithTokenHeader header (an API or mobile
// client that logged in through Create or Start). The token is a bearer
// credential: give it only to the session's own client.
func (m *Manager) Token(s *Session) (string, error) {
	if s == nil {
		return "", ErrNotFound
	}
	return m.cookies.encode(s.id)
}

// requestSession returns the ID of the session r carries: the one the
// Middleware found, or else the one its cookie or token header names if it
// verifies.
func (m *Manager) requestSession(r *http.Request, st *requestState) (uuid.UUID, bool) {
	if st != nil {
		if s := st.s.Load(); s != nil {
			return s.id, true
		}
		return uuid.UUID{}, false
	}
	if value, _, ok := m.requestToken(r); ok {
		if id, err := m.cookies.decode(value); err == nil {
			return id, true
		}
	}
	return uuid.UUID{}, false
}

// errSaveFailed is what a handler's writes return after a failed save made
// the error handler answer instead.
var errSaveFailed = errors.New("sessions: session save failed; the error handler answered")

// respWriter is the ResponseWriter the Middleware gives next. Before the
// response's first header or byte it saves the session (shared stores) and
// applies the caching policy.
type respWriter struct {
	http.ResponseWriter
	st      *requestState
	r       *http.Request
	started bool      // the response has begun (or the error handler answered)
	failed  bool      // a save failed before anything was written
	vary    [1]string // backs a Vary header the policy adds alone
}

// begin saves and sets the policy's headers before the first header or
// byte; it reports whether the handler's output may go on.
func (w *respWriter) begin() bool {
	if w.started {
		return !w.failed
	}
	w.started = true
	if s := w.st.s.Load(); s != nil && s.shared() {
		if err := w.save(s); err != nil {
			w.failed = true
			w.st.m.saveFailed(w.ResponseWriter, w.r, w.st, s, err)
			return false
		}
	}
	w.headers()
	return true
}

// headers applies the caching policy to the response's header.
func (w *respWriter) headers() {
	st := w.st
	h := w.ResponseWriter.Header()
	if st.has(stateCookieSet) {
		addVary(h, cookieHeader, &w.vary)
		privateCache(h)
	}
	switch {
	case st.from != fromNone:
		addVary(h, st.fromHeader(), &w.vary)
	case st.has(stateAccessed):
		addVary(h, cookieHeader, &w.vary)
		if name := st.m.web.tokenHeader; name != "" {
			addVary(h, name, &w.vary)
		}
	}
}

func (w *respWriter) save(s *Session) error {
	return s.Save(context.WithoutCancel(w.r.Context()))
}

// saveFailed answers a request whose save before the response failed.
func (m *Manager) saveFailed(w http.ResponseWriter, r *http.Request, st *requestState, s *Session, err error) {
	tag := logID(s.ID())
	if errors.Is(err, ErrNotFound) {
		// A logout (or termination) elsewhere while the request ran: the
		// user is logged out, not the store down.
		st.s.CompareAndSwap(s, nil)
		if st.from != fromToken { // a token client has no cookie to drop
			m.sendCookie(w.Header(), st, m.cookies.expired)
		}
		m.onError(w, r, &sessionError{tag: tag, err: fmt.Errorf("sessions: the session ended while the request ran: %w", err)})
		return
	}
	if !errors.Is(err, ErrUnsupportedValue) {
		err = m.storeErr("save", err)
	}
	m.onError(w, r, &sessionError{tag: tag, err: err})
}

// finish saves what the handler changed after the response began, or all
// of it if the handler wrote nothing, and sets the policy's headers of a
// response the handler left empty.
func (w *respWriter) finish() {
	if w.failed {
		return
	}
	if !w.started {
		w.begin()
		return
	}
	s := w.st.s.Load()
	if s == nil || !s.shared() {
		return
	}
	if err := w.save(s); err != nil {
		m := w.st.m
		if errors.Is(err, ErrNotFound) {
			m.log.Info("sessions: the session ended while the request ran; changes made after the response began were not saved", "session", logID(s.ID()))
			return
		}
		if !errors.Is(err, ErrUnsupportedValue) {
			err = m.storeErr("save", err)
		}
		m.log.Error("sessions: saving session after the response began failed", "session", logID(s.ID()), "err", err)
	}
}

func (w *respWriter) WriteHeader(code int) {
	if w.begin() {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *respWriter) Write(b []byte) (int, error) {
	if !w.begin() {
		return 0, errSaveFailed
	}
	return w.ResponseWriter.Write(b)
}

// WriteString implements io.StringWriter, so that io.WriteString through
// the Middleware writes s as the server's writer does, without copying it
// to a []byte first.
func (w *respWriter) WriteString(s string) (int, error) {
	if !w.begin() {
		return 0, errSaveFailed
	}
	return io.WriteString(w.ResponseWriter, s)
}

// ReadFrom implements io.ReaderFrom, so that http.ServeContent through the
// Middleware can still use the server's sendfile path.
func (w *respWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.begin() {
		return 0, errSaveFailed
	}
	return io.Copy(w.ResponseWriter, src)
}

// Flush implements http.Flusher.
func (w *respWriter) Flush() {
	if w.begin() {
		_ = http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// Hijack implements http.Hijacker.
func (w *respWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !w.begin() {
		return nil, nil, errSaveFailed
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
