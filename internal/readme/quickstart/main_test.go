package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tokyopredictor/sessions"
)

// TestQuickStart walks the README's quick start as a browser would: the
// anonymous home page sends to a login page that is a page (not another
// redirect), a wrong password is refused, a right one signs in, the visit
// counter survives across requests, and logging out ends the session.
func TestQuickStart(t *testing.T) {
	m, err := sessions.NewManager(sessions.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h := m.Middleware(routes(m))

	var cookie *http.Cookie
	do := func(method, path string, form url.Values) (*http.Response, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		r := httptest.NewRequest(method, "http://127.0.0.1:8080"+path, body)
		if form != nil {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if cookie != nil {
			r.AddCookie(cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		res := w.Result()
		for _, c := range res.Cookies() {
			if c.MaxAge < 0 {
				cookie = nil
			} else {
				cookie = c
			}
		}
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	expect := func(res *http.Response, status int, location string) {
		t.Helper()
		if res.StatusCode != status || res.Header.Get("Location") != location {
			t.Fatalf("got %d Location %q, want %d Location %q", res.StatusCode, res.Header.Get("Location"), status, location)
		}
	}

	res, _ := do("GET", "/", nil)
	expect(res, http.StatusSeeOther, "/login")
	res, body := do("GET", "/login", nil)
	expect(res, http.StatusOK, "")
	if !strings.Contains(body, `<form method="post" action="/login">`) {
		t.Fatalf("GET /login is not the login page: %q", body)
	}
	res, _ = do("GET", "/nowhere", nil)
	expect(res, http.StatusNotFound, "")

	res, _ = do("POST", "/login", url.Values{"user": {"alice"}, "password": {"wrong"}})
	expect(res, http.StatusUnauthorized, "")
	if cookie != nil {
		t.Fatal("a failed login set a cookie")
	}
	res, _ = do("POST", "/login", url.Values{"user": {"alice"}, "password": {"demo"}})
	expect(res, http.StatusSeeOther, "/")
	if cookie == nil || cookie.Name != "__Host-session" || !cookie.Secure || !cookie.HttpOnly {
		t.Fatalf("login cookie: %v", cookie)
	}
	for _, want := range []string{"Hello alice, visit 1.", "Hello alice, visit 2."} {
		res, body = do("GET", "/", nil)
		expect(res, http.StatusOK, "")
		if !strings.HasPrefix(body, want) {
			t.Fatalf("home page: %q, want it to start with %q", body, want)
		}
	}

	old := cookie
	res, _ = do("POST", "/logout", nil)
	expect(res, http.StatusSeeOther, "/login")
	if cookie != nil {
		t.Fatal("logout did not expire the cookie")
	}
	if n := m.Stats().ActiveSessions; n != 0 {
		t.Fatalf("%d sessions live after logout", n)
	}
	cookie = old // a copy of the cookie is dead too
	res, _ = do("GET", "/", nil)
	expect(res, http.StatusSeeOther, "/login")
}
