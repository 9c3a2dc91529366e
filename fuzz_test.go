package sessions_test

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokyopredictor/sessions"
)

// FuzzCookie sends any string as the session cookie's value through the
// Middleware, on the memory store and on the generic Store path. Whatever
// the value, the Middleware must not panic, must not answer 5xx, and must
// find a session only for a value that carries a cookie the manager
// issued; on the generic path a value that does not carry one costs no
// store call.
//
// The cookie is value, or, when fromIssued is set, a cookie the manager
// issued in this process with its byte at pos (modulo its length) replaced
// by b, followed by value: keys and session IDs are random in each process,
// so a tampered live cookie can only be described this way. The seed
// corpus is in testdata/fuzz/FuzzCookie; run the fuzzer with
//
//	go test -run '^$' -fuzz FuzzCookie -fuzztime 30s .
func FuzzCookie(f *testing.F) {
	mem, err := sessions.NewManager(sessions.Config{
		Cookie:             sessions.CookieConfig{Insecure: true},
		DisableAutoCleanup: true,
	}, quiet())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = mem.Close() })
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		f.Fatal(err)
	}
	cs := &countingStore{inner: sessions.NewMemoryStore()}
	generic, err := sessions.NewManager(sessions.Config{
		Keys:               [][]byte{key},
		Cookie:             sessions.CookieConfig{Insecure: true},
		DisableAutoCleanup: true,
	}, quiet(), sessions.WithStore(cs))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = generic.Close() })

	type target struct {
		name   string
		h      http.Handler
		issued string
		cs     *countingStore
	}
	var targets []target
	for _, tg := range []struct {
		name string
		m    *sessions.Manager
		cs   *countingStore
	}{{"memory", mem, nil}, {"generic", generic, cs}} {
		_, ck := startCookie(f, tg.m, "alice")
		targets = append(targets, target{
			name:   tg.name,
			issued: ck.Value,
			cs:     tg.cs,
			h: tg.m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, ok := sessions.FromContext(r.Context()); ok {
					w.Header().Set("X-Session", "1")
				}
			})),
		})
	}
	issued := targets[0].issued
	f.Add("", true, uint16(0), issued[0])                        // the issued cookie itself
	f.Add("", true, uint16(len(issued)/2), byte('A'))            // a byte replaced
	f.Add("", true, uint16(len(issued)-2), byte('B'))            // unused bits of the last character
	f.Add("AAAA", true, uint16(0), issued[0])                    // appended to
	f.Add("\r\n", true, uint16(0), issued[0])                    // appended to
	f.Add(issued, false, uint16(0), byte(0))                     // a foreign cookie in a fuzz worker
	f.Add(strings.Repeat("A", 8<<10), false, uint16(0), byte(0)) // oversized

	f.Fuzz(func(t *testing.T, value string, fromIssued bool, pos uint16, b byte) {
		for _, tg := range targets {
			cookie := value
			if fromIssued {
				v := []byte(tg.issued)
				v[int(pos)%len(v)] = b
				cookie = string(v) + value
			}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Cookie", "session="+cookie)
			w := httptest.NewRecorder()
			var calls int64
			if tg.cs != nil {
				calls = tg.cs.calls.Load()
			}
			tg.h.ServeHTTP(w, r)

			if w.Code >= 500 {
				t.Fatalf("%s: status %d for cookie %q", tg.name, w.Code, cookie)
			}
			carries := strings.Contains(cookie, tg.issued)
			if w.Header().Get("X-Session") != "" && !carries {
				t.Fatalf("%s: a session for cookie %q, which the manager did not issue (it issued %q)", tg.name, cookie, tg.issued)
			}
			if tg.cs != nil && !carries && tg.cs.calls.Load() != calls {
				t.Fatalf("%s: cookie %q cost a store call", tg.name, cookie)
			}
		}
	})
}
