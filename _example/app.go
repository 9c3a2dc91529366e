package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokyopredictor/sessions"
)

//go:embed templates/*.html
var templateFS embed.FS

// demoPassword is the password of every demo user. The app is a demo of
// session handling, not of password storage: real code keeps a slow salted
// hash (argon2id, bcrypt) per user.
const demoPassword = "demo"

// demoUsers returns the accounts one can sign in as.
func demoUsers() []string { return []string{"alice", "bob", "carol"} }

// Keys of what the app keeps in a session.
const (
	keyCSRF   = "csrf"    // string: the CSRF token of the session's forms
	keyAuthAt = "auth_at" // time.Time: when the user last entered the password
	keyTag    = "tag"     // string: hash of the session cookie's value (see app.endedReason)
	keyDevice = "device"  // string: describeDevice of the User-Agent, for the termination log
)

// Sizes of the app's in-memory bookkeeping; both are bounded.
const (
	logSize     = 100  // termination log entries kept
	reasonsSize = 1024 // ended sessions whose reason a returning browser can be told
)

// appConfig configures newApp.
type appConfig struct {
	// Sessions configures the session manager. Its Cookie.Name, when empty,
	// takes the package default, which the app mirrors in cookieName.
	Sessions sessions.Config
	// Store is the session store; nil means the in-memory store.
	Store sessions.Store
	// Logger receives the app's and the manager's log lines; nil means
	// slog.Default().
	Logger *slog.Logger
	// ReauthWindow is how long after entering the password the user may
	// sign out other devices without entering it again (OWASP ASVS 5.0
	// 7.5.2); 0 means 5 minutes.
	ReauthWindow time.Duration
}

// app is the example web application: a session manager, its pages and the
// bookkeeping fed by the manager's termination hook. Its methods are safe
// for concurrent use.
type app struct {
	m          *sessions.Manager
	log        *slog.Logger
	pages      map[string]*template.Template
	cookieName string
	idle       time.Duration // idle timeout, for messages
	maxPerUser int           // per-user limit, for messages; -1 → none
	reauth     time.Duration

	mu      sync.Mutex
	ended   []logEntry        // ring buffer of the last logSize endings
	next    int               // where the next entry goes in ended
	reasons map[string]string // cookie tag → why that session ended
	order   []string          // tags of reasons, oldest first, for eviction
}

// logEntry is one line of the termination log.
type logEntry struct {
	At     time.Time
	User   string
	ID     string // idHash of the session ID
	Reason string
	Device string
}

// newApp builds the app and its HTTP handler. The caller must call
// app.Close when done, after the server has stopped.
func newApp(cfg appConfig) (*app, http.Handler, error) {
	log := cmp.Or(cfg.Logger, slog.Default())
	opts := []sessions.Option{sessions.WithLogger(log)}
	if cfg.Store != nil {
		opts = append(opts, sessions.WithStore(cfg.Store))
	}
	m, err := sessions.NewManager(cfg.Sessions, opts...)
	if err != nil {
		return nil, nil, err
	}
	a := &app{
		m:          m,
		log:        log,
		cookieName: cookieName(cfg.Sessions.Cookie),
		idle:       cmp.Or(cfg.Sessions.IdleTimeout, 30*time.Minute),
		maxPerUser: cmp.Or(cfg.Sessions.MaxSessionsPerUser, 5),
		reauth:     cmp.Or(cfg.ReauthWindow, 5*time.Minute),
		ended:      make([]logEntry, 0, logSize),
		reasons:    make(map[string]string),
	}
	a.pages, err = parsePages()
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	m.OnTerminate(a.recordEnd)
	return a, a.routes(), nil
}

// Close closes the session manager: with the memory store every live
// session ends (reason "shutdown") and Close returns once the termination
// hook has run for each.
func (a *app) Close() error { return a.m.Close() }

