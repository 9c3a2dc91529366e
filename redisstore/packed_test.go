package redisstore

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// TestUnpackServerForms decodes what the server's cmsgpack writes for
// strings of every header size, and for arrays and maps of every header
// size.
func TestUnpackServerForms(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	array := redis.NewScript(`
local t = {}
for i = 1, #ARGV do t[i] = string.rep('x', tonumber(ARGV[i])) end
return cmsgpack.pack(t)
`)
	for _, lens := range [][]int{
		{},
		{0, 1, 31, 32, 255, 256, 65535, 65536, 70000},
		make([]int, 16),     // array 16
		make([]int, 70_000), // array 32
	} {
		args := make([]any, len(lens))
		for i, n := range lens {
			args[i] = n
		}
		p, err := array.Run(ctx, c, nil, args...).Text()
		require.NoError(t, err)
		n, rest, err := unpackHeader(p)
		require.NoError(t, err)
		require.Equal(t, len(lens), n)
		for _, want := range lens {
			var s string
			s, rest, err = unpackString(rest)
			require.NoError(t, err)
			require.Equal(t, strings.Repeat("x", want), s)
		}
		assert.Empty(t, rest)
	}

	// A map of ARGV[1] entries "k<i>" → i.
	mapped := redis.NewScript(`
local t = {}
for i = 1, tonumber(ARGV[1]) do t['k' .. i] = tostring(i) end
return cmsgpack.pack(t)
`)
	for _, size := range []int{1, 15, 16, 70_000} { // fixmap, map 16, map 32
		p, err := mapped.Run(ctx, c, nil, size).Text()
		require.NoError(t, err)
		n, rest, err := unpackHeader(p)
		require.NoError(t, err)
		require.Equal(t, 2*size, n)
		got := make(map[string]string, size)
		for range size {
			var k, v string
			k, rest, err = unpackString(rest)
			require.NoError(t, err)
			v, rest, err = unpackString(rest)
			require.NoError(t, err)
			got[k] = v
		}
		assert.Empty(t, rest)
		require.Len(t, got, size)
		assert.Equal(t, "1", got["k1"])
		assert.Equal(t, strconv.Itoa(size), got["k"+strconv.Itoa(size)])
	}
}

func TestDecodePackedRejectsBadInput(t *testing.T) {
	for name, p := range map[string]string{
		"empty":           "",
		"not an array":    "\xa1h",
		"odd":             "\x91\xa1h",
		"short string":    "\x92\xa1h\xa5abc",
		"short header":    "\x92\xa1h\xda\x00",
		"not a string":    "\x92\xa1h\x01",
		"short array":     "\xdc\x00",
		"short map":       "\xdf\x00\x00\x00",
		"trailing bytes":  "\x92\xa1h\xa1x\xa1y",
		"missing entries": "\x94\xa1h\xa1x",
	} {
		_, _, err := decodePacked(p)
		assert.Error(t, err, name)
	}
	for _, p := range []string{"\x94\xa1h\xa2ab\xa3v:k\xa0", "\x82\xa1h\xa2ab\xa3v:k\xa0"} {
		rec, f, err := decodePacked(p)
		require.NoError(t, err)
		assert.Equal(t, "ab", f.h)
		assert.Equal(t, map[string][]byte{"k": {}}, rec.Values)
	}
}

// TestLoadedValuesIndependent checks that the byte slices of a loaded
// record, which share one buffer, do not write into each other.
func TestLoadedValuesIndependent(t *testing.T) {
	c := newClient(t)
	s := newStore(t, c)
	ctx := t.Context()
	r := rec("ivan", time.Hour)
	r.Values = map[string][]byte{"a": []byte("1"), "b": []byte("2"), "big": make([]byte, 70_000)}
	_, err := s.Create(ctx, r, 5, sessions.EvictOldest)
	require.NoError(t, err)
	got, err := s.Activate(ctx, r.ID, time.Now())
	require.NoError(t, err)
	require.Equal(t, r.Values, got.Values)
	require.Equal(t, r.SealedID, got.SealedID)
	got.SealedID = append(got.SealedID, "overwrite"...)
	for k, v := range got.Values {
		got.Values[k] = append(v, "overwrite"...)
	}
	delete(got.Values, "big")
	assert.Equal(t, map[string][]byte{"a": []byte("1overwrite"), "b": []byte("2overwrite")}, got.Values)
	assert.Equal(t, append(r.SealedID, "overwrite"...), got.SealedID)
}
