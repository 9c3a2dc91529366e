package sessions

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCanonical checks canonical against the encoder: a value is canonical
// exactly when it is what base64.URLEncoding writes for its decoded bytes.
func TestCanonical(t *testing.T) {
	reference := func(v string) bool {
		b, err := base64.URLEncoding.Strict().DecodeString(v)
		return err == nil && len(b) > 0 && base64.URLEncoding.EncodeToString(b) == v
	}
	for n := 1; n <= 100; n++ {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		v := base64.URLEncoding.EncodeToString(b)
		assert.True(t, canonical(v), "encoded %d bytes: %q", n, v)
		// Every one-character change, including ones that only touch unused
		// bits, agrees with the reference.
		for i := range len(v) {
			for _, c := range []byte{'A', 'B', 'C', 'Q', 'g', 'w', '=', '+', '/', '\n', '.'} {
				w := v[:i] + string(c) + v[i+1:]
				assert.Equal(t, reference(w), canonical(w), "%q", w)
			}
		}
		assert.False(t, canonical(v+"\r\n"))
		assert.False(t, canonical(v[:len(v)-1]))
	}
	for _, v := range []string{"", "=", "==", "===", "====", "A===", "AA==", "AAA=", "AAAA", "AB==", "AAB="} {
		assert.Equal(t, reference(v), canonical(v), "%q", v)
	}
}

// TestParseValue checks that the clear parts of a signed value read back
// as encoded: the ID, the issue date and the browser-session mark, and that
// decode accepts both payloads and nothing else.
func TestParseValue(t *testing.T) {
	c := newCookieCodec(CookieConfig{Name: "session", MaxAge: time.Hour}, [][]byte{bytes.Repeat([]byte{'k'}, 32)})
	id := uuid.New()
	before := time.Now().Unix()
	for _, browser := range []bool{false, true} {
		v, err := c.encodeFor(id, browser)
		require.NoError(t, err)
		p, ok := parseValue(v)
		require.True(t, ok, v)
		assert.Equal(t, id, p.id)
		assert.Equal(t, browser, p.browserSession)
		assert.GreaterOrEqual(t, p.issued, before)
		assert.LessOrEqual(t, p.issued, time.Now().Unix())
		assert.Equal(t, !browser, c.persistent(v))
		got, err := c.decode(v)
		require.NoError(t, err)
		assert.Equal(t, id, got)
		assert.False(t, c.stale(p, time.Now()), "fresh")
		assert.Equal(t, !browser, c.stale(p, time.Now().Add(time.Hour/reissueFraction+2*time.Second)), "old enough to re-issue when persistent")
		assert.False(t, c.stale(valueParts{}, time.Now().Add(1000*time.Hour)), "unread parts")
	}
	// Without MaxAge there is nothing to mark or re-issue.
	plain := newCookieCodec(CookieConfig{Name: "session"}, [][]byte{bytes.Repeat([]byte{'k'}, 32)})
	v, err := plain.encodeFor(id, true)
	require.NoError(t, err)
	p, _ := parseValue(v)
	assert.False(t, p.browserSession)
	assert.False(t, plain.persistent(v))
	assert.False(t, plain.stale(p, time.Now().Add(1000*time.Hour)))
	// A signed payload of another shape is not a session cookie.
	for _, payload := range [][]byte{id[:15], append(id[:], 2), append(id[:], 1, 1), nil} {
		v, err := c.codecs[0].Encode("session", payload)
		require.NoError(t, err)
		_, err = c.decode(v)
		assert.ErrorIs(t, err, errBadCookie, "payload %x", payload)
	}
}