// cookieName returns the session cookie's name as the package chooses it:
// the configured one, else "session" when the cookie cannot carry the
// __Host- prefix (Insecure or Domain set), else "__Host-session".
func cookieName(c sessions.CookieConfig) string {
	switch {
	case c.Name != "":
		return c.Name
	case c.Insecure || c.Domain != "":
		return "session"
	}
	return "__Host-session"
}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"clock": func(t time.Time) string { return t.Local().Format("15:04:05") },
		"date":  func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05 MST") },
		"ago": func(t time.Time) string {
			if d := time.Since(t); d >= time.Second {
				return roundDur(d) + " ago"
			}
			return "just now"
		},
		"dur":   roundDur,
		"human": humanDur,
	}
	pages := make(map[string]*template.Template)
	for _, name := range []string{"signin", "home", "devices", "log", "error"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parsing template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// humanDur renders a whole number of hours, minutes or seconds in words
// ("30 minutes"), anything else as roundDur does.
func humanDur(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{time.Hour, "hour"}, {time.Minute, "minute"}, {time.Second, "second"}} {
		if d >= u.d && d%u.d == 0 {
			if n := int64(d / u.d); n != 1 {
				return fmt.Sprintf("%d %ss", n, u.name)
			}
			return "1 " + u.name
		}
	}
	return roundDur(d)
}

// roundDur renders d to the second ("0s" for less), for people.
func roundDur(d time.Duration) string {
	if d < time.Second {
		return "0s"
	}
	return d.Round(time.Second).String()
}

// routes returns the app's handler. Every page sits behind the session
// middleware; the favicon does not, so that a favicon fetch does not count
// as activity and keep a session alive. Every unsafe request
// also passes net/http's cross-origin protection (Sec-Fetch-Site / Origin),
// which covers the sign-in form, where no session-bound CSRF token exists
// yet.
func (a *app) routes() http.Handler {
	inner := http.NewServeMux()
	inner.HandleFunc("GET /{$}", a.home)
	inner.HandleFunc("GET /signin", a.signInForm)
	inner.HandleFunc("POST /signin", a.signIn)
	inner.HandleFunc("POST /signout", a.signOut)
	inner.HandleFunc("GET /devices", a.devices)
	inner.HandleFunc("GET /log", a.terminationLog)
	inner.HandleFunc("POST /devices/signout", a.signOutDevice)
	inner.HandleFunc("POST /devices/signout-others", a.signOutOthers)
	inner.HandleFunc("POST /reauth", a.reauthenticate)
	inner.HandleFunc("GET /api/whoami", a.apiWhoami)
	inner.HandleFunc("GET /api/devices", a.apiDevices)

	mux := http.NewServeMux()
	mux.Handle("/", a.m.Middleware(inner))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	return securityHeaders(http.NewCrossOriginProtection().Handler(mux))
}

// securityHeaders sets headers every page should carry: no scripts at all,
// styles only inline, forms only to this origin, no framing.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// view is what every page template gets.
type view struct {
	Title string
	Page  string // the id of the page's <main>: "page-" + Page
	User  string // signed-in user, "" for none
	CSRF  string // the session's CSRF token, for the forms
	Flash string // a notice, such as why the user was signed out
	Error string
	Data  any
}

