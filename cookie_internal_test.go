package sessions

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"sync/atomic"
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

// TestVerifiedBefore: a shared-store codec takes a value it verified for
// an ID as verified, and no other value for that ID, not one that differs
// only in its MAC nor another value it issued for the same ID.
func TestVerifiedBefore(t *testing.T) {
	c := newCookieCodec(CookieConfig{Name: "session", MaxAge: time.Hour}, [][]byte{bytes.Repeat([]byte{'k'}, 32)})
	id := uuid.New()
	v, err := c.encode(id)
	require.NoError(t, err)
	c.noteVerified(v, id)
	assert.False(t, c.verifiedBefore(v, id), "the memory store's codec keeps no cache")

	c.verified = make([]atomic.Uint64, verifiedSlots)
	assert.False(t, c.verifiedBefore(v, id), "not verified yet")
	c.noteVerified(v, id)
	assert.True(t, c.verifiedBefore(v, id))
	other, err := c.encodeFor(id, true)
	require.NoError(t, err)
	require.NotEqual(t, v, other)
	assert.False(t, c.verifiedBefore(other, id), "another value of the same ID")
	raw, err := base64.URLEncoding.DecodeString(v)
	require.NoError(t, err)
	raw[len(raw)-1] ^= 1 // the MAC's last byte
	forged := base64.URLEncoding.EncodeToString(raw)
	p, ok := parseValue(forged)
	require.True(t, ok)
	require.Equal(t, id, p.id)
	assert.False(t, c.verifiedBefore(forged, id), "a forged MAC")
	c.noteVerified(other, id)
	assert.False(t, c.verifiedBefore(v, id), "replaced in its slot by the value verified last")
}
