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
	s := newStore(t, c, WithGrace(grace), WithShards(2), WithTouchWindow(0))
	ctx := t.Context()
	now := time.Now()
	latest := map[string]time.Time{} // index key → the latest deadline it holds
	later := func(key string, dl time.Time) {
		if dl.After(latest[key]) {
			latest[key] = dl
		}
	}
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
		dl := at.Add(r.IdleTimeout)
		if user != "" {
			uh := hashUser(user)
			k := s.userShard(uh)
			later(s.key(k, "e"), dl)
			later(s.key(k, "u:"+uh), dl)
			later(s.key(k, "n:"+uh), dl)
		} else {
			k, _ := s.shardOf(r.ID)
			later(s.key(k, "e"), dl)
		}
	}
	gone := rec("wanda", time.Millisecond)
	_, err := s.Create(ctx, gone, 0, sessions.EvictOldest)
	require.NoError(t, err)
	claimed, err := s.Expired(ctx, time.Now().Add(time.Second), 10) // leaves a claim
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	later(s.key(s.userShard(hashUser("wanda")), "l"), claimed[0].LeaseEnd)

	kinds := map[string]bool{}
	for _, key := range keysUnder(t, c, s.o.prefix) {
		kind := key[strings.Index(key, "}:")+2:]
		kind, _, _ = strings.Cut(kind, ":")
		kinds[kind] = true
		exp := c.PExpireTime(ctx, key).Val()
		require.Positive(t, exp, "key %s has no TTL", key)
		if dl, ok := latest[key]; ok {
			assert.GreaterOrEqual(t, exp.Milliseconds(), dl.Add(grace).UnixMilli()-1,
				"index %s expires before the latest deadline it holds plus the grace", key)
			delete(latest, key)
		}
	}
	assert.Empty(t, latest, "indexes not found")
	for _, kind := range []string{"s", "c", "u", "e", "l", "n"} {
		assert.True(t, kinds[kind], "no %q key was checked", kind)
	}

	// An index left without a TTL (by an earlier version of the store)
	// gets one on the next Create in its shard.
	E := s.key(s.userShard(hashUser("wanda")), "e")
	require.True(t, c.Persist(ctx, E).Val())
	_, err = s.Create(ctx, rec("wanda", time.Hour), 0, sessions.EvictOldest)
	require.NoError(t, err)
	assert.Positive(t, c.PTTL(ctx, E).Val())
}