// render executes the page into a buffer first, so a template error becomes
// a clean 500.
func (a *app) render(w http.ResponseWriter, status int, page string, v view) {
	v.Page = page
	var buf bytes.Buffer
	if err := a.pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		a.log.Error("rendering page", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

func (a *app) fail(w http.ResponseWriter, status int, msg string) {
	a.render(w, status, "error", view{Title: http.StatusText(status), Error: msg})
}

// session returns the request's signed-in session, or sends the browser to
// the sign-in page (an API client gets 401) and returns false.
func (a *app) session(w http.ResponseWriter, r *http.Request) (*sessions.Session, bool) {
	if s, ok := sessions.FromContext(r.Context()); ok && s.UserID() != "" {
		return s, true
	}
	why := a.endedReason(r)
	if strings.HasPrefix(r.URL.Path, "/api/") {
		body := map[string]string{"error": "not signed in"}
		if why != "" {
			body["ended"] = why // as in the sign-in page's ?ended=
		}
		writeJSON(w, http.StatusUnauthorized, body)
		return nil, false
	}
	target := "/signin"
	if why != "" {
		target += "?ended=" + why
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil, false
}

// endedReason tells why the session a request's cookie names has ended:
// "" when the request has no session cookie, the termination hook's reason
// ("evicted", "terminated", "idle", ...) when the app saw it end, else
// "ended". The session middleware has already expired such a cookie on the
// response, but the request still carries it: the app keys what the hook
// saw by a hash of the cookie's value (stored in the session as keyTag at
// sign-in), so no extra cookie is needed and the raw session ID is never
// kept.
func (a *app) endedReason(r *http.Request) string {
	c, err := r.Cookie(a.cookieName)
	if err != nil || c.Value == "" {
		return ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if why, ok := a.reasons[cookieTag(c.Value)]; ok {
		return why
	}
	return "ended"
}

// cookieTag is the one-way tag of a session cookie value.
func cookieTag(value string) string {
	h := sha256.Sum256([]byte(value))
	return hex.EncodeToString(h[:16])
}

// idHash is the tag of a session ID shown on the pages and in the log: the
// first 4 bytes of its SHA-256, as the sessions package logs it. The raw ID
// is a secret and is never shown.
func idHash(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:4])
}

// recordEnd is the manager's termination hook: it adds the ending to the
// log, remembers its reason for the browser that held it, and logs a line.
func (a *app) recordEnd(ev sessions.Event) {
	device, _ := ev.Data[keyDevice].(string)
	e := logEntry{At: ev.At, User: ev.UserID, ID: idHash(ev.SessionID), Reason: ev.Reason.String(), Device: device}
	a.mu.Lock()
	if len(a.ended) < logSize {
		a.ended = append(a.ended, e)
	} else {
		a.ended[a.next] = e
	}
	a.next = (a.next + 1) % logSize
	if tag, ok := ev.Data[keyTag].(string); ok && tag != "" {
		if _, seen := a.reasons[tag]; !seen {
			if len(a.order) == reasonsSize {
				delete(a.reasons, a.order[0])
				a.order = a.order[1:]
			}
			a.order = append(a.order, tag)
		}
		a.reasons[tag] = e.Reason
	}
	a.mu.Unlock()
	a.log.Info("session ended", "session", e.ID, "user", e.User, "reason", e.Reason,
		"device", device, "lived", ev.At.Sub(ev.CreatedAt).Round(time.Millisecond))
}

// terminations returns the termination log, newest first.
func (a *app) terminations() []logEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]logEntry, 0, len(a.ended))
	for i := range len(a.ended) {
		// a.next-1 is the newest; walk backwards around the ring.
		out = append(out, a.ended[(a.next-1-i+2*len(a.ended))%len(a.ended)])
	}
	return out
}

// signedOutMessage explains an ended session to the user who held it.
func (a *app) signedOutMessage(why string) string {
	switch why {
	case "evicted":
		return fmt.Sprintf("You were signed out on this device because you signed in on another one: "+
			"an account may be signed in on %d devices at a time, and this was the one used least recently.", a.maxPerUser)
	case "terminated":
		return "You were signed out on this device from another of your devices."
	case "idle":
		return fmt.Sprintf("You were signed out after %s without activity.", a.idle)
	case "absolute":
		return "Your session reached its maximum lifetime. Please sign in again."
	case "shutdown":
		return "The server was restarted. Please sign in again."
	case "logout":
		return "You have signed out."
	case "ended":
		return "Your session has ended. Please sign in again."
	}
	return ""
}

func (a *app) signInForm(w http.ResponseWriter, r *http.Request) {
	if s, ok := sessions.FromContext(r.Context()); ok && s.UserID() != "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	a.render(w, http.StatusOK, "signin", view{
		Title: "Sign in",
		Flash: a.signedOutMessage(r.URL.Query().Get("ended")),
		Data:  a.signInData(""),
	})
}

type signInData struct {
	Users    []string
	Password string
	User     string        // the name typed, when the form comes back with an error
	Idle     time.Duration // the idle timeout, stated on the form
	Max      int           // the per-user limit; -1 → none
}

