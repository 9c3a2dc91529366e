package sessions_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/tokyopredictor/sessions"
)

func ExampleValue() {
	m, err := sessions.NewManager(sessions.Config{})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	s, err := m.Create(context.Background(), "alice", map[string]any{
		"name":      "Alice",
		"visits":    3,
		"signed_in": time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC),
	})
	if err != nil {
		panic(err)
	}

	name, _ := sessions.Value[string](s, "name")
	visits, _ := sessions.Value[int](s, "visits")
	since, _ := sessions.Value[time.Time](s, "signed_in")
	_, ok := sessions.Value[string](s, "visits") // an int is not a string
	fmt.Println(name, visits, since.Format(time.Kitchen), ok)
	// Output: Alice 3 9:00AM false
}

// A flash message: set by the request that saves a form, shown once by the
// page the browser is sent to next.
func ExamplePop() {
	m, err := sessions.NewManager(sessions.Config{Cookie: sessions.CookieConfig{Insecure: true}})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if _, err := m.Start(w, r, "alice", nil); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("POST /settings", func(w http.ResponseWriter, r *http.Request) {
		s, _ := sessions.FromContext(r.Context())
		s.Set("flash", "Settings saved.")
		http.Redirect(w, r, "/settings", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /settings", func(w http.ResponseWriter, r *http.Request) {
		s, _ := sessions.FromContext(r.Context())
		if msg, ok := sessions.Pop[string](s, "flash"); ok {
			fmt.Fprintln(w, msg)
		}
		fmt.Fprintln(w, "(settings form)")
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
	cookie := send("POST", "/login", nil).Result().Cookies()[0]
	send("POST", "/settings", cookie)
	fmt.Print(send("GET", "/settings", cookie).Body)
	fmt.Print(send("GET", "/settings", cookie).Body) // read once: gone on reload
	// Output:
	// Settings saved.
	// (settings form)
	// (settings form)
}
