package sessions_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/tokyopredictor/sessions"
)

// The Examples in this file hold README.md's snippets between README
// markers (see readme_test.go): they compile, and run, what the README
// shows.

// A hook that revokes what a session held when it ends, whatever ends it.
func ExampleManager_OnTerminate_revokeToken() {
	m, err := sessions.NewManager(sessions.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	revokeToken := func(token any) { fmt.Println("revoked", token) } // yours

	// README:begin hooks
	m.OnTerminate(func(ev sessions.Event) {
		slog.Info("session ended", "user", ev.UserID, "reason", ev.Reason)
		revokeToken(ev.Data["auth_token"])
	})
	// README:end

	ctx := context.Background()
	s, err := m.Create(ctx, "alice", map[string]any{"auth_token": "tok-123"})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = m.Terminate(ctx, s.ID())
	m.Close() // waits for the hooks
	// Output:
	// revoked tok-123
}

// The original system's configuration file, with the keys from elsewhere.
func ExampleLoadConfig_keys() {
	keys := [][]byte{[]byte("0123456789abcdef0123456789abcdef")} // from your secret store

	// README:begin load-config
	cfg, err := sessions.LoadConfig("config/session_config.json")
	if err != nil {
		log.Fatal(err)
	}
	cfg.Keys = keys // secrets never come from the file
	m, err := sessions.NewManager(cfg)
	// README:end
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	fmt.Println(cfg.IdleTimeout, cfg.MaxSessionsPerUser, m.Stats().AutoCleanup)
	// Output:
	// 30m0s 5 true
}

// Two applications on one host (any ports: cookies do not tell ports
// apart) need distinct cookie names; with the default name each would
// take the other's cookie for a forged one and expire it, signing the
// user out of the other application.
func Example_twoAppsOnOneHost() {
	// README:begin two-apps
	shop, err := sessions.NewManager(sessions.Config{Cookie: sessions.CookieConfig{Name: "__Host-shop"}})
	if err != nil {
		log.Fatal(err)
	}
	admin, err := sessions.NewManager(sessions.Config{Cookie: sessions.CookieConfig{Name: "__Host-admin"}})
	// README:end
	if err != nil {
		fmt.Println(err)
		return
	}
	defer shop.Close()
	defer admin.Close()

	// The browser holds both cookies and sends both to both apps.
	var jar []*http.Cookie
	login := func(m *sessions.Manager, user string) {
		w := httptest.NewRecorder()
		m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := m.Start(w, r, user, nil); err != nil {
				fmt.Println(err)
			}
		})).ServeHTTP(w, httptest.NewRequest("POST", "https://example.com/login", nil))
		jar = append(jar, w.Result().Cookies()...)
	}
	whoami := func(m *sessions.Manager) string {
		r := httptest.NewRequest("GET", "https://example.com/", nil)
		for _, c := range jar {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s, ok := sessions.FromContext(r.Context()); ok {
				fmt.Fprint(w, s.UserID())
			}
		})).ServeHTTP(w, r)
		return fmt.Sprintf("%q, cookies expired: %d", w.Body.String(), len(w.Result().Cookies()))
	}
	login(shop, "alice")
	login(admin, "alice-admin")
	fmt.Println("shop:", whoami(shop))
	fmt.Println("admin:", whoami(admin))
	// Output:
	// shop: "alice", cookies expired: 0
	// admin: "alice-admin", cookies expired: 0
}

// README:begin real-ip
// realIP puts the client's address, as your reverse proxy reports it, in
// r.RemoteAddr, where Start finds it. Trust the header only from the proxy:
// any client can send one.
func realIP(proxy string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		if xff := r.Header.Get("X-Forwarded-For"); host == proxy && xff != "" {
			// The proxy appended the address it saw, last.
			client := strings.TrimSpace(xff[strings.LastIndexByte(xff, ',')+1:])
			r = r.Clone(r.Context())
			r.RemoteAddr = net.JoinHostPort(client, "0")
		}
		next.ServeHTTP(w, r)
	})
}

// README:end

// Behind a reverse proxy, every request comes from the proxy's address:
// a middleware in front of the session middleware (realIP above, or chi's
// middleware.RealIP) puts the client's address where Start records it,
// for a "your devices" page.
func Example_behindAProxy() {
	m, err := sessions.NewManager(sessions.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	login := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Start(w, r, "alice", nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Println("recorded address:", s.RemoteAddr())
	})
	h := realIP("10.0.0.2", m.Middleware(login))

	for _, from := range []string{"10.0.0.2:41000", "198.51.100.9:52000"} {
		r := httptest.NewRequest("POST", "https://example.com/login", nil)
		r.RemoteAddr = from
		r.Header.Set("X-Forwarded-For", "192.0.2.10, 203.0.113.7")
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	// Output:
	// recorded address: 203.0.113.7:0
	// recorded address: 198.51.100.9:52000
}