func (a *app) signInData(user string) signInData {
	return signInData{Users: demoUsers(), Password: demoPassword, User: user, Idle: a.idle, Max: a.maxPerUser}
}

func (a *app) signIn(w http.ResponseWriter, r *http.Request) {
	user, password := r.PostFormValue("user"), r.PostFormValue("password")
	if !checkPassword(user, password) {
		a.log.Info("sign-in failed", "user", user, "addr", r.RemoteAddr)
		a.render(w, http.StatusUnauthorized, "signin", view{
			Title: "Sign in",
			Error: "Unknown user or wrong password.",
			Data:  a.signInData(user),
		})
		return
	}
	csrf, err := newToken()
	if err != nil {
		a.fail(w, http.StatusInternalServerError, "could not make a CSRF token")
		return
	}
	device := describeDevice(r.UserAgent())
	s, err := a.m.Start(w, r, user, map[string]any{
		keyCSRF:   csrf,
		keyAuthAt: time.Now(),
		keyDevice: device,
	})
	if err != nil {
		a.log.Error("starting a session", "user", user, "err", err)
		a.fail(w, http.StatusServiceUnavailable, "Could not sign you in right now; please try again.")
		return
	}
	if v := issuedCookie(w.Header(), a.cookieName); v != "" {
		s.Set(keyTag, cookieTag(v))
	}
	a.log.Info("signed in", "session", idHash(s.ID()), "user", user, "device", device, "addr", r.RemoteAddr)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// issuedCookie returns the value of the cookie called name that the
// response sets, "" if none.
func issuedCookie(h http.Header, name string) string {
	var v string
	for _, line := range h.Values("Set-Cookie") {
		if c, err := http.ParseSetCookie(line); err == nil && c.Name == name && c.MaxAge >= 0 {
			v = c.Value
		}
	}
	return v
}

// checkPassword accepts the demo users with the demo password, comparing in
// constant time.
func checkPassword(user, password string) bool {
	ok := subtle.ConstantTimeCompare([]byte(password), []byte(demoPassword)) == 1
	return ok && slices.Contains(demoUsers(), user)
}

// newToken returns 32 random bytes, base64url-encoded.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// checkCSRF reports whether the request carries the session's CSRF token,
// in the form field "csrf" or the X-CSRF-Token header (for curl). It answers
// 403 itself when not.
func (a *app) checkCSRF(w http.ResponseWriter, r *http.Request, s *sessions.Session) bool {
	want, _ := s.Get(keyCSRF)
	token, _ := want.(string)
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	if token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
		a.log.Warn("CSRF token missing or wrong", "session", idHash(s.ID()), "path", r.URL.Path)
		a.fail(w, http.StatusForbidden, "This form has expired or did not come from this site (missing or wrong CSRF token). Go back, reload the page and try again.")
		return false
	}
	return true
}

// recentlyAuthenticated reports whether the user entered the password less
// than a.reauth ago in this session.
func (a *app) recentlyAuthenticated(s *sessions.Session) bool {
	v, _ := s.Get(keyAuthAt)
	t, ok := v.(time.Time)
	return ok && time.Since(t) < a.reauth
}

func (a *app) signOut(w http.ResponseWriter, r *http.Request) {
	s, ok := a.session(w, r)
	if !ok || !a.checkCSRF(w, r, s) {
		return
	}
	if err := a.m.End(w, r); err != nil {
		a.log.Error("ending a session", "err", err)
	}
	http.Redirect(w, r, "/signin?ended=logout", http.StatusSeeOther)
}

// sessionInfo is one session as the pages and the API show it.
type sessionInfo struct {
	ID           string    `json:"id_hash"`
	User         string    `json:"user"`
	Device       string    `json:"device"`
	Address      string    `json:"address"`
	Created      time.Time `json:"created"`
	LastActivity time.Time `json:"last_activity"`
	ExpiresAt    time.Time `json:"expires_at"`
	Current      bool      `json:"this_device"`
}

