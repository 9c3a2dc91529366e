package sessions

import (
	"bytes"
	"encoding/base64"
	"errors"
	"hash/maphash"
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
	seed   maphash.Seed // for the sums of verified values (see remember)
}

func newCookieCodec(cfg CookieConfig, keys [][]byte) *cookieCodec {
	c := &cookieCodec{cfg: cfg, seed: maphash.MakeSeed()}
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
	if len(value) > maxCookieLen || !canonical(value) {
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

// unverified reads the ID out of a cookie value without checking the
// signature, and without allocating. The ID only selects a session that
// must then remember value (see remembers): a value is accepted that way
// only if the very same value verified before, under the same keys.
// Anything else goes to the full check.
func unverified(value string) (id uuid.UUID, ok bool) {
	// The value is base64("date|base64(id)|mac") with a decimal date: for
	// any date up to 11 digits the ID and the '|' after it lie in the first
	// 39 bytes, so only the characters that encode them are decoded.
	const prefix = 52 // characters, a multiple of 4: 39 bytes
	if len(value) <= prefix {
		return id, false // shorter than any value we issue
	}
	var buf [prefix / 4 * 3]byte
	n, err := base64.URLEncoding.Decode(buf[:], []byte(value[:prefix]))
	if err != nil {
		return id, false
	}
	b := buf[:n] // "date|base64(id)|" and the start of the MAC
	i := bytes.IndexByte(b, '|')
	if i < 0 {
		return id, false
	}
	b = b[i+1:]
	j := bytes.IndexByte(b, '|')
	if j != base64.URLEncoding.EncodedLen(len(id)) { // also keeps Decode within idBuf
		return id, false
	}
	var idBuf [32]byte
	m, err := base64.URLEncoding.Decode(idBuf[:], b[:j])
	if err != nil || m != len(id) {
		return id, false
	}
	copy(id[:], idBuf[:m])
	return id, true
}

// remembers reports whether value is exactly a cookie value that c
// verified for s before: it has the same keyed sum. The sum is a 64-bit
// maphash under c's random seed, which a client never sees, so another
// value, or a value another codec (another manager, other keys) verified,
// matches only by a 2^-63 chance, and only for the session whose ID it
// carries.
func (s *Session) remembers(c *cookieCodec, value string) bool {
	v := s.vsum.Load()
	return v != 0 && v == c.sum(value)
}

// remember records that c verified value for s. Only the first is kept.
func (s *Session) remember(c *cookieCodec, value string) {
	if s.vsum.Load() == 0 {
		s.vsum.CompareAndSwap(0, c.sum(value))
	}
}

// sum returns the keyed sum of a cookie value; never 0 (0 means none).
func (c *cookieCodec) sum(value string) uint64 { return maphash.String(c.seed, value) | 1 }

// base64URLValue maps each base64url character to its value plus one, and
// every other byte to 0.
var base64URLValue = func() (t [256]byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range len(alphabet) {
		t[alphabet[i]] = byte(i) + 1
	}
	return t
}()

// canonical reports whether value is padded base64url in the one form an
// encoder writes: alphabet characters only, padded to a multiple of 4, and
// the unused bits of the last character zero. securecookie's decoder is more
// lenient (it skips CR and LF and ignores unused bits), so without this
// check a value that differs from the issued one could still verify.
func canonical(value string) bool {
	if len(value) == 0 || len(value)%4 != 0 {
		return false
	}
	data := strings.TrimSuffix(value, "=")
	pad := len(value) - len(data)
	if pad == 1 && strings.HasSuffix(data, "=") {
		data, pad = data[:len(data)-1], 2
	}
	if len(data) < 2 {
		return false
	}
	for i := 0; i < len(data); i++ {
		if base64URLValue[data[i]] == 0 {
			return false
		}
	}
	last := base64URLValue[data[len(data)-1]] - 1
	switch pad {
	case 1: // three characters for two bytes: two unused bits
		return last&0x3 == 0
	case 2: // two characters for one byte: four unused bits
		return last&0xf == 0
	}
	return true
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
