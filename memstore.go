package sessions

import (
	"cmp"
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

const shardCount = 64 // a power of two

// MemoryStore keeps sessions in this process's memory; they die with it. It
// is the default store. Several managers in one process may share one: a
// session ended by one is gone for all, and Close of the last of them ends
// every session left.
//
// A request takes no lock: finding a session is a few atomic loads in a
// hash table, and recording activity is one atomic write. Changes lock one
// of 64 shards, briefly; a sweep holds a shard's lock for at most 64
// expired sessions at a time.
// Expiry is kept in a heap per shard, so a sweep costs in proportion to what
// has expired, and per-user operations cost in proportion to that user's
// sessions. A Manager uses the live sessions directly; the Store methods,
// which copy sessions to and from Records, exist for the storetest suite and
// for wrapping the store.
type MemoryStore struct {
	seed   maphash.Seed
	shards [shardCount]memShard
	users  [shardCount]userShard

	live  atomic.Int64 // sessions in the shards
	nuser atomic.Int64 // users with at least one session

	mu       sync.Mutex
	managers int // managers using the store; the last to close ends what is left
}

// memShard holds the sessions whose ID hashes to it.
type memShard struct {
	mu  sync.Mutex // held by every change; lookups take no lock
	ids sessionTable
	exp expiryHeap
	_   [56]byte // keep neighbouring shards off one cache line
}

// userShard indexes the sessions of the users whose ID hashes to it. A
// user with one session, the common case, costs one table slot.
type userShard struct {
	mu   sync.Mutex
	one  sessionTable          // users with exactly one session: that session
	many map[string][]*Session // users with two or more
	_    [16]byte
}

// sweepChunk is how many expired sessions a sweep takes from a shard's heap
// per hold of the shard's lock, so that changes to the shard wait little.
const sweepChunk = 64

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	st := &MemoryStore{seed: maphash.MakeSeed()}
	byID := func(s *Session) uint64 { return st.idHash(s.id) / shardCount }
	byUser := func(s *Session) uint64 { return uint64(s.uhash / shardCount) }
	for i := range st.shards {
		st.shards[i].ids.init(byID)
		st.users[i].one.init(byUser)
		st.users[i].many = make(map[string][]*Session)
	}
	return st
}

// idHash places a session ID: its low bits choose the shard, the others the
// slot. It is keyed, so that nobody can choose IDs that crowd one place.
func (st *MemoryStore) idHash(id uuid.UUID) uint64 { return maphash.Bytes(st.seed, id[:]) }

func (st *MemoryStore) shard(id uuid.UUID) *memShard {
	return &st.shards[st.idHash(id)%shardCount]
}

func (st *MemoryStore) userHash(user string) uint32 {
	return uint32(maphash.String(st.seed, user))
}

func (st *MemoryStore) userShard(uh uint32) *userShard {
	return &st.users[uh%shardCount]
}

// lookup returns the session with id, live or expired-but-not-swept, or nil.
// It takes no lock.
func (st *MemoryStore) lookup(id uuid.UUID) *Session {
	h := st.idHash(id)
	a := st.shards[h%shardCount].ids.array()
	for i := (h / shardCount) & a.mask; ; i = (i + 1) & a.mask {
		s := a.slots[i].Load()
		if s == nil {
			return nil
		}
		if s != tombstone && s.id == id && !s.ended.Load() {
			return s
		}
	}
}

// findOne returns user's session if the user has exactly one; us.mu is held.
func (us *userShard) findOne(user string, uh uint32) *Session {
	a := us.one.array()
	for i := uint64(uh/shardCount) & a.mask; ; i = (i + 1) & a.mask {
		s := a.slots[i].Load()
		if s == nil {
			return nil
		}
		if s != tombstone && s.uhash == uh && s.userID == user {
			return s
		}
	}
}

