package redisstore

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// BenchmarkDelete ends one session per op (a logout); the Creates that
// make them are not timed.
func BenchmarkDelete(b *testing.B) {
	s, cnt, _ := benchStore(b)
	ctx := b.Context()
	ids := make([]string, b.N)
	for i := range ids {
		r := rec("user"+strconv.Itoa(i%100), time.Hour)
		_, err := s.Create(ctx, r, 0, sessions.EvictOldest)
		require.NoError(b, err)
		ids[i] = r.ID
	}
	start := cnt.n.Load()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Delete(ctx, ids[i]); err != nil {
			b.Fatal(err)
		}
	}
	report(b, cnt, start)
}

// BenchmarkDeleteUser ends the two sessions of one user per op; the
// Creates that make them are not timed.
func BenchmarkDeleteUser(b *testing.B) {
	s, cnt, _ := benchStore(b)
	ctx := b.Context()
	for i := range b.N {
		for range 2 {
			_, err := s.Create(ctx, rec("del"+strconv.Itoa(i), time.Hour), 0, sessions.EvictOldest)
			require.NoError(b, err)
		}
	}
	start := cnt.n.Load()
	b.ResetTimer()
	for i := range b.N {
		recs, err := s.DeleteUser(ctx, "del"+strconv.Itoa(i))
		if err != nil || len(recs) != 2 {
			b.Fatal(len(recs), err)
		}
	}
	report(b, cnt, start)
}
