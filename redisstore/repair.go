package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Self-repair of the pointer keys. A session's pointer P{j}:p:<h> (evicted
// by a volatile-* maxmemory policy, deleted by hand) is the only way from a
// cookie to the session, so every path that reads it looks for the session
// when it is missing: the session lives in the shard of its user or, when
// anonymous, of its own hash, and neither is known from the ID alone. With
// at most maxSearch shards every shard is tried; with more, only the
// session's own shard (anonymous sessions). A session found gets its
// pointer back, with the session key's expiry.
//
// On standalone Redis the scripts do this in the same round trip (find in
// scripts.go), and the listing scripts (UserSessions, All, Create's limit)
// re-create the missing pointer of every live session they meet. On
// Cluster the pointer is in another slot than the session, so locate does
// it: one pipelined PEXPIRETIME per candidate shard, sent only when the
// pointer is missing (a cookie of an ended session costs that too).
const (
	maxSearch    = 64
	maxSearchLua = "64" // maxSearch, for the scripts' text
)

// findShard looks for the session whose ID hashes to h on Cluster, after
// its pointer was found missing, and re-creates the pointer when the
// session key exists. It returns redis.Nil when there is no such key.
func (s *Store) findShard(ctx context.Context, h string) (string, error) {
	shards := s.shardID
	if len(shards) > maxSearch {
		shards = []string{s.shardOf(h)}
	}
	cmds := make([]*redis.DurationCmd, len(shards))
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range shards {
			cmds[i] = p.PExpireTime(ctx, s.key(k, "s:"+h))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	for i, cmd := range cmds {
		exp := cmd.Val()
		if exp == -2 {
			continue
		}
		k := shards[i]
		// The pointer outlives the session key by the grace, as Create
		// makes it.
		until := time.Now().Add(s.o.grace).UnixMilli()
		if exp > 0 {
			until = time.UnixMilli(exp.Milliseconds()).Add(s.o.grace).UnixMilli()
		}
		err := s.c.SetArgs(ctx, s.ptrKey(h), k, redis.SetArgs{Mode: "NX", ExpireAt: time.UnixMilli(until)}).Err()
		if err != nil && !errors.Is(err, redis.Nil) {
			return "", err
		}
		s.setPointer(h, k, until)
		return k, nil
	}
	return "", redis.Nil
}
