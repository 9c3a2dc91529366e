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
		_, err = warm.Activate(t.Context(), w.ID, time.Now().Add(10*time.Minute))
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
		// Any Store finds a session from its ID alone: one round trip for
		// each call, an activity write included.
		other, err := New(cc, WithPrefix(s.o.prefix))
		require.NoError(t, err)
		assert.EqualValues(t, 1, roundTrips(cnt, func() {
			_, err := other.Load(ctx, r.ID)
			require.NoError(t, err)
		}), "Load")
		assert.EqualValues(t, 1, roundTrips(cnt, func() {
			_, err := other.Activate(ctx, r.ID, time.Now())
			require.NoError(t, err)
		}), "Activate within the touch window")
		assert.EqualValues(t, 1, roundTrips(cnt, func() {
			_, err := other.Activate(ctx, r.ID, time.Now().Add(10*time.Minute))
			require.NoError(t, err)
		}), "Activate that writes the activity")
		assert.EqualValues(t, 1, roundTrips(cnt, func() {
			require.NoError(t, other.Update(ctx, r.ID, time.Now(), map[string][]byte{"a": []byte("b")}, nil))
		}), "Update")
		_, err = other.Delete(ctx, r.ID)
		require.NoError(t, err)
		assert.Empty(t, keysUnder(t, cc, s.o.prefix), "Delete leaves no key")

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
