package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tokyopredictor/sessions"
)

const (
	firefoxWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
	chromeMac      = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	safariIPhone   = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)

// newTestApp starts the app on the memory store; it is closed when the test
// ends.
func newTestApp(t *testing.T, cfg appConfig) (*app, http.Handler) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	a, h, err := newApp(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, a.Close()) })
	return a, h
}

// client is one browser for handler tests: it keeps the cookies the app
// sets and sends them back, as a browser would.
type client struct {
	t       *testing.T
	h       http.Handler
	ua      string
	cookies map[string]*http.Cookie
}

func newClient(t *testing.T, h http.Handler, ua string) *client {
	return &client{t: t, h: h, ua: ua, cookies: make(map[string]*http.Cookie)}
}

type response struct {
	*http.Response
	body string
}

func (c *client) do(method, path string, form url.Values, header http.Header) response {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", c.ua)
	for k, v := range header {
		req.Header[k] = v
	}
	for _, ck := range c.cookies {
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	res := rec.Result()
	for _, ck := range res.Cookies() {
		if ck.MaxAge < 0 || ck.Value == "" {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck
		}
	}
	b, err := io.ReadAll(res.Body)
	require.NoError(c.t, err)
	return response{res, string(b)}
}

func (c *client) get(path string) response { return c.do(http.MethodGet, path, nil, nil) }

func (c *client) post(path string, form url.Values) response {
	return c.do(http.MethodPost, path, form, nil)
}

// signIn signs in as user and returns the CSRF token of the new session.
func (c *client) signIn(user string) string {
	c.t.Helper()
	res := c.post("/signin", url.Values{"user": {user}, "password": {demoPassword}})
	require.Equal(c.t, http.StatusSeeOther, res.StatusCode, res.body)
	require.Equal(c.t, "/", res.Header.Get("Location"))
	return c.csrf()
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the CSRF token from the home page's forms.
func (c *client) csrf() string {
	c.t.Helper()
	res := c.get("/")
	require.Equal(c.t, http.StatusOK, res.StatusCode)
	m := csrfField.FindStringSubmatch(res.body)
	require.NotNil(c.t, m, "no CSRF field on the home page")
	return m[1]
}

func userSessions(t *testing.T, a *app, user string) []*sessions.Session {
	t.Helper()
	ss, err := a.m.UserSessions(context.Background(), user)
	require.NoError(t, err)
	return ss
}

// waitForEnding waits until the termination log holds an ending of user
// for reason, and returns the newest such.
func waitForEnding(t *testing.T, a *app, user, reason string) logEntry {
	t.Helper()
	return waitForLog(t, a, func(e logEntry) bool { return e.User == user && e.Reason == reason })
}

// waitForSession waits until the termination log says why the session
// whose idHash is id ended, and returns the entry.
func waitForSession(t *testing.T, a *app, id string) logEntry {
	t.Helper()
	return waitForLog(t, a, func(e logEntry) bool { return e.ID == id })
}

func waitForLog(t *testing.T, a *app, match func(logEntry) bool) logEntry {
	t.Helper()
	var found logEntry
	require.Eventually(t, func() bool {
		for _, e := range a.terminations() {
			if match(e) {
				found = e
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "not in the termination log")
	return found
}

// sessionOf returns the idHash of user's session started with ua.
func sessionOf(t *testing.T, a *app, user, ua string) string {
	t.Helper()
	for _, s := range userSessions(t, a, user) {
		if s.UserAgent() == ua {
			return idHash(s.ID())
		}
	}
	t.Fatalf("no session of %s with User-Agent %q", user, ua)
	return ""
}

func TestSignInHomeSignOut(t *testing.T) {
	a, h := newTestApp(t, appConfig{})
	c := newClient(t, h, firefoxWindows)

	res := c.get("/")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/signin", res.Header.Get("Location"), "no cookie: no reason to give")

	res = c.get("/signin")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, res.body, `id="page-signin"`)

	res = c.post("/signin", url.Values{"user": {"alice"}, "password": {"wrong"}})
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Contains(t, res.body, "wrong password")
	assert.Empty(t, res.Cookies())
	res = c.post("/signin", url.Values{"user": {"mallory"}, "password": {demoPassword}})
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)

	res = c.post("/signin", url.Values{"user": {"alice"}, "password": {demoPassword}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	ck := c.cookies["__Host-session"]
	require.NotNil(t, ck, "the session cookie keeps the package default name")
	assert.Equal(t, a.cookieName, ck.Name)
	assert.True(t, ck.Secure)
	assert.True(t, ck.HttpOnly)
	assert.Equal(t, http.SameSiteLaxMode, ck.SameSite)
	assert.Equal(t, "/", ck.Path)

	ss := userSessions(t, a, "alice")
	require.Len(t, ss, 1)
	id := ss[0].ID()
	res = c.get("/")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, res.body, `<span id="user">alice</span>`)
	assert.Contains(t, res.body, idHash(id))
	assert.NotContains(t, res.body, id, "the raw session ID is never shown")
	assert.NotContains(t, res.body, ck.Value)
	assert.Contains(t, res.body, "Firefox 128 on Windows")
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	assert.Contains(t, res.Header.Get("Content-Security-Policy"), "default-src 'none'")

	// Signing in again from the same browser renews the session ID.
	c.signIn("alice")
	ss = userSessions(t, a, "alice")
	require.Len(t, ss, 1)
	assert.NotEqual(t, id, ss[0].ID())
	waitForEnding(t, a, "alice", "renewed")

	token := c.csrf()
	res = c.post("/signout", nil)
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "sign-out without a CSRF token")
	assert.Len(t, userSessions(t, a, "alice"), 1)

	res = c.post("/signout", url.Values{"csrf": {token}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/signin?ended=logout", res.Header.Get("Location"))
	assert.Empty(t, c.cookies, "sign-out expires the cookie")
	assert.Empty(t, userSessions(t, a, "alice"))
	waitForEnding(t, a, "alice", "logout")

	res = c.get("/signin?ended=logout")
	assert.Contains(t, res.body, "You have signed out.")
}

var deviceRow = regexp.MustCompile(`<tr class="device( current)?" data-session="([0-9a-f]{8})">`)

func TestDevicesAndSignOutOthers(t *testing.T) {
	a, h := newTestApp(t, appConfig{})
	laptop := newClient(t, h, firefoxWindows)
	desktop := newClient(t, h, chromeMac)
	phone := newClient(t, h, safariIPhone)
	bob := newClient(t, h, chromeMac)
	token := laptop.signIn("alice")
	desktop.signIn("alice")
	phone.signIn("alice")
	bob.signIn("bob")

	res := laptop.get("/devices")
	require.Equal(t, http.StatusOK, res.StatusCode)
	rows := deviceRow.FindAllStringSubmatch(res.body, -1)
	require.Len(t, rows, 3, "alice's three devices, not bob's")
	assert.Equal(t, " current", rows[0][1], "this device comes first")
	assert.Empty(t, rows[1][1])
	assert.Equal(t, 1, strings.Count(res.body, "this device</span>"))
	for _, d := range []string{"Firefox 128 on Windows", "Chrome 120 on macOS", "Safari 17 on iOS"} {
		assert.Contains(t, res.body, d)
	}
	assert.Contains(t, res.body, `id="signout-others"`)

	api := laptop.get("/api/devices")
	require.Equal(t, http.StatusOK, api.StatusCode)
	assert.Equal(t, 3, strings.Count(api.body, `"user": "alice"`))

	// Sign out one other device: the phone.
	phoneHash := sessionOf(t, a, "alice", safariIPhone)
	desktopHash := sessionOf(t, a, "alice", chromeMac)
	res = laptop.post("/devices/signout", url.Values{"csrf": {token}, "device": {phoneHash}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.body)
	assert.Equal(t, "/devices?signedout=1", res.Header.Get("Location"))
	assert.Len(t, userSessions(t, a, "alice"), 2)
	assert.Equal(t, "terminated", waitForSession(t, a, phoneHash).Reason)
	res = phone.get("/devices")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/signin?ended=terminated", res.Header.Get("Location"))
	assert.Empty(t, phone.cookies, "the middleware expired the dead session's cookie")

	// Sign out all the others: the desktop; bob is not touched.
	res = laptop.post("/devices/signout-others", url.Values{"csrf": {token}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.body)
	assert.Equal(t, "/devices?signedout=1", res.Header.Get("Location"))
	ss := userSessions(t, a, "alice")
	require.Len(t, ss, 1)
	assert.Equal(t, firefoxWindows, ss[0].UserAgent())
	assert.Len(t, userSessions(t, a, "bob"), 1)
	assert.Equal(t, "terminated", waitForSession(t, a, desktopHash).Reason)
	assert.Equal(t, "/signin?ended=terminated", desktop.get("/").Header.Get("Location"))
	res = desktop.get("/signin?ended=terminated")
	assert.Contains(t, res.body, "signed out on this device from another of your devices")

	res = laptop.get("/devices?signedout=1")
	assert.Len(t, deviceRow.FindAllString(res.body, -1), 1)
	assert.Contains(t, res.body, "Signed out 1 other device(s).")
	assert.NotContains(t, res.body, `id="signout-others"`, "no other device left")

	// Signing out this device from the list is an ordinary sign-out.
	res = laptop.post("/devices/signout", url.Values{"csrf": {token}, "device": {idHash(ss[0].ID())}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/signin?ended=logout", res.Header.Get("Location"))
	assert.Empty(t, userSessions(t, a, "alice"))
}

func TestCSRFRejected(t *testing.T) {
	a, h := newTestApp(t, appConfig{})
	laptop := newClient(t, h, firefoxWindows)
	desktop := newClient(t, h, chromeMac)
	token := laptop.signIn("alice")
	otherToken := desktop.signIn("alice")
	require.NotEqual(t, token, otherToken, "each session has its own token")
	desktopHash := sessionOf(t, a, "alice", chromeMac)
	wrong := "x" + token[1:]
	if wrong == token { // the token began with x
		wrong = "y" + token[1:]
	}

	for name, form := range map[string]url.Values{
		"missing":              {},
		"wrong":                {"csrf": {wrong}},
		"other session's":      {"csrf": {otherToken}},
		"empty":                {"csrf": {""}},
		"device form, missing": {"device": {desktopHash}},
	} {
		path := "/devices/signout-others"
		if form.Has("device") {
			path = "/devices/signout"
		}
		res := laptop.post(path, form)
		assert.Equal(t, http.StatusForbidden, res.StatusCode, name)
		assert.Contains(t, res.body, "CSRF token", name)
	}
	res := laptop.post("/signout", url.Values{"csrf": {otherToken}})
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	res = laptop.post("/reauth", url.Values{"password": {demoPassword}})
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Len(t, userSessions(t, a, "alice"), 2, "nothing was signed out")

	// A cross-site form post is refused before it reaches the handler, even
	// with the right token (and so is a cross-site sign-in: login CSRF).
	res = laptop.do(http.MethodPost, "/devices/signout-others", url.Values{"csrf": {token}},
		http.Header{"Sec-Fetch-Site": {"cross-site"}})
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	res = newClient(t, h, chromeMac).do(http.MethodPost, "/signin",
		url.Values{"user": {"alice"}, "password": {demoPassword}}, http.Header{"Origin": {"https://evil.example"}})
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Len(t, userSessions(t, a, "alice"), 2)

	// The token also works as a header, for curl.
	res = laptop.do(http.MethodPost, "/devices/signout-others", nil, http.Header{"X-Csrf-Token": {token}})
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Len(t, userSessions(t, a, "alice"), 1)
}

func TestReauthenticationBeforeSigningOutOthers(t *testing.T) {
	a, h := newTestApp(t, appConfig{})
	laptop := newClient(t, h, firefoxWindows)
	desktop := newClient(t, h, chromeMac)
	token := laptop.signIn("alice")
	desktop.signIn("alice")

	// Make the laptop's sign-in an hour old.
	for _, s := range userSessions(t, a, "alice") {
		if s.UserAgent() == firefoxWindows {
			s.Set(keyAuthAt, time.Now().Add(-time.Hour))
		}
	}
	res := laptop.get("/devices")
	assert.Contains(t, res.body, `action="/reauth"`)
	assert.NotContains(t, res.body, `id="signout-others"`)

	res = laptop.post("/devices/signout-others", url.Values{"csrf": {token}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/devices?reauth=needed", res.Header.Get("Location"))
	assert.Len(t, userSessions(t, a, "alice"), 2)

	res = laptop.post("/reauth", url.Values{"csrf": {token}, "password": {"nope"}})
	assert.Equal(t, "/devices?reauth=failed", res.Header.Get("Location"))
	assert.Contains(t, laptop.get("/devices?reauth=failed").body, "Wrong password.")

	res = laptop.post("/reauth", url.Values{"csrf": {token}, "password": {demoPassword}})
	assert.Equal(t, "/devices", res.Header.Get("Location"))
	assert.Contains(t, laptop.get("/devices").body, `id="signout-others"`)
	res = laptop.post("/devices/signout-others", url.Values{"csrf": {token}})
	assert.Equal(t, "/devices?signedout=1", res.Header.Get("Location"))
	assert.Len(t, userSessions(t, a, "alice"), 1)
}

func TestEvictedDeviceIsToldWhy(t *testing.T) {
	a, h := newTestApp(t, appConfig{Sessions: sessions.Config{MaxSessionsPerUser: 2}})
	first := newClient(t, h, firefoxWindows)
	second := newClient(t, h, chromeMac)
	third := newClient(t, h, safariIPhone)
	first.signIn("alice")
	second.signIn("alice")
	second.get("/devices") // the second is now the more recently active
	firstHash := sessionOf(t, a, "alice", firefoxWindows)
	third.signIn("alice")

	ss := userSessions(t, a, "alice")
	require.Len(t, ss, 2)
	for _, s := range ss {
		assert.NotEqual(t, firefoxWindows, s.UserAgent(), "the least recently active device was signed out")
	}
	e := waitForSession(t, a, firstHash)
	assert.Equal(t, "evicted", e.Reason)
	assert.Equal(t, "Firefox 128 on Windows", e.Device)

	res := first.get("/devices")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/signin?ended=evicted", res.Header.Get("Location"))
	res = first.get(res.Header.Get("Location"))
	assert.Contains(t, res.body, "signed in on 2 devices at a time")
	assert.Equal(t, http.StatusOK, second.get("/").StatusCode)
	assert.Equal(t, http.StatusOK, third.get("/").StatusCode)
}

func TestIdleSessionIsToldWhy(t *testing.T) {
	a, h := newTestApp(t, appConfig{Sessions: sessions.Config{IdleTimeout: 200 * time.Millisecond, CleanupInterval: 20 * time.Millisecond}})
	c := newClient(t, h, firefoxWindows)
	res := c.post("/signin", url.Values{"user": {"alice"}, "password": {demoPassword}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	waitForEnding(t, a, "alice", "idle")
	res = c.get("/")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/signin?ended=idle", res.Header.Get("Location"))
	assert.Contains(t, c.get("/signin?ended=idle").body, "after 200ms without activity")
}

func TestUnknownCookieIsToldItEnded(t *testing.T) {
	_, h := newTestApp(t, appConfig{})
	c := newClient(t, h, firefoxWindows)
	c.cookies["__Host-session"] = &http.Cookie{Name: "__Host-session", Value: "forged"}
	res := c.get("/")
	assert.Equal(t, "/signin?ended=ended", res.Header.Get("Location"))
	assert.Empty(t, c.cookies, "the middleware expired the forged cookie")
	assert.Contains(t, c.get("/signin?ended=ended").body, "Your session has ended.")
	// An unknown reason in the URL shows nothing.
	assert.NotContains(t, c.get("/signin?ended=%3Cb%3E").body, `id="flash"`)
}

func TestAPI(t *testing.T) {
	_, h := newTestApp(t, appConfig{})
	c := newClient(t, h, "curl/8.5.0")
	res := c.get("/api/whoami")
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Equal(t, "application/json", res.Header.Get("Content-Type"))

	token := c.signIn("bob")
	res = c.get("/api/whoami")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, res.body, `"user": "bob"`)
	assert.Contains(t, res.body, `"device": "curl 8"`)
	assert.Contains(t, res.body, `"csrf_token": "`+token+`"`)
}

func TestTerminationLogIsBounded(t *testing.T) {
	a, h := newTestApp(t, appConfig{})
	for i := range logSize + reasonsSize + 5 {
		a.recordEnd(sessions.Event{
			SessionID: "s" + string(rune('a'+i%26)), UserID: "alice", Reason: sessions.ReasonIdle,
			At: time.Unix(int64(i), 0), Data: map[string]any{keyTag: "tag" + time.Unix(int64(i), 0).String()},
		})
	}
	log := a.terminations()
	require.Len(t, log, logSize)
	assert.Equal(t, time.Unix(int64(logSize+reasonsSize+4), 0), log[0].At, "newest first")
	assert.Equal(t, time.Unix(int64(reasonsSize+5), 0), log[logSize-1].At)
	a.mu.Lock()
	assert.Len(t, a.reasons, reasonsSize)
	assert.Len(t, a.order, reasonsSize)
	a.mu.Unlock()

	c := newClient(t, h, "")
	c.signIn("alice")
	res := c.get("/log")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, logSize, strings.Count(res.body, `class="reason reason-idle"`))
}

// TestTerminationLogIsTheUsersOwn: the log needs a signed-in user, shows
// only that user's endings, keeps the navigation, and does not reload
// itself (a reload is activity: it would keep the session alive).
func TestTerminationLogIsTheUsersOwn(t *testing.T) {
	a, h := newTestApp(t, appConfig{})

	anon := newClient(t, h, "")
	res := anon.get("/log")
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/signin", res.Header.Get("Location"))

	alice, bob := newClient(t, h, firefoxWindows), newClient(t, h, chromeMac)
	token := bob.signIn("bob")
	alice.signIn("alice")
	res = bob.do(http.MethodPost, "/signout", url.Values{"csrf": {token}}, nil)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	waitForEnding(t, a, "bob", "logout")
	bob.signIn("bob")

	res = alice.get("/log")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, res.body, "None of your sessions has ended yet.")
	assert.NotContains(t, res.body, "Chrome 120 on macOS", "bob's ending is not alice's business")
	assert.Contains(t, res.body, `href="/devices"`, "the navigation is there")
	assert.Contains(t, res.body, "Sign out alice")
	assert.NotContains(t, res.body, `http-equiv="refresh"`)

	res = bob.get("/log")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, 1, strings.Count(res.body, `class="reason reason-logout"`), res.body)
	assert.Contains(t, res.body, "Chrome 120 on macOS")
	assert.Contains(t, res.body, `href="/log"`)
}

func TestSignInPageStatesTheRules(t *testing.T) {
	for _, tc := range []struct {
		cfg  sessions.Config
		want []string
	}{
		{sessions.Config{}, []string{"after <strong>30 minutes</strong> without activity", "on <strong>5</strong> devices at a time", "signs out the one used least recently"}},
		{sessions.Config{IdleTimeout: 2 * time.Second, MaxSessionsPerUser: 1}, []string{"after <strong>2 seconds</strong> without activity", "on <strong>1</strong> device at a time"}},
		{sessions.Config{IdleTimeout: 90 * time.Second, MaxSessionsPerUser: sessions.Unlimited}, []string{"after <strong>90 seconds</strong> without activity", "on any number of devices"}},
	} {
		_, h := newTestApp(t, appConfig{Sessions: tc.cfg})
		res := newClient(t, h, "").get("/signin")
		require.Equal(t, http.StatusOK, res.StatusCode)
		for _, w := range tc.want {
			assert.Contains(t, res.body, w)
		}
	}
}

func TestDescribeDevice(t *testing.T) {
	for ua, want := range map[string]string{
		firefoxWindows: "Firefox 128 on Windows",
		chromeMac:      "Chrome 120 on macOS",
		safariIPhone:   "Safari 17 on iOS",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36":                  "Headless Chrome 156 on Linux",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0":  "Edge 124 on Windows",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36":          "Chrome 124 on Android",
		"Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1": "Safari 17 on iPadOS",
		"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36":                 "Chrome 124 on ChromeOS",
		"curl/7.88.1":        "curl 7",
		"Go-http-client/1.1": "Go HTTP client 1",
		"something else":     "Unknown browser",
		"":                   "Unknown device",
	} {
		assert.Equal(t, want, describeDevice(ua), ua)
	}
}

func TestParseKeys(t *testing.T) {
	k32 := strings.Repeat("ab", 32)
	k64 := strings.Repeat("cd", 64)
	keys, err := parseKeys("# signing key first\n" + k32 + "\n\n" + k64 + "\n")
	require.NoError(t, err)
	require.Len(t, keys, 2)
	assert.Len(t, keys[0], 32)
	assert.Len(t, keys[1], 64)

	keys, err = parseKeys(k32 + "," + k64)
	require.NoError(t, err)
	assert.Len(t, keys, 2)

	keys, err = parseKeys("")
	require.NoError(t, err)
	assert.Empty(t, keys)

	_, err = parseKeys("abcd")
	assert.ErrorIs(t, err, errKeyLength)
	_, err = parseKeys("zz" + k32[2:])
	assert.ErrorContains(t, err, "key 1 is not hex")
}
