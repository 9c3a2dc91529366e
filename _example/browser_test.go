package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tokyopredictor/sessions"
)

// chromiumPath is Debian's Chromium (apt-get install -y chromium).
const chromiumPath = "/usr/bin/chromium"

// TestBrowser drives the app with headless Chromium, which enforces what
// httptest cannot: cookie prefixes, Secure, HttpOnly, SameSite. Each
// "device" is a separate browser context (its own cookie jar) of one
// browser that runs with a fresh profile directory.
//
// The screenshot of "Your devices" goes to the test's temporary directory,
// or to $SCREENSHOT_DIR when set (to keep it).
func TestBrowser(t *testing.T) {
	browser := startBrowser(t)
	t.Run("devices", func(t *testing.T) { testDevicesInBrowser(t, browser) })
	t.Run("idle", func(t *testing.T) { testIdleInBrowser(t, browser) })
}

// startBrowser starts headless Chromium for the test and returns its
// chromedp context. Without Chromium the test skips, except in CI.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s: %v; CI must install it: apt-get install -y chromium", chromiumPath, err)
		}
		t.Skipf("%s not found; to run the browser test: apt-get install -y chromium", chromiumPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // the test may run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true), // /dev/shm is small in containers
		chromedp.WindowSize(1100, 720),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(cancelAlloc) // stops Chromium and waits for it
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	require.NoError(t, chromedp.Do(browser), "starting %s", chromiumPath)
	return browser
}

// device is one browser context: its own cookies, its own tab.
type device struct {
	t    *testing.T
	name string
	base string
	ctx  context.Context
}

// newDevice opens a new browser context on base; a non-empty ua overrides
// the User-Agent, so the devices look different on "Your devices".
func newDevice(t *testing.T, browser context.Context, base, name, ua string) *device {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if ua != "" {
		_, err := chromedp.Call(ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua})
		require.NoError(t, err, name)
	} else {
		require.NoError(t, chromedp.Do(ctx), name)
	}
	return &device{t: t, name: name, base: base, ctx: ctx}
}

// open navigates to path on the app and returns the page it landed on,
// after any redirect: "signin", "home", "devices", ...
func (d *device) open(path string) string {
	d.t.Helper()
	return d.visit(d.base + path)
}

// visit navigates to url and returns the page it landed on.
func (d *device) visit(url string) string {
	d.t.Helper()
	require.NoError(d.t, chromedp.Do(d.ctx, chromedp.Navigate(url)), "%s: open %s", d.name, url)
	return d.page()
}

// click clicks the element sel, which submits a form, waits for the page
// the browser lands on and returns its name.
func (d *device) click(sel string) string {
	d.t.Helper()
	_, err := chromedp.Run(d.ctx, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)))
	require.NoError(d.t, err, "%s: click %s", d.name, sel)
	return d.page()
}

func (d *device) page() string {
	d.t.Helper()
	id := eval[string](d, `document.querySelector("main").id`)
	return strings.TrimPrefix(id, "page-")
}

func eval[T any](d *device, js string) T {
	d.t.Helper()
	v, err := chromedp.Run(d.ctx, chromedp.Evaluate[T](js))
	require.NoError(d.t, err, "%s: %s", d.name, js)
	return v
}

// text returns the text of the first element sel matches, "" if none.
func (d *device) text(sel string) string {
	d.t.Helper()
	return eval[string](d, `(document.querySelector(`+jsString(sel)+`) || {innerText: ""}).innerText`)
}

func jsString(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

func (d *device) signIn(user string) {
	d.t.Helper()
	require.Equal(d.t, "signin", d.open("/signin"), d.name)
	require.NoError(d.t, chromedp.Do(d.ctx,
		chromedp.SetValue(chromedp.CSS("#user"), user, chromedp.NodeVisible),
		chromedp.SendKeys(chromedp.CSS("#password"), demoPassword, chromedp.NodeVisible),
	), d.name)
	require.Equal(d.t, "home", d.click("#signin"), "%s: signed in as %s", d.name, user)
	require.Equal(d.t, user, d.text("#user"))
}

// cookies returns the cookies the browser keeps for the app, read through
// the DevTools protocol (document.cookie cannot see HttpOnly ones).
func (d *device) cookies() []*network.Cookie {
	d.t.Helper()
	res, err := chromedp.Call(d.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{d.base + "/"}})
	require.NoError(d.t, err, d.name)
	return res.Cookies
}

