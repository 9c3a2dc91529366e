package sessions_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"

	"github.com/tokyopredictor/sessions"
)

// A "your devices" page: UserSessions lists the user's sessions with the
// browser that started each, and Terminate signs one of them out. The page
// names a session by a short hash of its ID, never by the ID, which is a
// secret. (A real page also checks a CSRF token on the form, as the
// example app in _example does.)
func ExampleManager_UserSessions() {
	m, err := sessions.NewManager(sessions.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	tag := func(id string) string {
		h := sha256.Sum256([]byte(id))
		return hex.EncodeToString(h[:4])
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// Check the password first; Start records the User-Agent and address.
		if _, err := m.Start(w, r, r.PostFormValue("user"), nil); err != nil {
			http.Error(w, "try again later", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("GET /devices", func(w http.ResponseWriter, r *http.Request) {
		s, ok := sessions.FromContext(r.Context())
		if !ok {
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		list, err := m.UserSessions(r.Context(), s.UserID())
		if err != nil {
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		}
		slices.SortFunc(list, func(a, b *sessions.Session) int { return a.CreatedAt().Compare(b.CreatedAt()) })
		for _, d := range list {
			this := ""
			if d.ID() == s.ID() {
				this = " (this device)"
			}
			fmt.Fprintf(w, "%s %s%s\n", tag(d.ID()), d.UserAgent(), this)
		}
	})
	mux.HandleFunc("POST /devices/signout", func(w http.ResponseWriter, r *http.Request) {
		s, ok := sessions.FromContext(r.Context())
		if !ok {
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		list, err := m.UserSessions(r.Context(), s.UserID()) // only this user's sessions
		if err != nil {
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		}
		for _, d := range list {
			if tag(d.ID()) == r.PostFormValue("device") && d.ID() != s.ID() {
				if err := m.Terminate(r.Context(), d.ID()); err != nil {
					http.Error(w, "try again later", http.StatusServiceUnavailable)
					return
				}
				fmt.Fprintln(w, "signed out", d.UserAgent())
			}
		}
	})
	h := m.Middleware(mux)

	// Two devices of alice, each with its own cookie.
	send := func(device *[]*http.Cookie, ua, method, path string, form url.Values) string {
		r := httptest.NewRequest(method, "https://example.com"+path, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("User-Agent", ua)
		for _, c := range *device {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if set := w.Result().Cookies(); len(set) > 0 {
			*device = set
		}
		b, _ := io.ReadAll(w.Result().Body)
		return string(b)
	}
	var laptop, phone []*http.Cookie
	send(&laptop, "Laptop", "POST", "/login", url.Values{"user": {"alice"}})
	send(&phone, "Phone", "POST", "/login", url.Values{"user": {"alice"}})

	page := send(&laptop, "Laptop", "GET", "/devices", nil)
	var phoneTag string
	for _, line := range strings.Split(strings.TrimSpace(page), "\n") {
		tag, device, _ := strings.Cut(line, " ")
		fmt.Println(device) // the tags change from run to run
		if device == "Phone" {
			phoneTag = tag
		}
	}
	fmt.Print(send(&laptop, "Laptop", "POST", "/devices/signout", url.Values{"device": {phoneTag}}))
	fmt.Print(send(&phone, "Phone", "GET", "/devices", nil))
	fmt.Println(strings.Count(send(&laptop, "Laptop", "GET", "/devices", nil), "\n"), "device left")
	// Output:
	// Laptop (this device)
	// Phone
	// signed out Phone
	// sign in first
	// 1 device left
}
