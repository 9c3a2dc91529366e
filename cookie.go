package sessions

import (
	"bytes"
	"encoding/base64"
	"errors"
	"hash/maphash"
	"net/http"
	"strings"
	"sync/atomic"
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
	cfg     CookieConfig
	codecs  []securecookie.Codec
	seed    maphash.Seed // for the sums of verified values (see remember)
	expired string       // the Set-Cookie value that expires the cookie
	// verified holds, for a Manager on a shared store, the sums of values
	// verified recently (see verifiedBefore); nil for the memory store.
	verified []atomic.Uint64
}

func newCookieCodec(cfg CookieConfig, keys [][]byte) *cookieCodec {
	c := &cookieCodec{cfg: cfg, seed: maphash.MakeSeed()}
	ck := c.cookie("")
	ck.MaxAge = -1
	c.expired = ck.String()
	for _, k := range keys {
		sc := securecookie.New(k, nil)
		sc.SetSerializer(securecookie.NopEncoder{})
		sc.MaxAge(0) // expiry is enforced server-side, not by the cookie's timestamp
		sc.MaxLength(maxCookieLen)
		c.codecs = append(c.codecs, sc)
	}
	return c
}

// flagBrowserSession, as the byte after the ID in a signed value, marks a
// cookie that its login chose to keep for the browser session only (see
// Manager.RememberMe) although Cookie.MaxAge is set. A value without it
// follows the configuration: persistent when MaxAge is set.
const flagBrowserSession = 1

// encode returns a signed value for id that follows the configured
// lifetime.
func (c *cookieCodec) encode(id uuid.UUID) (string, error) {
	return c.codecs[0].Encode(c.cfg.Name, id[:])
}

// encodeFor returns a signed value for id; browserSession marks it as a
// browser-session cookie when Cookie.MaxAge would make it persistent. The
// mark is signed with the ID, so the choice holds for as long as the
// cookie is re-issued.
func (c *cookieCodec) encodeFor(id uuid.UUID, browserSession bool) (string, error) {
	if !browserSession || c.cfg.MaxAge <= 0 {
		return c.encode(id)
	}
	var b [len(uuid.UUID{}) + 1]byte
	copy(b[:], id[:])
	b[len(id)] = flagBrowserSession
	return c.codecs[0].Encode(c.cfg.Name, b[:])
}

// decode verifies value and returns the ID it carries, or errBadCookie.
func (c *cookieCodec) decode(value string) (uuid.UUID, error) {
	if len(value) > maxCookieLen || !canonical(value) {
		return uuid.UUID{}, errBadCookie
	}
	var b []byte
	if err := securecookie.DecodeMulti(c.cfg.Name, value, &b, c.codecs...); err != nil {
		return uuid.UUID{}, errBadCookie
	}
	switch {
	case len(b) == len(uuid.UUID{}):
	case len(b) == len(uuid.UUID{})+1 && b[len(b)-1] == flagBrowserSession:
	default:
		return uuid.UUID{}, errBadCookie
	}
	return uuid.UUID(b[:len(uuid.UUID{})]), nil
}

// persistent reports whether a value issued by encode or encodeFor is a
// persistent cookie: Cookie.MaxAge is set and the login did not choose a
// browser-session cookie.
func (c *cookieCodec) persistent(value string) bool {
	if c.cfg.MaxAge <= 0 {
		return false
	}
	p, ok := parseValue(value)
	return ok && !p.browserSession
}

// cookie returns the session cookie carrying value, persistent for
// Cookie.MaxAge unless value is marked for the browser session.
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
	if c.persistent(value) { // whole seconds, rounded up so a short MaxAge still persists
		ck.MaxAge = int((c.cfg.MaxAge + time.Second - 1) / time.Second)
	}
	return ck
}

// reissueAfter is how old a persistent cookie may grow, as a fraction of
// Cookie.MaxAge, before a request that uses it gets it again: a browser
// keeps the cookie as long as its session is used at least once every
// (1 - 1/reissueFraction) of MaxAge.
const reissueFraction = 10

// stale reports whether p, the parts of a persistent cookie's verified
// value (see parseValue), says it was issued more than
// MaxAge/reissueFraction before now. The zero valueParts, of a value that
// could not be read, is never stale.
func (c *cookieCodec) stale(p valueParts, now time.Time) bool {
	if c.cfg.MaxAge <= 0 || p == (valueParts{}) || p.browserSession {
		return false
	}
	// The date has whole seconds: count from the end of its second, so
	// that a cookie is never taken for older than it is.
	return now.Sub(time.Unix(p.issued+1, 0)) > c.cfg.MaxAge/reissueFraction
}

