package sessions

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
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
		uid, ok := unverified(v)
		assert.True(t, ok)
		assert.Equal(t, id, uid)
		assert.False(t, c.stale(v, time.Now()), "fresh")
		assert.Equal(t, !browser, c.stale(v, time.Now().Add(time.Hour/reissueFraction+2*time.Second)), "old enough to re-issue when persistent")
	}
	// Without MaxAge there is nothing to mark or re-issue.
	plain := newCookieCodec(CookieConfig{Name: "session"}, [][]byte{bytes.Repeat([]byte{'k'}, 32)})
	v, err := plain.encodeFor(id, true)
	require.NoError(t, err)
	p, _ := parseValue(v)
	assert.False(t, p.browserSession)
	assert.False(t, plain.persistent(v))
	assert.False(t, plain.stale(v, time.Now().Add(1000*time.Hour)))
	// A signed payload of another shape is not a session cookie.
	for _, payload := range [][]byte{id[:15], append(id[:], 2), append(id[:], 1, 1), nil} {
		v, err := c.codecs[0].Encode("session", payload)
		require.NoError(t, err)
		_, err = c.decode(v)
		assert.ErrorIs(t, err, errBadCookie, "payload %x", payload)
	}
}
