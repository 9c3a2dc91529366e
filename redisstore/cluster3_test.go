package redisstore

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
	"github.com/tokyopredictor/sessions/redisstore/internal/rediscluster"
	"github.com/tokyopredictor/sessions/storetest"
)

// clusterNodeTimeout is the cluster-node-timeout of the clusters the tests
// start: short, so that a failover takes seconds.
const clusterNodeTimeout = 2 * time.Second

// startCluster3 starts a Redis Cluster of 3 masters and 3 replicas and
// returns it with a cluster client of it.
func startCluster3(t *testing.T) (*rediscluster.Cluster, *redis.ClusterClient) {
	t.Helper()
	c := rediscluster.Start(t, rediscluster.Options{Masters: 3, Replicas: 1, NodeTimeout: clusterNodeTimeout})
	return c, c.Client(nil)
}

// TestCluster3 runs the conformance suite on a real cluster of 3 masters
// and 3 replicas, and checks that sessions spread evenly over the masters.
func TestCluster3(t *testing.T) {
	rc, cc := startCluster3(t)
	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) sessions.Store {
			s := newStore(t, cc)
			require.True(t, s.cluster)
			return s
		})
	})
	t.Run("ConformanceDurable", func(t *testing.T) {
		// Every change through a pipeline with WAIT on its slot's master.
		storetest.Run(t, func(t *testing.T) sessions.Store { return newStore(t, cc, WithDurability(1, time.Second)) })
	})
	t.Run("Lease", func(t *testing.T) {
		const lease = 300 * time.Millisecond
		storetest.RunLease(t, func(t *testing.T) sessions.Store { return newStore(t, cc, WithLease(lease)) }, lease)
	})
	t.Run("Tags", func(t *testing.T) {
		// The tags hash where Redis says, and the default shards fall
		// 20/20/20 on the masters redis-cli would make.
		ctx := t.Context()
		s := newStore(t, cc)
		require.Len(t, s.shardID, DefaultClusterShards)
		perMaster := make([]int, 3)
		for i, tag := range s.shardID {
			slot, err := cc.ClusterKeySlot(ctx, s.key(tag, "e")).Result()
			require.NoError(t, err)
			assert.EqualValues(t, crc16([]byte(tag))%clusterSlots, slot, "tag %q", tag)
			assert.True(t, s.isShard(tag))
			for m := range 3 {
				if first, last := rediscluster.SlotRange(m, 3); first <= int(slot) && int(slot) <= last {
					perMaster[m]++
				}
			}
			assert.True(t, strings.HasPrefix(tag, fmt.Sprint(i)), "tag %q of shard %d", tag, i)
		}
		assert.Equal(t, []int{20, 20, 20}, perMaster)

		// What a sweep with nothing due costs: one script per shard.
		for _, n := range []int{16, DefaultClusterShards} {
			s := newStore(t, cc, WithShards(n))
			const calls = 20
			start := time.Now()
			for range calls {
				_, err := s.Expired(ctx, time.Now(), 100)
				require.NoError(t, err)
			}
			t.Logf("Expired with nothing due, %d shards: %v a call", n, time.Since(start)/calls)
		}
		assert.False(t, s.isShard("60"))
		assert.False(t, s.isShard("x"))
		assert.False(t, s.isShard(""))
	})
	t.Run("SpreadComputed", func(t *testing.T) {
		// 20,000 random users: the master of each one's shard, as the
		// cluster's slot map places it, holds a third of them ±10%.
		ctx := t.Context()
		s := newStore(t, cc)
		slots, err := cc.ClusterSlots(ctx).Result()
		require.NoError(t, err)
		held := map[string]int{}
		const n = 20000
		for range n {
			slot := int(crc16([]byte(s.userShard(hashUser("user-"+newID())))) % clusterSlots)
			for _, r := range slots {
				if int(r.Start) <= slot && slot <= int(r.End) {
					held[r.Nodes[0].Addr]++
				}
			}
		}
		require.Len(t, held, 3)
		for addr, got := range held {
			assert.InDelta(t, 1.0/3, float64(got)/n, 0.1/3, "master %s holds %d of %d users", addr, got, n)
		}
		t.Logf("users per master (computed): %v", held)
	})
	t.Run("Spread", func(t *testing.T) {
		// Sessions of random users created through the store: each master
		// holds a third of the session keys, ±10% (relative), counted by
		// SCAN on each. (6,000 keep the test short; 20,000 measured
		// 32.8-33.9% per master.)
		ctx := t.Context()
		s := newStore(t, cc)
		const n, workers = 6000, 8
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= n {
					if _, err := s.Create(ctx, rec("user-"+newID(), time.Hour), 5, sessions.EvictOldest); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		require.NoError(t, <-errs)
		masters, err := rc.Masters(ctx)
		require.NoError(t, err)
		require.Len(t, masters, 3)
		total := 0
		var shares []string
		for _, addr := range masters {
			cl := redis.NewClient(&redis.Options{Addr: addr})
			got := 0
			iter := cl.Scan(ctx, 0, s.o.prefix+"{*}:s:*", 1000).Iterator()
			for iter.Next(ctx) {
				got++
			}
			require.NoError(t, iter.Err())
			_ = cl.Close()
			total += got
			share := float64(got) / n
			shares = append(shares, fmt.Sprintf("%s %d (%.1f%%)", addr, got, 100*share))
			assert.InDelta(t, 1.0/3, share, 0.1/3, "master %s holds %d of %d sessions", addr, got, n)
		}
		assert.Equal(t, n, total)
		t.Logf("sessions per master: %s", strings.Join(shares, ", "))

		// What a sweep costs with 60 shards: one script per shard.
		start := time.Now()
		got, _, err := s.Count(ctx, time.Now())
		require.NoError(t, err)
		assert.Equal(t, n, got)
		t.Logf("Count of %d sessions over %d shards: %v", n, len(s.shardID), time.Since(start))
		start = time.Now()
		exp, err := s.Expired(ctx, time.Now(), 1000)
		require.NoError(t, err)
		assert.Empty(t, exp)
		t.Logf("Expired with nothing due over %d shards: %v", len(s.shardID), time.Since(start))
	})
}

// TestClusterTagsDefaultOff checks that outside Cluster the shards keep
// their plain numbers (the layout stored data already has).
func TestClusterTagsDefaultOff(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: testAddr})
	defer c.Close()
	s, err := New(c)
	require.NoError(t, err)
	require.Len(t, s.shardID, DefaultShards)
	for i, tag := range s.shardID {
		assert.Equal(t, fmt.Sprint(i), tag)
	}
}
