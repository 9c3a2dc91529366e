package sessions

import "sync/atomic"

// sessionTable is a hash set of sessions by open addressing with linear
// probing: one pointer a slot, at most 3/4 of the slots in use, so a
// session costs 11–16 bytes where a Go map entry keyed by the session's ID
// or user costs about 40. Its owner chooses the hash and holds a lock of
// its own around every change; lookups may run without that lock, since
// slots and the slot array are read and written atomically:
//
//   - a lookup that races with a change sees the table before or after it;
//   - a lookup may still be probing an array that a resize has replaced,
//     where sessions removed since are still present, so it must check the
//     session's own ended flag, which is set before the session is removed;
//   - a removed session leaves a tombstone, so that the probe sequences of
//     the others stay unbroken; tombstones are dropped when the array is
//     rebuilt.
type sessionTable struct {
	arr  atomic.Pointer[slotArray]
	hash func(*Session) uint64 // the slot a session's probe starts at, before masking

	live int // sessions in the table
	used int // slots that are not empty: sessions and tombstones
}

type slotArray struct {
	mask  uint64
	slots []atomic.Pointer[Session]
}

const minTableSize = 8 // a power of two

// tombstone fills the slot of a removed session; it is never in a store.
var tombstone = new(Session)

// init makes t an empty table placing sessions by hash.
func (t *sessionTable) init(hash func(*Session) uint64) {
	t.hash = hash
	t.arr.Store(newSlotArray(minTableSize))
}

func newSlotArray(size int) *slotArray {
	return &slotArray{mask: uint64(size - 1), slots: make([]atomic.Pointer[Session], size)}
}

// array returns the current slot array, for lookups. A lookup probes from
// h&a.mask, one slot at a time (wrapping), until a slot is empty; it skips
// tombstones.
func (t *sessionTable) array() *slotArray { return t.arr.Load() }

// insert adds s, which must not be in the table.
func (t *sessionTable) insert(s *Session) {
	a := t.array()
	if (t.used+1)*4 > len(a.slots)*3 {
		size := len(a.slots)
		if (t.live+1)*2 > size { // mostly live: grow; else only drop the tombstones
			size *= 2
		}
		a = t.rebuild(size)
	}
	for i := t.hash(s) & a.mask; ; i = (i + 1) & a.mask {
		switch p := a.slots[i].Load(); p {
		case nil:
			t.used++
			fallthrough
		case tombstone:
			a.slots[i].Store(s)
			t.live++
			return
		}
	}
}

// remove takes s out of the table and reports whether it was there.
func (t *sessionTable) remove(s *Session) bool {
	a := t.array()
	for i := t.hash(s) & a.mask; ; i = (i + 1) & a.mask {
		switch a.slots[i].Load() {
		case nil:
			return false
		case s:
			a.slots[i].Store(tombstone)
			t.live--
			if size := len(a.slots); size > minTableSize && t.live*8 < size {
				t.rebuild(size / 2)
			}
			return true
		}
	}
}

// each calls f for every session in the table.
func (t *sessionTable) each(f func(*Session)) {
	a := t.array()
	for i := range a.slots {
		if p := a.slots[i].Load(); p != nil && p != tombstone {
			f(p)
		}
	}
}

// rebuild moves the sessions to a new array of size slots (a power of two,
// at least minTableSize) without tombstones, publishes it and returns it.
func (t *sessionTable) rebuild(size int) *slotArray {
	old := t.array()
	a := newSlotArray(max(size, minTableSize))
	for i := range old.slots {
		s := old.slots[i].Load()
		if s == nil || s == tombstone {
			continue
		}
		j := t.hash(s) & a.mask
		for a.slots[j].Load() != nil {
			j = (j + 1) & a.mask
		}
		a.slots[j].Store(s)
	}
	t.used = t.live
	t.arr.Store(a)
	return a
}
