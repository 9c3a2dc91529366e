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

// testFoundByID deletes every key of a shard but the sessions' own
// hashes behind the store's back: every call by ID still finds a user's
// and an anonymous session, which need no other key to be found (their
// shard is read off their ID), and an ID of no session costs one command.
func testFoundByID(t *testing.T, c redis.UniversalClient) {
	s := newStore(t, c)
	ctx := t.Context()
	r := rec("zoe", time.Hour)
	_, err := s.Create(ctx, r, 5, sessions.EvictOldest)
	require.NoError(t, err)
	anon := rec("", time.Hour)
	_, err = s.Create(ctx, anon, 5, sessions.EvictOldest)
	require.NoError(t, err)
	dropIndexes := func() {
		for _, key := range keysUnder(t, c, s.o.prefix) {
			if !strings.Contains(key, "}:s:") {
				require.NoError(t, c.Del(ctx, key).Err())
			}
		}
	}
	for _, id := range []string{r.ID, anon.ID} {
		dropIndexes()
		_, err = s.Load(ctx, id)
		require.NoError(t, err, "Load")
		_, err = s.Activate(ctx, id, time.Now().Add(10*time.Minute))
		require.NoError(t, err, "Activate that writes the activity")
		dropIndexes()
		require.NoError(t, s.Update(ctx, id, time.Now(), map[string][]byte{"x": []byte("y")}, nil), "Update")
		dropIndexes()
		got, err := s.Delete(ctx, id)
		require.NoError(t, err, "Delete")
		assert.NotEmpty(t, got.SealedID)
		_, err = s.Load(ctx, id)
		require.ErrorIs(t, err, sessions.ErrNotFound)
	}
	// A session that does not exist is not found, in one command.
	cnt := &counter{}
	c.AddHook(cnt)
	assert.EqualValues(t, 1, roundTrips(cnt, func() {
		_, err = s.Load(ctx, newID())
		require.ErrorIs(t, err, sessions.ErrNotFound)
	}))
	_, err = s.Delete(ctx, newID())
	require.ErrorIs(t, err, sessions.ErrNotFound)
}

// testUserIndexRepair deletes a user's index, or one of its entries,
// behind the store's back: UserSessions, DeleteUser and the limit still
// see every session of the user.
func testUserIndexRepair(t *testing.T, c redis.UniversalClient) {
	s := newStore(t, c)
	ctx := t.Context()
	uh := hashUser("yann")
	k := s.userShard(uh)
	U := s.key(k, "u:"+uh)
	var recs []sessions.Record
	for range 3 {
		r := rec("yann", time.Hour)
		_, err := s.Create(ctx, r, 3, sessions.RejectNew)
		require.NoError(t, err)
		recs = append(recs, r)
	}
	// Other users in the shard: the rebuild must not pick them up.
	for range 5 {
		_, err := s.Create(ctx, rec("", time.Hour), 3, sessions.RejectNew)
		require.NoError(t, err)
	}

	require.EqualValues(t, 1, c.Del(ctx, U).Val())
	list, err := s.UserSessions(ctx, "yann")
	require.NoError(t, err)
	assert.Len(t, list, 3, "UserSessions after the user index was deleted")

	require.EqualValues(t, 1, c.ZRem(ctx, U, hashID(recs[1].ID)).Val())
	_, err = s.Create(ctx, rec("yann", time.Hour), 3, sessions.RejectNew)
	require.ErrorIs(t, err, sessions.ErrLimitReached, "the limit after an index entry was deleted")

	require.EqualValues(t, 1, c.Del(ctx, U).Val())
	_, err = s.Create(ctx, rec("yann", time.Hour), 3, sessions.RejectNew)
	require.ErrorIs(t, err, sessions.ErrLimitReached, "the limit after the user index was deleted")
	// EvictOldest evicts the least recently active, as before the loss.
	require.EqualValues(t, 1, c.Del(ctx, U).Val())
	newest := rec("yann", time.Hour)
	removed, err := s.Create(ctx, newest, 3, sessions.EvictOldest)
	require.NoError(t, err)
	require.Len(t, removed, 1)
	assert.Equal(t, recs[0].SealedID, removed[0].SealedID)

	require.EqualValues(t, 1, c.Del(ctx, U).Val())
	ended, err := s.DeleteUser(ctx, "yann")
	require.NoError(t, err)
	assert.Len(t, ended, 3, "DeleteUser after the user index was deleted")
	n, users, err := s.Count(ctx, time.Now())
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	assert.Zero(t, users)
	// The count of the user is gone with the sessions: no rebuild next time.
	assert.Zero(t, c.Exists(ctx, s.key(k, "n:"+uh)).Val())
}

func TestFoundByID(t *testing.T) {
	testFoundByID(t, newClient(t))
}

func TestUserIndexRepair(t *testing.T) {
	testUserIndexRepair(t, newClient(t))
}

func TestSelfRepairCluster(t *testing.T) {
	cc := startCluster(t)
	t.Run("FoundByID", func(t *testing.T) { testFoundByID(t, cc) })
	t.Run("UserIndex", func(t *testing.T) { testUserIndexRepair(t, cc) })
}

