package redisstore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// TestCluster checks the Cluster-specific paths (pointer lookups outside
// the scripts, round trips, keys left) on a one-node Redis Cluster, whose
// keys one SCAN sees. The conformance suite runs on a real cluster of 3
// masters and 3 replicas in TestCluster3.
func TestCluster(t *testing.T) {
	cc := startCluster(t)
	t.Run("KeysAndRoundTrips", func(t *testing.T) {
		// Load the scripts into the new node first: a NOSCRIPT reply
		// would cost the first call of each one more round trip.
		warm := newStore(t, cc)
		w := rec("warm", time.Hour)
		_, err := warm.Create(t.Context(), w, 5, sessions.EvictOldest)
		require.NoError(t, err)
		_, err = warm.Activate(t.Context(), w.ID, time.Now())
		require.NoError(t, err)
		require.NoError(t, warm.Update(t.Context(), w.ID, time.Now(), map[string][]byte{"a": []byte("b")}, nil))
		_, err = warm.Delete(t.Context(), w.ID)
		require.NoError(t, err)

		cnt := &counter{}
		cc.AddHook(cnt)
		s := newStore(t, cc)
		ctx := t.Context()
		r := rec("olga", time.Hour)
		_, err = s.Create(ctx, r, 5, sessions.EvictOldest)
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
