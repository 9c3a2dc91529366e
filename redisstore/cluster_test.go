package redisstore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
	"github.com/tokyopredictor/sessions/storetest"
)

// TestCluster runs the conformance suite and the Cluster-specific paths
// (pointer lookups outside the scripts) against a one-node Redis Cluster
// that refuses cross-slot keys in scripts.
func TestCluster(t *testing.T) {
	cc := startCluster(t)
	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) sessions.Store {
			s := newStore(t, cc)
			require.True(t, s.cluster)
			return s
		})
	})
	t.Run("Lease", func(t *testing.T) {
		const lease = 300 * time.Millisecond
		storetest.RunLease(t, func(t *testing.T) sessions.Store { return newStore(t, cc, WithLease(lease)) }, lease)
	})
	t.Run("KeysAndRoundTrips", func(t *testing.T) {
		cnt := &counter{}
		cc.AddHook(cnt)
		s := newStore(t, cc)
		ctx := t.Context()
		r := rec("olga", time.Hour)
		_, err := s.Create(ctx, r, 5, sessions.EvictOldest)
		require.NoError(t, err)
		// A Store that has not met the session looks its shard up once.
		other, err := New(cc, WithPrefix(s.o.prefix))
		require.NoError(t, err)
		assert.EqualValues(t, 2, roundTrips(cnt, func() {
			_, err := other.Load(ctx, r.ID)
			require.NoError(t, err)
		}), "first Load")
		assert.EqualValues(t, 1, roundTrips(cnt, func() {
			_, err := other.Activate(ctx, r.ID, time.Now())
			require.NoError(t, err)
		}), "Activate once the shard is known")
		assert.EqualValues(t, 2, roundTrips(cnt, func() {
			require.NoError(t, other.Update(ctx, r.ID, time.Now(), map[string][]byte{"a": []byte("b")}, nil))
		}), "first Update: extends the pointer's TTL")
		assert.EqualValues(t, 1, roundTrips(cnt, func() {
			require.NoError(t, other.Update(ctx, r.ID, time.Now(), map[string][]byte{"a": []byte("c")}, nil))
		}), "Update")
		assert.EqualValues(t, 1, roundTrips(cnt, func() {
			require.NoError(t, s.Update(ctx, r.ID, time.Now(), map[string][]byte{"a": []byte("c")}, nil))
		}), "Update by the creating store")
		ttl := cc.PTTL(ctx, s.ptrKey(hashID(r.ID))).Val()
		assert.Greater(t, ttl, time.Hour+DefaultGrace, "the pointer outlives the session key")
		_, err = other.Delete(ctx, r.ID)
		require.NoError(t, err)
		assert.Empty(t, keysUnder(t, cc, s.o.prefix), "Delete leaves no key, pointer included")

		// Expired claims and Ack clean up too.
		r2 := rec("", time.Millisecond)
		_, err = s.Create(ctx, r2, 5, sessions.EvictOldest)
		require.NoError(t, err)
		got, err := other.Expired(ctx, time.Now().Add(time.Second), 10)
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.NoError(t, s.Ack(ctx, claimsOf(got)))
		assert.Empty(t, keysUnder(t, cc, s.o.prefix))
	})
}