// TestShardIndexLoss documents what happens when P{k}:e is deleted: the
// store does not rebuild it, but a session's next activity write (or
// Update) enters it again, and the sweeper then finds it.
func TestShardIndexLoss(t *testing.T) {
	c := newClient(t)
	s := newStore(t, c, WithShards(1))
	ctx := t.Context()
	r := rec("", time.Minute)
	_, err := s.Create(ctx, r, 0, sessions.EvictOldest)
	require.NoError(t, err)
	require.EqualValues(t, 1, c.Del(ctx, s.key("0", "e")).Val())
	n, _, err := s.Count(ctx, time.Now())
	require.NoError(t, err)
	assert.Zero(t, n, "not counted until it is active again")
	at := time.Now().Add(10 * time.Second)
	require.NoError(t, s.Update(ctx, r.ID, at, nil, nil))
	n, _, err = s.Count(ctx, time.Now())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	got, err := s.Expired(ctx, at.Add(time.Minute), 10)
	require.NoError(t, err)
	assert.Len(t, got, 1)
}

// TestUserCountInStep: the count P{k}:n:<uh> of each user stays equal to the
// entries of the user's index through creates, evictions, deletes, sweeps
// and phantom drops, so no path rebuilds an index that lost nothing (a
// rebuild reads the whole shard).
func TestUserCountInStep(t *testing.T) {
	c := newClient(t)
	s := newStore(t, c, WithShards(2))
	ctx := t.Context()
	users := []string{"ann", "ben", "cat"}
	var ids []string
	for i := range 30 {
		user := users[i%3]
		idle := time.Hour
		if i%4 == 0 {
			idle = time.Millisecond // swept below
		}
		r := rec(user, idle)
		_, err := s.Create(ctx, r, 4, sessions.EvictOldest)
		require.NoError(t, err)
		ids = append(ids, r.ID)
	}
	for _, id := range ids[:5] {
		_, _ = s.Delete(ctx, id) // some were evicted already
	}
	// A phantom: a session key deleted behind the store's back.
	list, err := s.UserSessions(ctx, "ben")
	require.NoError(t, err)
	require.NotEmpty(t, list)
	k := s.userShard(hashUser("ben"))
	members := c.ZRange(ctx, s.key(k, "u:"+hashUser("ben")), 0, -1).Val()
	require.NotEmpty(t, members)
	require.EqualValues(t, 1, c.Del(ctx, s.key(k, "s:"+members[0])).Val())
	recs, err := s.Expired(ctx, time.Now().Add(time.Second), 100)
	require.NoError(t, err)
	require.NoError(t, s.Ack(ctx, claimsOf(recs)))

	inStep := func(why string) {
		t.Helper()
		for _, u := range users {
			uh := hashUser(u)
			k := s.userShard(uh)
			n, _ := c.Get(ctx, s.key(k, "n:"+uh)).Int64()
			assert.Equal(t, c.ZCard(ctx, s.key(k, "u:"+uh)).Val(), n, "count of %s %s", u, why)
		}
	}
	_, err = s.UserSessions(ctx, "ben") // drops the phantom
	require.NoError(t, err)
	inStep("after creates, evictions, deletes, a sweep and a phantom")
	for _, u := range users {
		_, err := s.DeleteUser(ctx, u)
		require.NoError(t, err)
	}
	inStep("after DeleteUser")
	for _, key := range keysUnder(t, c, s.o.prefix) {
		assert.NotContains(t, key, "}:n:", "a count left after every user's sessions ended")
	}
}

// TestExpiredUserIndexNotRebuilt: a user index that expired by its TTL
// (no sweeper ran for its sessions' deadline plus the grace) takes its
// count along, so the user's next call does not read the whole shard for
// a rebuild; one deleted behind the store's back is rebuilt.
func TestExpiredUserIndexNotRebuilt(t *testing.T) {
	p := startRedis(t) // a server of its own: the test reads its command counts
	c := redis.NewClient(&redis.Options{Addr: p.addr})
	t.Cleanup(func() { _ = c.Close() })
	ctx := t.Context()
	const grace = 5 * time.Millisecond
	s := newStore(t, c, WithShards(1), WithGrace(grace))
	for range 50 {
		_, err := s.Create(ctx, rec("", time.Hour), 0, sessions.EvictOldest)
		require.NoError(t, err)
	}
	// Another user's live session keeps the shard's other keys alive.
	_, err := s.Create(ctx, rec("yolanda", time.Hour), 0, sessions.EvictOldest)
	require.NoError(t, err)
	short := rec("zack", time.Millisecond)
	_, err = s.Create(ctx, short, 0, sessions.EvictOldest)
	require.NoError(t, err)
	U := s.key("0", "u:"+hashUser("zack"))
	require.Eventually(t, func() bool { return c.Exists(ctx, U).Val() == 0 }, 5*time.Second, time.Millisecond,
		"the user index never expired")
	hmgets := func() int64 {
		for _, line := range strings.Split(c.Info(ctx, "commandstats").Val(), "\n") {
			if v, ok := strings.CutPrefix(line, "cmdstat_hmget:calls="); ok {
				n, _ := strconv.ParseInt(v[:strings.IndexByte(v, ',')], 10, 64)
				return n
			}
		}
		return 0
	}
	before := hmgets()
	list, err := s.UserSessions(ctx, "zack")
	require.NoError(t, err)
	assert.Empty(t, list)
	assert.Equal(t, before, hmgets(), "UserSessions read the shard for a rebuild")

	// A live user whose index is deleted is rebuilt: one HMGET per
	// session of the shard.
	_, err = s.Create(ctx, rec("zack", time.Hour), 0, sessions.EvictOldest)
	require.NoError(t, err)
	require.EqualValues(t, 1, c.Del(ctx, U).Val())
	before = hmgets()
	list, err = s.UserSessions(ctx, "zack")
	require.NoError(t, err)
	assert.Len(t, list, 1)
	assert.GreaterOrEqual(t, hmgets()-before, int64(52))
}