func (d *device) screenshot(file string) {
	d.t.Helper()
	png, err := chromedp.Run(d.ctx, chromedp.CaptureScreenshot())
	require.NoError(d.t, err)
	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		dir = d.t.TempDir()
	}
	path := filepath.Join(dir, file)
	require.NoError(d.t, os.WriteFile(path, png, 0o644))
	d.t.Logf("screenshot of %s: %s", d.page(), path)
}

// startServer serves the app on a loopback port for the browser, with one
// test endpoint beside it: /_test/cookie answers a page named
// "cookie-present" or "cookie-absent" after whether the request carried the
// session cookie.
func startServer(t *testing.T, cfg appConfig) (*app, string) {
	t.Helper()
	a, h := newTestApp(t, cfg)
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("/_test/cookie", func(w http.ResponseWriter, r *http.Request) {
		state := "absent"
		if _, err := r.Cookie(a.cookieName); err == nil {
			state = "present"
		}
		fmt.Fprintf(w, `<!doctype html><main id="page-cookie-%s">%s %s</main>`, state, r.Method, state)
	})
	srv := httptest.NewServer(mux) // 127.0.0.1:0
	t.Cleanup(srv.Close)
	return a, srv.URL
}

// startOtherSite serves, on another site (http://localhost:port, while the
// app is on http://127.0.0.1:port), a page with a form that posts to the
// app's /_test/cookie and a link to it.
func startOtherSite(t *testing.T, appBase string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `<!doctype html><main id="page-other-site">
<form method="post" action="%[1]s/_test/cookie"><button id="post">post</button></form>
<a id="get" href="%[1]s/_test/cookie">get</a></main>`, appBase)
	}))
	t.Cleanup(srv.Close)
	return strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
}