// parseValueReference is parseValue as encoding/base64 reads a value: the
// definition that parseValue's own decoding must agree with.
func parseValueReference(value string) (p valueParts, ok bool) {
	const prefix = 52
	if len(value) <= prefix {
		return p, false
	}
	var buf [prefix / 4 * 3]byte
	n, err := base64.URLEncoding.Decode(buf[:], []byte(value[:prefix]))
	if err != nil {
		return p, false
	}
	b := buf[:n]
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
	if j != base64.URLEncoding.EncodedLen(len(p.id)) {
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

// TestParseValueAgrees checks parseValue against encoding/base64: on every
// value the codec issues (dates of 1 to 11 digits, both payloads) they
// read the same parts, and on every one-character change of such a value
// parseValue accepts only what the reference reads the same way.
func TestParseValueAgrees(t *testing.T) {
	key := bytes.Repeat([]byte{'k'}, 32)
	mac := bytes.Repeat([]byte{0xfe}, 32)
	for _, date := range []string{"1", "1764267000", "99999999999"} {
		for _, payload := range [][]byte{uuid.New().NodeID(), nil, {flagBrowserSession}} {
			id := uuid.New()
			raw := date + "|" + base64.URLEncoding.EncodeToString(append(id[:], payload...)) + "|" + string(mac)
			v := base64.URLEncoding.EncodeToString([]byte(raw))
			want, wantOK := parseValueReference(v)
			got, ok := parseValue(v)
			require.Equal(t, wantOK, ok, "%q", raw)
			require.Equal(t, want, got, "%q", raw)
			if len(payload) <= 1 {
				require.True(t, ok, "%q", raw)
				assert.Equal(t, id, got.id)
				assert.Equal(t, len(payload) == 1, got.browserSession)
			}
			for i := range min(len(v), 60) {
				for _, c := range []byte{'A', 'B', 'w', '_', '-', '=', '|', '\n', '\r', '.', 0xff} {
					w := v[:i] + string(c) + v[i+1:]
					got, ok := parseValue(w)
					if !ok {
						continue
					}
					want, wantOK := parseValueReference(w)
					require.True(t, wantOK, "parseValue read %q, the reference does not", w)
					require.Equal(t, want, got, "%q", w)
				}
			}
		}
	}
	c := newCookieCodec(CookieConfig{Name: "session", MaxAge: time.Hour}, [][]byte{key})
	for range 100 {
		v, err := c.encodeFor(uuid.New(), true)
		require.NoError(t, err)
		want, _ := parseValueReference(v)
		got, ok := parseValue(v)
		require.True(t, ok)
		require.Equal(t, want, got)
	}
}

// TestReadCookie checks readCookie against the rule it implements, written
// out with strings.SplitSeq: the first part of any Cookie line, split at
// ';' and trimmed, that is name=value, with one pair of quotes removed.
func TestReadCookie(t *testing.T) {
	reference := func(lines []string, name string) (string, bool) {
		for _, line := range lines {
			for part := range strings.SplitSeq(line, ";") {
				v, found := strings.CutPrefix(strings.TrimSpace(part), name)
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
	cases := [][]string{
		nil,
		{""},
		{"s=abc"},
		{"s="},
		{"s"},
		{"ss=1; s=2"},
		{"a=1;s=2;s=3"},
		{" a=1 ;  s=\"q\" "},
		{"s=\""},
		{"s=\"\""},
		{"x=1", "s=2"},
		{";;s=1;"},
		{"s =1; s=2"},
		{"\u00a0s=1"},
		{"S=1; s=2"},
		{"s=a=b"},
	}
	for _, lines := range cases {
		r, err := http.NewRequest("GET", "/", nil)
		require.NoError(t, err)
		for _, l := range lines {
			r.Header.Add("Cookie", l)
		}
		want, wantOK := reference(lines, "s")
		got, ok := readCookie(r, "s")
		assert.Equal(t, wantOK, ok, "%q", lines)
		assert.Equal(t, want, got, "%q", lines)
	}
	r, err := http.NewRequest("GET", "/", nil)
	require.NoError(t, err)
	r.Header.Set("Cookie", "a=1; s=two; b=3")
	v, ok := readCookie(r, "s")
	assert.True(t, ok)
	assert.Equal(t, "two", v)
}
