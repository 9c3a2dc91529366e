package redisstore

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// TestPlaceID: every placed ID names its user's shard, the drawn bits'
// quotient by the number of shards survives (the ID loses log2(shards)
// random bits, no more), anonymous IDs keep every drawn bit, and Create
// refuses a user's session whose ID names another shard.
func TestPlaceID(t *testing.T) {
	c := newClient(t)
	for _, n := range []int{1, 16, 60, 4096} {
		s := newStore(t, c, WithShards(n))
		for _, user := range []string{"ann", "bob"} {
			want := s.userShard(hashUser(user))
			seen := make(map[uint16]bool)
			for drawn := range 1 << 16 {
				v := s.PlaceID(user, uint16(drawn))
				seen[v] = true
				k, ok := s.shardOf(strconv.FormatUint(uint64(v)|1<<16, 16)[1:])
				require.True(t, ok)
				require.Equal(t, want, k, "%d shards, drawn %#x placed at %#x", n, drawn, v)
			}
			assert.GreaterOrEqual(t, len(seen), (1<<16)/n-1, "%d shards: distinct placements", n)
		}
		for drawn := range 1 << 16 {
			require.EqualValues(t, drawn, s.PlaceID("", uint16(drawn)))
		}
	}

	s := newStore(t, c, WithShards(16))
	r := rec("carl", time.Hour)
	k := s.userShard(hashUser("carl"))
	for i := 0; ; i++ { // an ID whose first 16 bits name another shard
		id := strconv.FormatUint(uint64(i)|1<<16, 16)[1:] + r.ID[4:]
		if other, _ := s.shardOf(id); other != k {
			r.ID = id
			break
		}
	}
	_, err := s.Create(t.Context(), r, 0, sessions.EvictOldest)
	require.ErrorIs(t, err, ErrUnplacedID)
}

// TestUnplacedSessionOfAnEarlierLayout: a session stored by a version
// that kept pointer keys lives in its user's shard although its ID names
// another. Its cookie finds nothing (the user signs in again), but it
// still counts toward the user's limit until it ends, and the sweeper
// still ends it, hooks and claim token included.
func TestUnplacedSessionOfAnEarlierLayout(t *testing.T) {
	c := newClient(t)
	s := newStore(t, c, WithShards(16))
	ctx := t.Context()
	old := rec("olaf", 50*time.Millisecond)
	k := s.userShard(hashUser("olaf"))
	for i := 0; ; i++ {
		id := strconv.FormatUint(uint64(i)|1<<16, 16)[1:] + old.ID[4:]
		if other, _ := s.shardOf(id); other != k {
			old.ID = id
			break
		}
	}
	_, err := s.create(ctx, old, k, hashID(old.ID), hashUser("olaf"), 0, sessions.EvictOldest)
	require.NoError(t, err)

	_, err = s.Load(ctx, old.ID)
	require.ErrorIs(t, err, sessions.ErrNotFound, "the old cookie finds nothing")
	list, err := s.UserSessions(ctx, "olaf")
	require.NoError(t, err)
	require.Len(t, list, 1, "but the session is the user's until it ends")

	var got []sessions.Record
	require.Eventually(t, func() bool {
		recs, err := s.Expired(ctx, time.Now(), 10)
		require.NoError(t, err)
		got = append(got, recs...)
		return len(got) > 0
	}, 5*time.Second, 10*time.Millisecond, "the sweeper never claimed it")
	require.Len(t, got, 1)
	assert.Equal(t, old.SealedID, got[0].SealedID)
	held, _, err := s.Extend(ctx, claimsOf(got), time.Now())
	require.NoError(t, err)
	assert.Len(t, held, 1, "its claim token names where it lives")
	require.NoError(t, s.Ack(ctx, claimsOf(got)))
	assert.Empty(t, keysUnder(t, c, s.o.prefix+"{"+k+"}:c:"), "acknowledged")
}
