package redisstore

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// TestEveryKeyHasTTL: after creates, updates, activity and claims, every
// key under the prefix has a TTL, and each index outlives the latest
// deadline it holds by the grace.
func TestEveryKeyHasTTL(t *testing.T) {
	c := newClient(t)
	const grace = time.Minute
	s := newStore(t, c, WithGrace(grace), WithShards(2))
	ctx := t.Context()
	now := time.Now()
	var latest time.Time
	for i := range 6 {
		user := ""
		if i%2 == 0 {
			user = "wanda"
		}
		r := rec(user, time.Duration(i+1)*time.Hour)
		_, err := s.Create(ctx, r, 0, sessions.EvictOldest)
		require.NoError(t, err)
		at := now.Add(time.Duration(i) * time.Minute)
		require.NoError(t, s.Update(ctx, r.ID, at, map[string][]byte{"x": []byte("y")}, nil))
		if d := at.Add(r.IdleTimeout); d.After(latest) {
			latest = d
		}
	}
	gone := rec("wanda", time.Millisecond)
	_, err := s.Create(ctx, gone, 0, sessions.EvictOldest)
	require.NoError(t, err)
	claimed, err := s.Expired(ctx, time.Now().Add(time.Second), 10) // leaves a claim
	require.NoError(t, err)
	require.Len(t, claimed, 1)

	kinds := map[string]bool{}
	for _, key := range keysUnder(t, c, s.o.prefix) {
		kind := key[strings.Index(key, "}:")+2:]
		kind, _, _ = strings.Cut(kind, ":")
		kinds[kind] = true
		exp := c.PExpireTime(ctx, key).Val()
		require.Positive(t, exp, "key %s has no TTL", key)
		if kind == "e" || kind == "u" || kind == "n" {
			assert.GreaterOrEqual(t, int64(exp), latest.Add(grace).UnixMilli()-1,
				"index %s expires before the latest deadline it holds plus the grace", key)
		}
	}
	for _, kind := range []string{"s", "c", "u", "e", "l", "n", "p"} {
		assert.True(t, kinds[kind], "no %q key was checked", kind)
	}

	// An index left without a TTL (by an earlier version of the store)
	// gets one on the next Create in its shard.
	E := s.key(s.shardOf(hashUser("wanda")), "e")
	require.True(t, c.Persist(ctx, E).Val())
	_, err = s.Create(ctx, rec("wanda", time.Hour), 0, sessions.EvictOldest)
	require.NoError(t, err)
	assert.Positive(t, c.PTTL(ctx, E).Val())
}
