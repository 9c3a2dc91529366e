package sessions

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExpiryHeapOrder files sessions under random deadlines, moves some by
// activity, ends some otherwise, and checks that popping yields every live
// session once, in deadline order, and that expired finds exactly the live
// ones due.
func TestExpiryHeapOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 5, 17, 1000} {
		var h expiryHeap
		ss := make([]*Session, n)
		for i := range ss {
			ss[i] = &Session{idle: time.Duration(rng.IntN(1000))}
			ss[i].last.Store(int64(rng.IntN(1000)))
			h.push(ss[i])
		}
		for _, s := range ss[:n/3] { // activity: the real deadline moves later
			s.touchAt(s.last.Load() + int64(rng.IntN(500)))
		}
		for _, s := range ss[n/3 : n/2] { // ended otherwise: stale entries
			s.ended.Store(true)
			h.addStale()
		}

		const now = 900
		var want []*Session
		for _, s := range ss {
			if !s.ended.Load() && s.deadline() <= now {
				want = append(want, s)
			}
		}
		assert.ElementsMatch(t, want, h.expired(now, nil), "n=%d: expired", n)

		var got []*Session
		for len(h.e) > 0 {
			s := h.top().s
			switch d := s.deadline(); {
			case s.ended.Load():
				h.pop()
			case d > h.top().at:
				h.refile(d)
			default:
				h.pop()
				got = append(got, s)
			}
		}
		require.Len(t, got, n-(n/2-n/3), "n=%d: every live session once", n)
		assert.True(t, slices.IsSortedFunc(got, func(a, b *Session) int {
			return int(a.deadline() - b.deadline())
		}), "n=%d: popped out of deadline order", n)
	}
}
