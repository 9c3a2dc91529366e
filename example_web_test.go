package sessions_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/tokyopredictor/sessions"
)

// "Remember me" chosen per login: with Cookie.MaxAge set, a login is
// persistent unless the user leaves the box unticked, which makes its
// cookie a browser-session cookie (no Max-Age).
func ExampleManager_RememberMe() {
	m, err := sessions.NewManager(sessions.Config{
		IdleTimeout: 7 * 24 * time.Hour,
		Cookie:      sessions.CookieConfig{Insecure: true, MaxAge: 30 * 24 * time.Hour},
	})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if _, err := m.Start(w, r, r.FormValue("user"), nil); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		if err := m.RememberMe(w, r, r.FormValue("remember") == "on"); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	h := m.Middleware(mux)
	login := func(form string) string {
		r := httptest.NewRequest("POST", "/login", strings.NewReader(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		c := w.Result().Cookies()
		return fmt.Sprintf("%d cookie(s), the last with MaxAge %d", len(c), c[len(c)-1].MaxAge)
	}
	fmt.Println("ticked:  ", login("user=alice&remember=on"))
	fmt.Println("unticked:", login("user=bob"))
	// Output:
	// ticked:   1 cookie(s), the last with MaxAge 2592000
	// unticked: 1 cookie(s), the last with MaxAge 0
}

// An API client sends its session token in a header instead of a cookie;
// the token is verified exactly as a cookie is.
func ExampleWithTokenHeader() {
	m, err := sessions.NewManager(sessions.Config{}, sessions.WithTokenHeader("X-Session-Token"))
	if err != nil {
		panic(err)
	}
	defer m.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/login", func(w http.ResponseWriter, r *http.Request) {
		if _, err := m.Start(w, r, "alice", nil); err != nil { // also sets X-Session-Token
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("GET /api/me", func(w http.ResponseWriter, r *http.Request) {
		s, ok := sessions.FromContext(r.Context())
		if !ok {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, s.UserID())
	})
	h := m.Middleware(mux)

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "https://api.example.com/api/login", nil))
	token := w.Header().Get("X-Session-Token")

	for _, tok := range []string{token, token[:len(token)-2] + "xx"} {
		r := httptest.NewRequest("GET", "https://api.example.com/api/me", nil)
		r.Header.Set("X-Session-Token", tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
	}
	// Output:
	// 200 alice
	// 401 no session
}
