// Command quickstart is the README's net/http quick start, verbatim
// (TestReadmeSnippets keeps the two equal): sign in as any user with the
// password "demo" on http://127.0.0.1:8080.
//
// README:begin quickstart
package main

import (
	"fmt"
	"html"
	"log"
	"net/http"
	"time"

	"github.com/tokyopredictor/sessions"
)

func main() {
	m, err := sessions.NewManager(sessions.Config{
		IdleTimeout: 30 * time.Minute,
		// Keys: [][]byte{key}, // 32 or 64 secret random bytes; required with a shared store
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close() // ends the memory store's sessions and waits for their hooks

	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: m.Middleware(routes(m))}
	log.Print(srv.ListenAndServe())
}

func routes(m *sessions.Manager) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<form method="post" action="/login">
<input name="user" placeholder="user"> <input name="password" type="password" placeholder="password: demo">
<button>Sign in</button></form>`)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		user := r.PostFormValue("user")
		if !checkPassword(user, r.PostFormValue("password")) {
			http.Error(w, "unknown user or wrong password", http.StatusUnauthorized)
			return
		}
		// A new session ID at every login (fixation defence); sets the cookie.
		if _, err := m.Start(w, r, user, nil); err != nil {
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s, ok := sessions.FromContext(r.Context())
		if !ok {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		v, _ := s.Get("visits")
		visits, _ := v.(int) // a value reads back with the type it was set with
		s.Set("visits", visits+1)
		fmt.Fprintf(w, `Hello %s, visit %d. <form method="post" action="/logout"><button>Sign out</button></form>`,
			html.EscapeString(s.UserID()), visits+1)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		_ = m.End(w, r) // ends the session server-side and expires the cookie
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})
	return mux
}

// checkPassword stands for your own check (a slow salted hash per user).
func checkPassword(user, password string) bool { return user != "" && password == "demo" }

// README:end