// sessions returns user's sessions, which the caller may reorder and
// shorten, and the session held in us.one if the user had one there, for
// replace. us.mu is held.
func (us *userShard) sessions(user string, uh uint32) (list []*Session, one *Session) {
	if one = us.findOne(user, uh); one != nil {
		return []*Session{one}, one
	}
	return us.many[user], nil
}

// replace records list as user's sessions in place of what sessions
// returned (one, or a list of two or more when had and one is nil), and
// returns how the number of users changed: -1, 0 or +1.
func (us *userShard) replace(user string, one *Session, had bool, list []*Session) int64 {
	if one != nil {
		us.one.remove(one)
	}
	switch len(list) {
	case 0:
		delete(us.many, user)
	case 1:
		delete(us.many, user)
		us.one.insert(list[0])
	default:
		us.many[user] = list
	}
	switch {
	case had && len(list) == 0:
		return -1
	case !had && len(list) > 0:
		return 1
	}
	return 0
}

// insert adds s, enforcing limit for its user as Store.Create describes, and
// returns the sessions it removed. Without a limit it looks at none of the
// user's other sessions (their expired ones are left to the sweep), so its
// cost does not grow with them.
func (st *MemoryStore) insert(s *Session, limit int, policy LimitPolicy, now int64) ([]*Session, error) {
	if s.userID == "" {
		st.add(s)
		return nil, nil
	}
	s.uhash = st.userHash(s.userID)
	us := st.userShard(s.uhash)
	us.mu.Lock()
	defer us.mu.Unlock()
	list, one := us.sessions(s.userID, s.uhash)
	had := len(list) > 0
	if limit <= 0 {
		st.add(s)
		st.nuser.Add(us.replace(s.userID, one, had, append(list, s)))
		return nil, nil
	}
	var removed []*Session
	keep := list[:0]
	for _, o := range list {
		switch {
		case o.ended.Load(): // a sweep is taking it out of the index
		case o.expiredAt(now) && st.drop(o):
			removed = append(removed, o)
		default:
			keep = append(keep, o)
		}
	}
	clear(list[len(keep):])
	if limit > 0 && len(keep) >= limit {
		if policy == RejectNew {
			st.nuser.Add(us.replace(s.userID, one, had, keep))
			return removed, ErrLimitReached
		}
		slices.SortFunc(keep, func(a, b *Session) int { return cmp.Compare(a.last.Load(), b.last.Load()) })
		n := len(keep) - limit + 1
		for _, o := range keep[:n] {
			if st.drop(o) {
				removed = append(removed, o)
			}
		}
		keep = append(keep[:0], keep[n:]...)
		clear(keep[len(keep):cap(keep)])
	}
	st.add(s)
	st.nuser.Add(us.replace(s.userID, one, had, append(keep, s)))
	return removed, nil
}

// rename replaces old, if it is live at now, by a session that is old under
// the new ID id: same user, creation time, timeouts, absolute deadline,
// client and data, with activity at now. The user's count of sessions never
// changes, not even for a moment, so no limit applies; old ends without
// being reported (its ending is not one). It returns ErrNotFound if old has
// ended or expired.
func (st *MemoryStore) rename(old *Session, id uuid.UUID, now int64) (*Session, error) {
	s := &Session{id: id, userID: old.userID, created: old.created, idle: old.idle,
		absolute: old.absolute, uhash: old.uhash, info: old.info, sh: old.sh}
	s.last.Store(max(old.last.Load(), now))
	var us *userShard
	if old.userID != "" {
		us = st.userShard(old.uhash)
		us.mu.Lock()
		defer us.mu.Unlock()
	}
	// Under old.mu, so that no change to old lands after its data is copied.
	old.mu.Lock()
	defer old.mu.Unlock()
	if old.expiredAt(now) || !st.drop(old) {
		return nil, ErrNotFound
	}
	s.data = slices.Clone(old.data)
	st.add(s)
	if us == nil {
		return s, nil
	}
	// old was live under us.mu, so it is in the user's index.
	if us.one.remove(old) {
		us.one.insert(s)
	} else if list := us.many[old.userID]; slices.Index(list, old) >= 0 {
		list[slices.Index(list, old)] = s
	}
	return s, nil
}

