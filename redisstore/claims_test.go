package redisstore

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// claimsOf returns the claim tokens of records Expired returned.
func claimsOf(recs []sessions.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Claim
	}
	return out
}

// TestExpiredRetryReturnsItsClaims: the claiming script run twice with the
// same arguments (what a client's retry after a lost reply sends) returns
// the first run's claims again, under the same tokens, and claims nothing
// more.
func TestExpiredRetryReturnsItsClaims(t *testing.T) {
	s := newStore(t, newClient(t))
	ctx := t.Context()
	for i := range 6 {
		_, err := s.Create(ctx, rec(fmt.Sprint("u", i%2), time.Millisecond), 0, sessions.EvictOldest)
		require.NoError(t, err)
	}
	now := micros(time.Now().Add(time.Second))
	run := func(nonce string, want int) []string {
		args := appendShards([]any{now, want, int64(s.o.lease / time.Microsecond), nonce}, s.shardID)
		keys := append(s.shardKeys(s.shardID, "e"), s.shardKeys(s.shardID, "l")...)
		res, err := expiredScript.Run(ctx, s.c, keys, s.args(args...)...).Slice()
		require.NoError(t, err)
		_, fs, err := decodeRecords(res)
		require.NoError(t, err)
		var hs []string
		for _, f := range fs {
			hs = append(hs, f.h)
		}
		slices.Sort(hs)
		return hs
	}
	first := run("00000000000000aa", 4)
	require.Len(t, first, 4)
	require.Equal(t, first, run("00000000000000aa", 4), "a retry of the same call")
	rest := run("00000000000000bb", 10)
	require.Len(t, rest, 2, "a new call claims only what the first left")
	require.Empty(t, slices.DeleteFunc(rest, func(h string) bool { return !slices.Contains(first, h) }))
}
