package sessions

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/securecookie"
)

// maxCookieLen caps the cookie value we accept or issue, in bytes.
const maxCookieLen = 4096

// errBadCookie marks a cookie that is not one this manager issued: forged,
// tampered, signed by an unknown key, malformed, empty or oversized.
var errBadCookie = errors.New("sessions: invalid session cookie")

// cookieCodec signs session IDs into cookie values and verifies them. The
// value holds only the ID; the absolute deadline and everything else live
// server-side. Keys[0] signs; every key verifies.
type cookieCodec struct {
	cfg    CookieConfig
	codecs []securecookie.Codec
}

func newCookieCodec(cfg CookieConfig, keys [][]byte) *cookieCodec {
	c := &cookieCodec{cfg: cfg}
	for _, k := range keys {
		sc := securecookie.New(k, nil)
		sc.SetSerializer(securecookie.NopEncoder{})
		sc.MaxAge(0) // expiry is enforced server-side, not by the cookie's timestamp
		sc.MaxLength(maxCookieLen)
		c.codecs = append(c.codecs, sc)
	}
	return c
}

// encode returns a signed cookie value for id.
func (c *cookieCodec) encode(id uuid.UUID) (string, error) {
	return c.codecs[0].Encode(c.cfg.Name, id[:])
}

// decode verifies value and returns the ID it carries, or errBadCookie.
func (c *cookieCodec) decode(value string) (uuid.UUID, error) {
	if value == "" || len(value) > maxCookieLen {
		return uuid.UUID{}, errBadCookie
	}
	var b []byte
	if err := securecookie.DecodeMulti(c.cfg.Name, value, &b, c.codecs...); err != nil || len(b) != len(uuid.UUID{}) {
		return uuid.UUID{}, errBadCookie
	}
	return uuid.UUID(b), nil
}

// cookie returns the session cookie carrying value.
func (c *cookieCodec) cookie(value string) *http.Cookie {
	ck := &http.Cookie{
		Name:     c.cfg.Name,
		Value:    value,
		Path:     c.cfg.Path,
		Domain:   c.cfg.Domain,
		Secure:   !c.cfg.Insecure,
		HttpOnly: true,
		SameSite: c.cfg.SameSite,
	}
	if c.cfg.MaxAge > 0 { // whole seconds, rounded up so a short MaxAge still persists
		ck.MaxAge = int((c.cfg.MaxAge + time.Second - 1) / time.Second)
	}
	return ck
}

// expire tells the client to drop its session cookie.
func (c *cookieCodec) expire(w http.ResponseWriter) {
	ck := c.cookie("")
	ck.MaxAge = -1
	http.SetCookie(w, ck)
}

// unverified reads the ID and the MAC prefix out of a cookie value without
// checking the signature, and without allocating. The result only selects a
// session whose remembered MAC prefix it must then match (see remembers): a
// value is accepted that way only if the same ID and MAC were verified
// before. Anything that does not parse goes to the full check.
func unverified(value string) (id uuid.UUID, mac [16]byte, ok bool) {
	var buf [512]byte
	if base64.URLEncoding.DecodedLen(len(value)) > len(buf) {
		return id, mac, false
	}
	n, err := base64.URLEncoding.Decode(buf[:], []byte(value))
	if err != nil {
		return id, mac, false
	}
	b := buf[:n] // "date|base64(id)|mac"
	i := bytes.IndexByte(b, '|')
	if i < 0 {
		return id, mac, false
	}
	b = b[i+1:]
	j := bytes.IndexByte(b, '|')
	if j < 0 || len(b)-j-1 < len(mac) {
		return id, mac, false
	}
	var idBuf [32]byte
	m, err := base64.URLEncoding.Decode(idBuf[:], b[:j])
	if err != nil || m != len(id) {
		return id, mac, false
	}
	copy(id[:], idBuf[:m])
	copy(mac[:], b[j+1:])
	return id, mac, true
}

// remembers reports whether s was reached before through a verified cookie
// with this MAC prefix.
func (s *Session) remembers(mac [16]byte) bool {
	return s.verified.Load() && subtle.ConstantTimeCompare(s.mac[:], mac[:]) == 1
}

// remember records the MAC prefix of a cookie value that verified for s.
// Only the first is kept: the fields are written once.
func (s *Session) remember(value string) {
	if s.verified.Load() {
		return
	}
	if _, mac, ok := unverified(value); ok {
		s.mu.Lock()
		if !s.verified.Load() {
			s.mac = mac
			s.verified.Store(true)
		}
		s.mu.Unlock()
	}
}

// readCookie returns the value of the first cookie called name in r's
// Cookie headers, without allocating.
func readCookie(r *http.Request, name string) (string, bool) {
	for _, line := range r.Header["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			part = strings.TrimSpace(part)
			v, found := strings.CutPrefix(part, name)
			if !found || !strings.HasPrefix(v, "=") {
				continue
			}
			v = v[1:]
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, true
		}
	}
	return "", false
}
