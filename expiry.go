package sessions

// expiryHeap orders a shard's sessions by deadline, kept inline so that
// reordering the heap reads and writes only the heap's own array, never the
// sessions. It is lazy twice over: activity does not update it (an entry
// whose deadline has passed is looked at again and re-filed under the
// session's real deadline if it is still live), and a session that ends
// otherwise leaves its entry behind, counted in stale, until a pop finds it
// or addStale drops every such entry. Each live session has exactly one
// entry. The shard's lock guards it.
type expiryHeap struct {
	e     []expiryEntry
	stale int // entries of sessions that have ended
}

type expiryEntry struct {
	at int64 // the session's deadline when filed (≤ its real deadline)
	s  *Session
}

func (h *expiryHeap) push(s *Session) {
	h.e = append(h.e, expiryEntry{s.deadline(), s})
	h.up(len(h.e) - 1)
}

// top returns the entry due first; the heap must not be empty.
func (h *expiryHeap) top() expiryEntry { return h.e[0] }

// pop removes the entry due first.
func (h *expiryHeap) pop() {
	n := len(h.e) - 1
	h.e[0] = h.e[n]
	h.e[n] = expiryEntry{}
	h.e = h.e[:n]
	if n > 0 {
		h.down(0)
	}
}

// refile moves the first entry to the session's real deadline.
func (h *expiryHeap) refile(at int64) {
	h.e[0].at = at
	h.down(0)
}

// addStale records that a session with an entry has ended otherwise than by
// being popped, and drops the stale entries once they are more than half
// of the heap.
func (h *expiryHeap) addStale() {
	h.stale++
	if h.stale > 64 && h.stale > len(h.e)/2 {
		live := h.e[:0]
		for _, e := range h.e {
			if !e.s.ended.Load() {
				live = append(live, e)
			}
		}
		clear(h.e[len(live):])
		h.e, h.stale = live, 0
		for i := len(h.e)/2 - 1; i >= 0; i-- {
			h.down(i)
		}
	}
}

func (h *expiryHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h.e[p].at <= h.e[i].at {
			return
		}
		h.e[p], h.e[i] = h.e[i], h.e[p]
		i = p
	}
}

func (h *expiryHeap) down(i int) {
	n := len(h.e)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if r := c + 1; r < n && h.e[r].at < h.e[c].at {
			c = r
		}
		if h.e[i].at <= h.e[c].at {
			return
		}
		h.e[i], h.e[c] = h.e[c], h.e[i]
		i = c
	}
}

// expired appends to out the live sessions of h that have expired at now,
// visiting only the part of the heap filed at or before now.
func (h *expiryHeap) expired(now int64, out []*Session) []*Session {
	var walk func(i int)
	walk = func(i int) {
		if i >= len(h.e) || h.e[i].at > now {
			return
		}
		if s := h.e[i].s; !s.ended.Load() && s.expiredAt(now) {
			out = append(out, s)
		}
		walk(2*i + 1)
		walk(2*i + 2)
	}
	walk(0)
	return out
}
