package sessions

import (
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/assert"
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