// valueParts is what a signed value says in clear: when it was issued, the
// ID and the browser-session mark.
type valueParts struct {
	issued         int64 // Unix seconds
	id             uuid.UUID
	browserSession bool
}

// parseValue reads a signed value's parts without checking the signature,
// and without allocating. Only a value that verified may be trusted: the
// Middleware's memory-store path uses the ID of a value that has not only
// to select a session that must then remember the very same value (see
// remembers); anything else goes to the full check.
func parseValue(value string) (p valueParts, ok bool) {
	// The value is base64("date|base64(payload)|mac") with a decimal date
	// and a payload of the ID and an optional flag byte: for any date up to
	// 11 digits the payload and the '|' after it lie in the first 39 bytes,
	// so only the characters that encode them are decoded.
	const prefix = 52 // characters, a multiple of 4: 39 bytes
	if len(value) <= prefix {
		return p, false // shorter than any value we issue
	}
	var buf [prefix / 4 * 3]byte
	n, err := base64.URLEncoding.Decode(buf[:], []byte(value[:prefix]))
	if err != nil {
		return p, false
	}
	b := buf[:n] // "date|base64(payload)|" and the start of the MAC
	i := bytes.IndexByte(b, '|')
	if i <= 0 {
		return p, false
	}
	for _, d := range b[:i] {
		if d < '0' || d > '9' {
			return p, false
		}
		p.issued = p.issued*10 + int64(d-'0')
	}
	b = b[i+1:]
	j := bytes.IndexByte(b, '|')
	if j != base64.URLEncoding.EncodedLen(len(p.id)) { // also keeps Decode within idBuf; 16 or 17 bytes
		return p, false
	}
	var idBuf [32]byte
	m, err := base64.URLEncoding.Decode(idBuf[:], b[:j])
	if err != nil || m < len(p.id) {
		return p, false
	}
	copy(p.id[:], idBuf[:len(p.id)])
	p.browserSession = m > len(p.id) && idBuf[len(p.id)] == flagBrowserSession
	return p, true
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

// verifiedSlots is the size of a shared-store Manager's cache of verified
// values: 256 KiB.
const verifiedSlots = 1 << 15

// verifiedBefore reports whether value, whose clear parts say it carries
// id, is exactly a value c verified recently. A Manager on a shared store
// rebuilds each request's session from the store, so it has no Session to
// remember the value (see remembers); c keeps instead one keyed sum per
// slot, the slot chosen by 15 random bits of the ID (bytes 14 and 15 of a
// version 4 UUID, which no Placer sets). As with remembers, another value
// matches only by a 2^-63 chance, and only for the ID whose slot holds
// the sum; a value that is not there takes the full check.
func (c *cookieCodec) verifiedBefore(value string, id uuid.UUID) bool {
	if c.verified == nil {
		return false
	}
	v := c.verified[verifiedSlot(id)].Load()
	return v != 0 && v == c.sum(value)
}

// noteVerified records that c verified value, which carries id.
func (c *cookieCodec) noteVerified(value string, id uuid.UUID) {
	if c.verified != nil {
		c.verified[verifiedSlot(id)].Store(c.sum(value))
	}
}

func verifiedSlot(id uuid.UUID) int { return (int(id[14])<<8 | int(id[15])) % verifiedSlots }

// rememberIssued records value, just issued by c for s, in place of the
// value remembered before: a re-issued cookie takes over the fast path.
func (s *Session) rememberIssued(c *cookieCodec, value string) {
	s.vsum.Store(c.sum(value))
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
// Cookie headers, without allocating. Cookies are separated by ';' and
// trimmed of spaces; a value in double quotes is unquoted.
func readCookie(r *http.Request, name string) (string, bool) {
	for _, line := range r.Header["Cookie"] {
		for len(line) > 0 {
			part := line
			if i := strings.IndexByte(line, ';'); i >= 0 {
				part, line = line[:i], line[i+1:]
			} else {
				line = ""
			}
			part = strings.TrimSpace(part)
			if len(part) <= len(name) || part[len(name)] != '=' || part[:len(name)] != name {
				continue
			}
			v := part[len(name)+1:]
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, true
		}
	}
	return "", false
}
