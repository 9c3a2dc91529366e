package sessions

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"sync/atomic"
)

// webOptions are the Options of the HTTP side.
type webOptions struct {
	tokenHeader string // canonical header name; "" → cookies only
}

// webState is what the Manager keeps for the HTTP side.
type webState struct {
	webOptions
	warnedOutside  atomic.Bool // Start or End on a request the Middleware did not see
	warnedInsecure atomic.Bool // a Secure cookie sent over plain http
}

// WithTokenHeader lets API and mobile clients send the session token in
// the request header name instead of the cookie. The token is the cookie's
// signed value, verified the same way: a token that does not verify is "no
// session" and costs no store access. With "Authorization" the header reads
// "Authorization: Bearer <token>"; with any other name it is the token
// alone ("X-Session-Token: <token>"). A request that carries the cookie
// uses the cookie.
//
// Start gives the client its token in the response header of the same
// name (except Authorization: there, send Manager.Token(s) in the body).
// Responses served with a session loaded from the header vary on it.
func WithTokenHeader(name string) Option {
	return func(o *options) { o.web.tokenHeader = textproto.CanonicalMIMEHeaderKey(name) }
}

// readToken returns the session token of r's token header, if any.
func (m *Manager) readToken(r *http.Request) (string, bool) {
	name := m.web.tokenHeader
	if name == "" {
		return "", false
	}
	vs := r.Header[name]
	if len(vs) == 0 {
		return "", false
	}
	v := strings.TrimSpace(vs[0])
	if name == "Authorization" {
		scheme, tok, ok := strings.Cut(v, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", false // another scheme is not ours
		}
		v = strings.TrimSpace(tok)
	}
	return v, true
}

// DefaultErrorHandler is what the Middleware does with an error unless
// WithErrorHandler replaces it.
//
// When the request's session ended while the request ran (a logout or a
// termination elsewhere, so its changes could not be saved; err wraps
// ErrNotFound), it answers 409 Conflict, "session ended": the request
// conflicted with a concurrent change of the session's state, and the
// session cookie has already been expired on the response, so the client's
// next request finds no session and gets the application's usual sign-in.
// Any other error is a store failure: it answers 503 Service Unavailable
// and keeps the cookie (an outage is not a logout). Either way it logs the
// error with the session's log tag, never its ID, on the manager's logger.
func DefaultErrorHandler(w http.ResponseWriter, r *http.Request, err error) {
	log := slog.Default()
	if st, _ := r.Context().Value(ctxKey{}).(*requestState); st != nil {
		log = st.m.log
	}
	args := []any{"err", err, "method", r.Method, "path", r.URL.Path}
	var se *sessionError
	if errors.As(err, &se) {
		args = append(args, "session", se.tag)
	}
	if errors.Is(err, ErrNotFound) {
		log.Info("sessions: the session ended while the request ran; its changes were not saved", args...)
		http.Error(w, "session ended", http.StatusConflict)
		return
	}
	log.Error("sessions: store failed; answering 503", args...)
	http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
}

// sessionError is an error about one session: it carries the session's
// log tag for the error handler's log, never the ID.
type sessionError struct {
	tag string
	err error
}

func (e *sessionError) Error() string { return e.err.Error() + " (session " + e.tag + ")" }
func (e *sessionError) Unwrap() error { return e.err }

// warnOutside says once that Start or End ran on a request that did not
// pass through this manager's Middleware.
func (m *Manager) warnOutside(op string) {
	if m.web.warnedOutside.CompareAndSwap(false, true) {
		m.log.Warn("sessions: " + op + " on a request that did not pass through this manager's Middleware: " +
			"it works, but FromContext on that request cannot see the change (said once)")
	}
}

// warnInsecure says once that a Secure cookie is being set on a plain-http
// request from another host: a browser drops such a cookie, so the login
// fails without a word. Loopback clients (a browser treats
// http://127.0.0.1 and http://localhost as secure) and requests a proxy
// marks as https are fine.
func (m *Manager) warnInsecure(r *http.Request) {
	if m.cfg.Cookie.Insecure || r.TLS != nil || m.web.warnedInsecure.Load() || forwardedHTTPS(r) {
		return
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsLoopback() {
		return // not an IP (a unix socket, a test pipe): nothing to say
	}
	if m.web.warnedInsecure.CompareAndSwap(false, true) {
		m.log.Warn("sessions: setting a Secure session cookie on a plain-http request from "+host+
			": browsers drop it, so the login will not stick; serve https, or set Cookie.Insecure for plain-http development (said once)",
			"cookie", m.cfg.Cookie.Name)
	}
}

// forwardedHTTPS reports whether a proxy says the client used https.
func forwardedHTTPS(r *http.Request) bool {
	if strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return true
	}
	return strings.Contains(strings.ToLower(r.Header.Get("Forwarded")), "proto=https")
}