func testDevicesInBrowser(t *testing.T, browser context.Context) {
	a, base := startServer(t, appConfig{Sessions: sessions.Config{MaxSessionsPerUser: 2}})
	laptop := newDevice(t, browser, base, "laptop", "") // Chromium's own User-Agent
	desktop := newDevice(t, browser, base, "desktop", firefoxWindows)

	// The sign-in page states the rules a user is about to live by.
	require.Equal(t, "signin", laptop.open("/signin"))
	assert.Contains(t, laptop.text("#rules"), "signed out after 30 minutes without activity")
	assert.Contains(t, laptop.text("#rules"), "on 2 devices at a time")

	// Signing in sets the session cookie; Chromium keeps it with its
	// __Host- prefix (Secure, Path=/, no Domain) on http://127.0.0.1,
	// which it treats as a secure context.
	laptop.signIn("alice")
	cookies := laptop.cookies()
	require.Len(t, cookies, 1)
	c := cookies[0]
	assert.Equal(t, "__Host-session", c.Name)
	assert.True(t, c.Secure, "Secure")
	assert.True(t, c.HTTPOnly, "HttpOnly")
	assert.Equal(t, network.CookieSameSiteLax, c.SameSite)
	assert.Equal(t, "/", c.Path)
	assert.Equal(t, "127.0.0.1", c.Domain, "host-only")
	assert.True(t, c.Session, "a browser-session cookie")
	assert.Empty(t, eval[string](laptop, "document.cookie"), "HttpOnly: scripts cannot read the session cookie")

	ss := userSessions(t, a, "alice")
	require.Len(t, ss, 1)
	laptopID := idHash(ss[0].ID())
	assert.Equal(t, laptopID, laptop.text("#session-id"))
	assert.NotContains(t, eval[string](laptop, "document.documentElement.outerHTML"), ss[0].ID(), "the raw ID never reaches the page")

	// SameSite=Lax: a form on another site that posts to the app goes
	// without the cookie; a link from it (top-level GET) carries it.
	other := startOtherSite(t, base)
	require.Equal(t, "other-site", laptop.visit(other))
	assert.Equal(t, "cookie-absent", laptop.click("#post"), "cross-site POST")
	require.Equal(t, "other-site", laptop.visit(other))
	assert.Equal(t, "cookie-present", laptop.click("#get"), "cross-site top-level GET")

	// Two browser contexts as the same user both appear on "Your devices".
	desktop.signIn("alice")
	desktopID := sessionOf(t, a, "alice", firefoxWindows)
	require.Equal(t, "devices", laptop.open("/devices"))
	rows := eval[[]string](laptop, `[...document.querySelectorAll("tr.device")].map(r => r.innerText)`)
	require.Len(t, rows, 2)
	assert.Contains(t, rows[0], "Headless Chrome")
	assert.Contains(t, rows[0], "this device")
	assert.Contains(t, rows[0], laptopID)
	assert.Contains(t, rows[1], "Firefox 128 on Windows")
	assert.NotContains(t, rows[1], "this device")
	assert.Contains(t, rows[1], "127.0.0.1")
	laptop.screenshot("devices.png")

	// Signing out the other device sends it to sign-in on its next
	// navigation, and tells it why.
	require.Equal(t, "devices", laptop.click("tr.device:not(.current) button"))
	assert.Contains(t, laptop.text("#flash"), "Signed out 1 other device")
	assert.Len(t, eval[[]string](laptop, `[...document.querySelectorAll("tr.device")].map(r => r.innerText)`), 1)
	assert.Equal(t, "terminated", waitForSession(t, a, desktopID).Reason)
	require.Equal(t, "signin", desktop.open("/devices"))
	assert.Contains(t, desktop.text("#flash"), "signed out on this device from another of your devices")
	assert.Empty(t, desktop.cookies(), "the dead session's cookie was expired")

	// "Your sign-outs", reached from the navigation, says which device was
	// signed out and why.
	require.Equal(t, "log", laptop.click(`nav a[href="/log"]`))
	rows = eval[[]string](laptop, `[...document.querySelectorAll("#log tbody tr")].map(r => r.innerText)`)
	require.NotEmpty(t, rows)
	assert.Contains(t, rows[0], desktopID)
	assert.Contains(t, rows[0], "Firefox 128 on Windows")
	assert.Contains(t, rows[0], "terminated")
	assert.Contains(t, laptop.text("nav"), "Your devices", "the log keeps the navigation")

	// With a limit of 2, a third device signs out the least recently
	// active one: the laptop, idle since it signed the desktop out.
	desktop.signIn("alice")
	phone := newDevice(t, browser, base, "phone", safariIPhone)
	phone.signIn("alice")
	assert.Equal(t, "evicted", waitForSession(t, a, laptopID).Reason)
	require.Equal(t, "signin", laptop.open("/"))
	assert.Contains(t, laptop.text("#flash"), "signed in on 2 devices at a time")
	assert.Contains(t, laptop.text("#flash"), "used least recently")
	assert.Equal(t, "home", desktop.open("/"))
	assert.Equal(t, "home", phone.open("/"))
}

func testIdleInBrowser(t *testing.T, browser context.Context) {
	const idle = 2 * time.Second
	a, base := startServer(t, appConfig{Sessions: sessions.Config{IdleTimeout: idle, CleanupInterval: 100 * time.Millisecond}})
	tablet := newDevice(t, browser, base, "tablet", chromeMac)
	start := time.Now()
	tablet.signIn("bob")
	assert.Regexp(t, `^[12]s$`, tablet.text("#time-left"))

	// Leave the page alone until the sweeper ends the session; the
	// termination log shows it (polled with a deadline).
	e := waitForEnding(t, a, "bob", "idle")
	assert.GreaterOrEqual(t, e.At.Sub(start), idle, "not ended before the idle timeout")

	require.Equal(t, "signin", tablet.open("/devices"))
	assert.Contains(t, tablet.text("#flash"), "after 2s without activity")
	assert.Empty(t, tablet.cookies())
}
