package sessions_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"time"

	"github.com/tokyopredictor/sessions"
)

// The seed's basic example: create a session, keep data in it, read it
// back, record activity, and shut the manager down.
func ExampleManager_Create() {
	m, err := sessions.NewManager(sessions.Config{
		IdleTimeout:        30 * time.Minute,
		CleanupInterval:    5 * time.Minute,
		MaxSessionsPerUser: 5,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()

	s, err := m.Create(ctx, "usuario_001", map[string]any{"rol": "admin"})
	if err != nil {
		fmt.Println(err)
		return
	}
	s.Set("saldo", 1000)
	s.Set("ultima_apuesta", 50)

	saldo, _ := s.Get("saldo")
	fmt.Println("saldo:", saldo)

	s.Touch() // record activity: the idle timeout starts again

	same, err := m.Get(ctx, s.ID())
	if err != nil {
		fmt.Println(err)
		return
	}
	rol, _ := same.Get("rol")
	fmt.Println("user:", same.UserID(), "rol:", rol, "active:", same.Active())
	st := m.Stats()
	fmt.Println("active sessions:", st.ActiveSessions, "users:", st.UniqueUsers)

	// Close ends every session of the memory store, as the seed's shutdown.
	if err := m.Close(); err != nil {
		fmt.Println(err)
	}
	fmt.Println("active after Close:", s.Active())
	// Output:
	// saldo: 1000
	// user: usuario_001 rol: admin active: true
	// active sessions: 1 users: 1
	// active after Close: false
}

// The seed's advanced example: termination callbacks, and cleaning up
// sessions left idle. Cleanup sweeps now (here instead of the background
// sweeper) and returns once the hooks of what it ended have run.
func ExampleManager_OnTerminate() {
	const idle = 100 * time.Millisecond
	m, err := sessions.NewManager(sessions.Config{
		IdleTimeout:        idle,
		DisableAutoCleanup: true, // this example sweeps with Cleanup
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	// Hooks run off the caller's goroutine, one at a time, in the order
	// sessions ended.
	m.OnTerminate(func(ev sessions.Event) {
		fmt.Printf("ended (%s): %s, saldo %v\n", ev.Reason, ev.UserID, ev.Data["saldo"])
	})

	ctx := context.Background()
	player1, err := m.Create(ctx, "jugador_001", map[string]any{"saldo": 1000})
	if err != nil {
		fmt.Println(err)
		return
	}
	player2, err := m.Create(ctx, "jugador_002", map[string]any{"saldo": 500})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := m.Terminate(ctx, player2.ID()); err != nil {
		fmt.Println(err)
		return
	}

	// Leave jugador_001 idle past the timeout.
	for player1.IdleFor() <= idle {
		time.Sleep(idle / 10)
	}
	n, err := m.Cleanup(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("cleaned up:", n)
	fmt.Println("active sessions:", m.Stats().ActiveSessions)
	// Output:
	// ended (terminated): jugador_002, saldo 500
	// ended (idle): jugador_001, saldo 1000
	// cleaned up: 1
	// active sessions: 0
}

// The Middleware loads the session from the request's cookie; Start logs a
// user in and End logs out. Any net/http router works the same way: chi
// takes r.Use(m.Middleware), echo e.Use(echo.WrapMiddleware(m.Middleware)).
func ExampleManager_Middleware() {
	m, err := sessions.NewManager(sessions.Config{
		// Plain http for this example only: keep the default (a Secure
		// __Host- cookie) in production.
		Cookie: sessions.CookieConfig{Insecure: true},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// Check the credentials first; then:
		if _, err := m.Start(w, r, r.FormValue("user"), map[string]any{"saldo": 1000}); err != nil {
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "welcome")
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		s, ok := sessions.FromContext(r.Context())
		if !ok {
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		saldo, _ := s.Get("saldo")
		fmt.Fprintf(w, "%s, saldo %v\n", s.UserID(), saldo)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := m.End(w, r); err != nil {
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "bye")
	})

	srv := httptest.NewServer(m.Middleware(mux))
	defer srv.Close()

	jar, err := cookiejar.New(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	client := &http.Client{Jar: jar}
	for _, req := range []struct{ method, path string }{
		{"GET", "/whoami"},
		{"POST", "/login?user=usuario_001"},
		{"GET", "/whoami"},
		{"POST", "/logout"},
		{"GET", "/whoami"},
	} {
		r, err := http.NewRequest(req.method, srv.URL+req.path, nil)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp, err := client.Do(r)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %s: %d %s", req.method, req.path, resp.StatusCode, body)
	}
	// Output:
	// GET /whoami: 401 not logged in
	// POST /login?user=usuario_001: 200 welcome
	// GET /whoami: 200 usuario_001, saldo 1000
	// POST /logout: 200 bye
	// GET /whoami: 401 not logged in
}