func describe(s *sessions.Session, current *sessions.Session) sessionInfo {
	addr := s.RemoteAddr()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	return sessionInfo{
		ID:           idHash(s.ID()),
		User:         s.UserID(),
		Device:       describeDevice(s.UserAgent()),
		Address:      addr,
		Created:      s.CreatedAt(),
		LastActivity: s.LastActivity(),
		ExpiresAt:    s.ExpiresAt(),
		Current:      current != nil && s.ID() == current.ID(),
	}
}

type homeData struct {
	Session  sessionInfo
	TimeLeft time.Duration
	Idle     time.Duration
	Stats    sessions.Stats
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	s, ok := a.session(w, r)
	if !ok {
		return
	}
	info := describe(s, s)
	a.render(w, http.StatusOK, "home", view{
		Title: "Home",
		User:  s.UserID(),
		CSRF:  csrfOf(s),
		Data:  homeData{Session: info, TimeLeft: time.Until(info.ExpiresAt), Idle: a.idle, Stats: a.m.Stats()},
	})
}

func csrfOf(s *sessions.Session) string {
	v, _ := s.Get(keyCSRF)
	t, _ := v.(string)
	return t
}

// userDevices returns the user's sessions, this one first, then the most
// recently active first.
func (a *app) userDevices(ctx context.Context, s *sessions.Session) ([]sessionInfo, error) {
	all, err := a.m.UserSessions(ctx, s.UserID())
	if err != nil {
		return nil, err
	}
	out := make([]sessionInfo, 0, len(all))
	for _, o := range all {
		out = append(out, describe(o, s))
	}
	slices.SortFunc(out, func(x, y sessionInfo) int {
		if x.Current != y.Current {
			if x.Current {
				return -1
			}
			return 1
		}
		return y.LastActivity.Compare(x.LastActivity)
	})
	return out, nil
}

type devicesData struct {
	Devices    []sessionInfo
	NeedReauth bool // the password must be entered again before signing out others
	Max        int  // the per-user limit; -1 → none
	Others     int  // how many devices besides this one
}

func (a *app) devices(w http.ResponseWriter, r *http.Request) {
	s, ok := a.session(w, r)
	if !ok {
		return
	}
	devs, err := a.userDevices(r.Context(), s)
	if err != nil {
		a.log.Error("listing sessions", "err", err)
		a.fail(w, http.StatusServiceUnavailable, "Could not list your devices right now.")
		return
	}
	v := view{
		Title: "Your devices",
		User:  s.UserID(),
		CSRF:  csrfOf(s),
		Data:  devicesData{Devices: devs, NeedReauth: !a.recentlyAuthenticated(s), Max: a.maxPerUser, Others: len(devs) - 1},
	}
	switch q := r.URL.Query(); {
	case q.Get("signedout") != "":
		n, _ := strconv.Atoi(q.Get("signedout"))
		v.Flash = fmt.Sprintf("Signed out %d other device(s).", n)
	case q.Get("reauth") == "failed":
		v.Error = "Wrong password."
	case q.Get("reauth") == "needed":
		v.Error = "Enter your password again to sign out other devices."
	}
	a.render(w, http.StatusOK, "devices", v)
}

// othersAllowed checks what signing out other devices needs: a valid CSRF
// token and a password entered recently (else the user is sent to confirm
// it).
func (a *app) othersAllowed(w http.ResponseWriter, r *http.Request) (*sessions.Session, bool) {
	s, ok := a.session(w, r)
	if !ok || !a.checkCSRF(w, r, s) {
		return nil, false
	}
	if !a.recentlyAuthenticated(s) {
		http.Redirect(w, r, "/devices?reauth=needed", http.StatusSeeOther)
		return nil, false
	}
	return s, true
}

func (a *app) signOutDevice(w http.ResponseWriter, r *http.Request) {
	s, ok := a.session(w, r)
	if !ok {
		return
	}
	target := r.PostFormValue("device")
	if target == idHash(s.ID()) {
		a.signOut(w, r) // this device: an ordinary sign-out
		return
	}
	if s, ok = a.othersAllowed(w, r); !ok {
		return
	}
	n, err := a.endOthers(r.Context(), s, func(o *sessions.Session) bool { return idHash(o.ID()) == target })
	if err != nil {
		a.fail(w, http.StatusServiceUnavailable, "Could not sign that device out right now.")
		return
	}
	http.Redirect(w, r, "/devices?signedout="+strconv.Itoa(n), http.StatusSeeOther)
}

