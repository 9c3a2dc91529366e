package sessions_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"github.com/tokyopredictor/sessions"
)

// Renewing the session ID when a user's privileges change: the session goes
// on with its data, creation time and absolute deadline; only the ID (and
// so the cookie) is new, and no termination hook runs.
func ExampleManager_Renew() {
	m, err := sessions.NewManager(sessions.Config{Cookie: sessions.CookieConfig{Insecure: true}})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	var ended atomic.Int32
	m.OnTerminate(func(sessions.Event) { ended.Add(1) })

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if _, err := m.Start(w, r, "alice", map[string]any{"role": "user", "cart": 2}); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("POST /sudo", func(w http.ResponseWriter, r *http.Request) {
		s, ok := sessions.FromContext(r.Context())
		if !ok {
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		// ... check the password again, then raise the privilege ...
		s.Set("role", "admin")
		renewed, err := m.Renew(w, r) // new ID and cookie; same session
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		cart, _ := sessions.Value[int](renewed, "cart")
		role, _ := sessions.Value[string](renewed, "role")
		fmt.Println("renewed:", renewed.UserID(), role, cart, renewed.CreatedAt().Equal(s.CreatedAt()))
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := sessions.FromContext(r.Context()); !ok {
			http.Error(w, "no session", http.StatusUnauthorized)
		}
	})
	h := m.Middleware(mux)
	send := func(method, path string, c *http.Cookie) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		if c != nil {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	before := send("POST", "/login", nil).Result().Cookies()[0]
	after := send("POST", "/sudo", before).Result().Cookies()[0]
	fmt.Println("old cookie:", send("GET", "/", before).Code)
	fmt.Println("new cookie:", send("GET", "/", after).Code)
	if _, err := m.Cleanup(context.Background()); err != nil { // returns once pending hooks have run
		panic(err)
	}
	fmt.Println("sessions:", m.Stats().ActiveSessions, "hooks run:", ended.Load())
	// Output:
	// renewed: alice admin 2 true
	// old cookie: 401
	// new cookie: 200
	// sessions: 1 hooks run: 0
}
