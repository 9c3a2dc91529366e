package sessions

import (
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// find probes t for s the way the store's lookups do.
func (t *sessionTable) find(s *Session) bool {
	a := t.array()
	for i := t.hash(s) & a.mask; ; i = (i + 1) & a.mask {
		switch a.slots[i].Load() {
		case nil:
			return false
		case s:
			return true
		}
	}
}

func (t *sessionTable) size() int { return len(t.array().slots) }

func TestSessionTableGrowsShrinksAndKeepsProbesWhole(t *testing.T) {
	for _, tc := range []struct {
		name string
		hash func(*Session) uint64
	}{
		{"spread", func(s *Session) uint64 { return uint64(s.created) * 0x9E3779B97F4A7C15 }},
		{"all collide", func(*Session) uint64 { return 5 }}, // one probe run through every slot
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tab sessionTable
			tab.init(tc.hash)
			ss := make([]*Session, 1000)
			for i := range ss {
				ss[i] = &Session{created: int64(i)}
				tab.insert(ss[i])
				require.LessOrEqual(t, tab.used*4, tab.size()*3, "more than 3/4 of the slots in use")
			}
			assert.Equal(t, 1000, tab.live)
			assert.Equal(t, 2048, tab.size())

			// Remove every other one: the rest are still found past the tombstones.
			for i := 0; i < len(ss); i += 2 {
				require.True(t, tab.remove(ss[i]))
				require.False(t, tab.remove(ss[i]), "removed twice")
			}
			for i, s := range ss {
				assert.Equal(t, i%2 == 1, tab.find(s), "session %d", i)
			}

			// Churn: tombstones are reused or rebuilt away, never fill the table.
			for i := 0; i < len(ss); i += 2 {
				tab.insert(ss[i])
				require.True(t, tab.remove(ss[i]))
				require.LessOrEqual(t, tab.used*4, tab.size()*3)
			}

			var seen int
			tab.each(func(*Session) { seen++ })
			assert.Equal(t, 500, seen)

			for i := 1; i < len(ss); i += 2 {
				require.True(t, tab.remove(ss[i]))
			}
			assert.Equal(t, 0, tab.live)
			assert.Equal(t, minTableSize, tab.size(), "an empty table shrinks back")
			for _, s := range ss {
				assert.False(t, tab.find(s))
			}
		})
	}
}

// TestMemoryStoreLookupDuringResizes looks sessions up without a lock while
// another goroutine adds and ends thousands of others, growing and
// shrinking the shards' tables: a session that stays is always found, one
// that has ended never is. Run with -race.
func TestMemoryStoreLookupDuringResizes(t *testing.T) {
	st := NewMemoryStore()
	stay := make([]*Session, 64)
	for i := range stay {
		stay[i] = &Session{id: uuid.New()}
		st.add(stay[i])
	}
	gone := &Session{id: uuid.New()}
	st.add(gone)
	require.True(t, st.drop(gone))

	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				for _, s := range stay {
					if st.lookup(s.id) != s {
						t.Errorf("session %s not found", s.id)
						return
					}
				}
				if st.lookup(gone.id) != nil {
					t.Error("an ended session was found")
					return
				}
			}
		})
	}
	for range 5 {
		churn := make([]*Session, 20000) // about 300 a shard: several resizes each way
		for i := range churn {
			churn[i] = &Session{id: uuid.New()}
			st.add(churn[i])
		}
		for _, s := range churn {
			require.True(t, st.drop(s))
			require.Nil(t, st.lookup(s.id))
		}
	}
	close(done)
	wg.Wait()
	assert.EqualValues(t, len(stay), st.live.Load())
}
