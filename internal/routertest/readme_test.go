package routertest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/labstack/echo/v4"

	"github.com/tokyopredictor/sessions"
)

// The README's chi and echo snippets, between README markers (see the
// root's readme_test.go), run by TestReadmeRouters.

func readmeChi(m *sessions.Manager, home http.HandlerFunc) http.Handler {
	// README:begin chi
	r := chi.NewRouter()
	r.Use(m.Middleware)
	r.Get("/", home) // handlers as with net/http: sessions.FromContext(r.Context())
	// README:end
	return r
}

func readmeEcho(m *sessions.Manager) http.Handler {
	// README:begin echo
	e := echo.New()
	e.Use(echo.WrapMiddleware(m.Middleware))
	e.POST("/login", func(c echo.Context) error {
		// check the password first
		if _, err := m.Start(c.Response(), c.Request(), c.FormValue("user"), nil); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, "/")
	})
	e.GET("/", func(c echo.Context) error {
		s, ok := sessions.FromContext(c.Request().Context())
		if !ok {
			return c.Redirect(http.StatusSeeOther, "/login")
		}
		return c.String(http.StatusOK, "hello "+s.UserID())
	})
	// README:end
	return e
}

func TestReadmeRouters(t *testing.T) {
	checkNoLeaks(t)
	m, _ := startManager(t, sessions.Config{})
	send := func(h http.Handler, method, path string, form url.Values, cookies []*http.Cookie) *http.Response {
		var r *http.Request
		if form != nil {
			r = httptest.NewRequest(method, "https://example.com"+path, strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			r = httptest.NewRequest(method, "https://example.com"+path, nil)
		}
		for _, c := range cookies {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Result()
	}

	e := readmeEcho(m)
	res := send(e, "GET", "/", nil, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
		t.Fatalf("echo, no session: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	res = send(e, "POST", "/login", url.Values{"user": {"alice"}}, nil)
	if res.StatusCode != http.StatusSeeOther || len(res.Cookies()) != 1 {
		t.Fatalf("echo login: %d, cookies %v", res.StatusCode, res.Cookies())
	}
	cookies := res.Cookies()
	if body := bodyOf(t, send(e, "GET", "/", nil, cookies)); body != "hello alice" {
		t.Fatalf("echo home: %q", body)
	}

	c := readmeChi(m, func(w http.ResponseWriter, r *http.Request) {
		if s, ok := sessions.FromContext(r.Context()); ok {
			w.Write([]byte("chi " + s.UserID()))
		}
	})
	if body := bodyOf(t, send(c, "GET", "/", nil, cookies)); body != "chi alice" {
		t.Fatalf("chi home with the cookie echo set: %q", body)
	}
}

func bodyOf(t *testing.T, res *http.Response) string {
	t.Helper()
	var b strings.Builder
	if _, err := io.Copy(&b, res.Body); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