// add puts s in its shard and the expiry heap.
func (st *MemoryStore) add(s *Session) {
	sh := st.shard(s.id)
	sh.mu.Lock()
	sh.ids.insert(s)
	sh.exp.push(s)
	sh.mu.Unlock()
	st.live.Add(1)
}

// drop removes s from its shard and heap; it reports whether this call
// removed it (the caller then owns its ending). The caller holds the lock of
// s's user shard, or s is anonymous.
func (st *MemoryStore) drop(s *Session) bool {
	sh := st.shard(s.id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.ended.Load() {
		return false
	}
	s.ended.Store(true) // before it leaves the table: see sessionTable
	sh.ids.remove(s)
	sh.exp.addStale()
	st.live.Add(-1)
	return true
}

// remove ends s if it is still in the store, keeping the user index in
// step. It reports whether this call removed it.
func (st *MemoryStore) remove(s *Session) bool {
	if s.userID == "" {
		return st.drop(s)
	}
	us := st.userShard(s.uhash)
	us.mu.Lock()
	defer us.mu.Unlock()
	if !st.drop(s) {
		return false
	}
	st.unindex(us, s)
	return true
}

// unindex takes s, which has ended, out of its user's sessions if it is
// still there; us is s's user shard, whose lock is held.
func (st *MemoryStore) unindex(us *userShard, s *Session) {
	if us.one.remove(s) { // the user's only session
		st.nuser.Add(-1)
		return
	}
	list := us.many[s.userID]
	if i := slices.Index(list, s); i >= 0 {
		st.nuser.Add(us.replace(s.userID, nil, true, slices.Delete(list, i, i+1)))
	}
}

// removeUser ends every session of user live at now and returns them;
// expired ones stay for the sweep to claim.
func (st *MemoryStore) removeUser(user string, now int64) []*Session {
	uh := st.userHash(user)
	us := st.userShard(uh)
	us.mu.Lock()
	defer us.mu.Unlock()
	list, one := us.sessions(user, uh)
	had := len(list) > 0
	var removed []*Session
	keep := list[:0]
	for _, s := range list {
		if !s.expiredAt(now) && st.drop(s) {
			removed = append(removed, s)
			continue
		}
		if !s.ended.Load() {
			keep = append(keep, s)
		}
	}
	clear(list[len(keep):])
	st.nuser.Add(us.replace(user, one, had, keep))
	return removed
}

// userSessions returns user's sessions live at now.
func (st *MemoryStore) userSessions(user string, now int64) []*Session {
	uh := st.userHash(user)
	us := st.userShard(uh)
	us.mu.Lock()
	defer us.mu.Unlock()
	list, _ := us.sessions(user, uh)
	var out []*Session
	for _, s := range list {
		if !s.ended.Load() && !s.expiredAt(now) {
			out = append(out, s)
		}
	}
	return out
}

// all returns every session live at now.
func (st *MemoryStore) all(now int64) []*Session {
	var out []*Session
	for _, s := range st.snapshot() {
		if !s.expiredAt(now) {
			out = append(out, s)
		}
	}
	return out
}

// snapshot returns every session in the store, expired or not.
func (st *MemoryStore) snapshot() []*Session {
	var out []*Session
	for i := range st.shards {
		sh := &st.shards[i]
		sh.mu.Lock()
		sh.ids.each(func(s *Session) { out = append(out, s) })
		sh.mu.Unlock()
	}
	return out
}

// expired removes up to max sessions expired at now and returns them. It
// works a chunk at a time: under one hold of a shard's lock it takes up to
// sweepChunk due sessions out of the heap and the ID table, marking them
// ended, then takes each out of its user's index under that user shard's
// lock. In between, the user index still lists them; every reader of it
// skips sessions that have ended.
func (st *MemoryStore) expired(now int64, max int) []*Session {
	var out []*Session
	for i := range st.shards {
		for len(out) < max {
			n := len(out)
			out = st.shards[i].takeDue(now, min(sweepChunk, max-n), out)
			if len(out) == n {
				break
			}
			st.live.Add(int64(n - len(out)))
			for _, s := range out[n:] {
				if s.userID != "" {
					us := st.userShard(s.uhash)
					us.mu.Lock()
					st.unindex(us, s)
					us.mu.Unlock()
				}
			}
		}
	}
	return out
}

// takeDue ends up to n sessions of the shard expired at now, taking them out
// of its heap and table, and appends them to out. Sessions that saw activity
// since they were filed are filed again under their real deadline.
func (sh *memShard) takeDue(now int64, n int, out []*Session) []*Session {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	first := len(out)
	for len(out)-first < n && len(sh.exp.e) > 0 && sh.exp.top().at <= now {
		s := sh.exp.top().s
		switch d := s.deadline(); {
		case s.ended.Load(): // ended otherwise: its entry was stale
			sh.exp.pop()
			sh.exp.stale--
		case d > now: // activity moved it: file it anew
			sh.exp.refile(d)
		default:
			sh.exp.pop()
			s.ended.Store(true) // before it leaves the table: see sessionTable
			sh.ids.remove(s)
			out = append(out, s)
		}
	}
	return out
}

// count reports the sessions and users live at now. The expired sessions
// not yet swept are found from the heaps, so it costs in proportion to them.
func (st *MemoryStore) count(now int64) (sessions, users int) {
	sessions, users = int(st.live.Load()), int(st.nuser.Load())
	var stale []*Session
	for i := range st.shards {
		sh := &st.shards[i]
		sh.mu.Lock()
		stale = sh.exp.expired(now, stale)
		sh.mu.Unlock()
	}
	sessions -= len(stale)
	seen := make(map[string]bool)
	for _, s := range stale {
		if s.userID == "" || seen[s.userID] {
			continue
		}
		seen[s.userID] = true
		if len(st.userSessions(s.userID, now)) == 0 {
			users--
		}
	}
	return max(sessions, 0), max(users, 0)
}

// attach and detach count the managers using the store; detach reports
// whether the caller was the last.
func (st *MemoryStore) attach() {
	st.mu.Lock()
	st.managers++
	st.mu.Unlock()
}

func (st *MemoryStore) detach() (last bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.managers--
	return st.managers == 0
}

// The Store methods follow. They copy between Records and live sessions,
// keeping values as the encoded bytes they came in as; the Manager does not
// use them for the memory store.

var _ Store = (*MemoryStore)(nil)

// Create implements Store.
func (st *MemoryStore) Create(_ context.Context, rec Record, limit int, policy LimitPolicy) ([]Record, error) {
	s, err := sessionFromRecord(rec)
	if err != nil {
		return nil, err
	}
	if st.lookup(s.id) != nil {
		return nil, fmt.Errorf("sessions: memory store: session %s exists", logID(rec.ID))
	}
	removed, err := st.insert(s, limit, policy, time.Now().UnixNano())
	return recordsOf(removed), err
}

// Load implements Store.
func (st *MemoryStore) Load(_ context.Context, id string) (Record, error) {
	s, err := st.liveSession(id, time.Now().UnixNano())
	if err != nil {
		return Record{}, err
	}
	return recordOf(s), nil
}

// Activate implements Store.
func (st *MemoryStore) Activate(_ context.Context, id string, at time.Time) (Record, error) {
	s, err := st.liveSession(id, time.Now().UnixNano())
	if err != nil {
		return Record{}, err
	}
	s.touchAt(at.UnixNano())
	return recordOf(s), nil
}

// Update implements Store.
func (st *MemoryStore) Update(_ context.Context, id string, at time.Time, set map[string][]byte, del []string) error {
	s, err := st.liveSession(id, time.Now().UnixNano())
	if err != nil {
		return err
	}
	s.mu.Lock()
	for _, k := range del {
		if i := s.find(k); i >= 0 {
			s.data = slices.Delete(s.data, i, i+1)
		}
	}
	for k, b := range set {
		v := rawValue(slices.Clone(b))
		if i := s.find(k); i >= 0 {
			s.data[i].val = v
		} else {
			s.data = append(s.data, entry{k, v})
		}
	}
	s.mu.Unlock()
	s.touchAt(at.UnixNano())
	return nil
}

// Delete implements Store.
func (st *MemoryStore) Delete(_ context.Context, id string) (Record, error) {
	s, err := st.liveSession(id, time.Now().UnixNano())
	if err != nil || !st.remove(s) {
		return Record{}, ErrNotFound
	}
	return recordOf(s), nil
}

// DeleteUser implements Store.
func (st *MemoryStore) DeleteUser(_ context.Context, userID string) ([]Record, error) {
	return recordsOf(st.removeUser(userID, time.Now().UnixNano())), nil
}

// UserSessions implements Store.
func (st *MemoryStore) UserSessions(_ context.Context, userID string) ([]Record, error) {
	return recordsOf(st.userSessions(userID, time.Now().UnixNano())), nil
}

// All implements Store.
func (st *MemoryStore) All(_ context.Context) ([]Record, error) {
	return recordsOf(st.all(time.Now().UnixNano())), nil
}

// Expired implements Store. In one process a claim needs no lease: each
// record's Claim is its ID and its LeaseEnd is zero (never lapses).
func (st *MemoryStore) Expired(_ context.Context, now time.Time, max int) ([]Record, error) {
	recs := recordsOf(st.expired(now.UnixNano(), max))
	for i := range recs {
		recs[i].Claim = recs[i].ID
	}
	return recs, nil
}

// Extend implements Store. Its claims never lapse (LeaseEnd is zero), so a
// Manager never extends them; the store holds nothing after Expired, and
// Extend reports no claim held.
func (st *MemoryStore) Extend(context.Context, []string, time.Time) ([]string, time.Time, error) {
	return nil, time.Time{}, nil
}

// Ack implements Store; it does nothing.
func (st *MemoryStore) Ack(context.Context, []string) error { return nil }

// Count implements Store.
func (st *MemoryStore) Count(_ context.Context, now time.Time) (int, int, error) {
	s, u := st.count(now.UnixNano())
	return s, u, nil
}

// liveSession returns the session id if it is live at now, else ErrNotFound.
func (st *MemoryStore) liveSession(id string, now int64) (*Session, error) {
	uid, err := parseID(id)
	if err != nil {
		return nil, err
	}
	s := st.lookup(uid)
	if s == nil || s.expiredAt(now) {
		return nil, ErrNotFound
	}
	return s, nil
}

func sessionFromRecord(rec Record) (*Session, error) {
	id, err := parseID(rec.ID)
	if err != nil {
		return nil, fmt.Errorf("sessions: memory store: record ID: %w", err)
	}
	s := newSession(rec, id)
	if rec.SealedID != nil {
		if s.info == nil {
			s.info = &clientInfo{}
		}
		s.info.sealedID = slices.Clone(rec.SealedID)
	}
	for k, b := range rec.Values {
		s.data = append(s.data, entry{k, rawValue(slices.Clone(b))})
	}
	return s, nil
}

// recordOf copies s into a Record; values that cannot be encoded are left
// out (a Manager never reads memory sessions through Records).
func recordOf(s *Session) Record {
	rec, _ := s.record()
	if s.info != nil {
		rec.SealedID = slices.Clone(s.info.sealedID)
	}
	return rec
}

func recordsOf(ss []*Session) []Record {
	if len(ss) == 0 {
		return nil
	}
	out := make([]Record, len(ss))
	for i, s := range ss {
		out[i] = recordOf(s)
	}
	return out
}

// parseID parses a session ID; anything but a UUID is ErrNotFound.
func parseID(id string) (uuid.UUID, error) {
	if len(id) != 36 {
		return uuid.UUID{}, ErrNotFound
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return uuid.UUID{}, ErrNotFound
	}
	return u, nil
}