func (a *app) signOutOthers(w http.ResponseWriter, r *http.Request) {
	s, ok := a.othersAllowed(w, r)
	if !ok {
		return
	}
	n, err := a.endOthers(r.Context(), s, func(*sessions.Session) bool { return true })
	if err != nil {
		a.fail(w, http.StatusServiceUnavailable, "Could not sign your other devices out right now.")
		return
	}
	http.Redirect(w, r, "/devices?signedout="+strconv.Itoa(n), http.StatusSeeOther)
}

// endOthers terminates the sessions of s's user, other than s, that match,
// and returns how many it ended. A session that ended meanwhile is skipped.
func (a *app) endOthers(ctx context.Context, s *sessions.Session, match func(*sessions.Session) bool) (int, error) {
	all, err := a.m.UserSessions(ctx, s.UserID())
	if err != nil {
		a.log.Error("listing sessions", "err", err)
		return 0, err
	}
	n := 0
	for _, o := range all {
		if o.ID() == s.ID() || !match(o) {
			continue
		}
		switch err := a.m.Terminate(ctx, o.ID()); {
		case err == nil:
			n++
			a.log.Info("signed out another device", "session", idHash(o.ID()), "by", idHash(s.ID()), "user", s.UserID())
		case errors.Is(err, sessions.ErrNotFound):
		default:
			a.log.Error("terminating a session", "err", err)
			return n, err
		}
	}
	return n, nil
}

// reauthenticate checks the password again (ASVS 5.0 7.5.2: terminating
// other sessions needs a fresh authentication) and records when.
func (a *app) reauthenticate(w http.ResponseWriter, r *http.Request) {
	s, ok := a.session(w, r)
	if !ok || !a.checkCSRF(w, r, s) {
		return
	}
	if !checkPassword(s.UserID(), r.PostFormValue("password")) {
		http.Redirect(w, r, "/devices?reauth=failed", http.StatusSeeOther)
		return
	}
	s.Set(keyAuthAt, time.Now())
	http.Redirect(w, r, "/devices", http.StatusSeeOther)
}

type logData struct {
	Entries []logEntry
	Size    int // how many endings the app keeps, all users together
}

// terminationLog shows the signed-in user the endings of their own
// sessions: which device, when and why. Other users' endings are theirs
// alone. The page does not reload itself: that would be activity, and
// would keep the session it is viewed from alive forever.
func (a *app) terminationLog(w http.ResponseWriter, r *http.Request) {
	s, ok := a.session(w, r)
	if !ok {
		return
	}
	var own []logEntry
	for _, e := range a.terminations() {
		if e.User == s.UserID() {
			own = append(own, e)
		}
	}
	a.render(w, http.StatusOK, "log", view{
		Title: "Your sign-outs",
		User:  s.UserID(),
		CSRF:  csrfOf(s),
		Data:  logData{Entries: own, Size: logSize},
	})
}

// apiWhoami describes the request's session as JSON, with the CSRF token
// that POST /signout needs (in the X-CSRF-Token header) for a client
// without HTML forms, such as curl.
func (a *app) apiWhoami(w http.ResponseWriter, r *http.Request) {
	s, ok := a.session(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, struct {
		sessionInfo
		IdleLeft  string `json:"time_left"`
		CSRFToken string `json:"csrf_token"`
	}{describe(s, s), roundDur(time.Until(s.ExpiresAt())), csrfOf(s)})
}

func (a *app) apiDevices(w http.ResponseWriter, r *http.Request) {
	s, ok := a.session(w, r)
	if !ok {
		return
	}
	devs, err := a.userDevices(r.Context(), s)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "could not list sessions"})
		return
	}
	writeJSON(w, http.StatusOK, devs)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
