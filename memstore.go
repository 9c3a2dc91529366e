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
// A request takes one shard's read lock, briefly, and never a lock that
// waits on another session: sessions are spread over 64 shards by ID, and
// recording activity is one atomic write.
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

type memShard struct {
	mu   sync.RWMutex
	byID map[uuid.UUID]*Session
	exp  expiryHeap
	_    [40]byte // keep neighbouring shards' locks off one cache line
}

// userShard indexes the sessions of the users whose ID hashes to it. A
// user with one session, the common case, costs one map entry and no slice.
type userShard struct {
	mu   sync.Mutex
	one  map[string]*Session   // users with exactly one session
	many map[string][]*Session // users with two or more
	_    [40]byte
}

// get returns user's sessions; buf backs a single one. The result is valid
// while us.mu is held.
func (us *userShard) get(user string, buf *[1]*Session) []*Session {
	if s, ok := us.one[user]; ok {
		buf[0] = s
		return buf[:]
	}
	return us.many[user]
}

// set records user's sessions and returns how the number of users
// changed: -1, 0 or +1.
func (us *userShard) set(user string, list []*Session) int64 {
	_, had1 := us.one[user]
	_, hadN := us.many[user]
	had := had1 || hadN
	switch len(list) {
	case 0:
		delete(us.one, user)
		delete(us.many, user)
		if had {
			return -1
		}
		return 0
	case 1:
		us.one[user] = list[0]
		delete(us.many, user)
	default:
		us.many[user] = list
		delete(us.one, user)
	}
	if had {
		return 0
	}
	return 1
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	st := &MemoryStore{seed: maphash.MakeSeed()}
	for i := range st.shards {
		st.shards[i].byID = make(map[uuid.UUID]*Session)
		st.users[i].one = make(map[string]*Session)
		st.users[i].many = make(map[string][]*Session)
	}
	return st
}

func (st *MemoryStore) shard(id uuid.UUID) *memShard {
	return &st.shards[id[15]&(shardCount-1)] // the last byte of a v4 UUID is random
}

func (st *MemoryStore) userShard(user string) *userShard {
	return &st.users[maphash.String(st.seed, user)&(shardCount-1)]
}

// lookup returns the session with id, live or expired-but-not-swept, or nil.
func (st *MemoryStore) lookup(id uuid.UUID) *Session {
	sh := st.shard(id)
	sh.mu.RLock()
	s := sh.byID[id]
	sh.mu.RUnlock()
	return s
}

// insert adds s, enforcing limit for its user as Store.Create describes, and
// returns the sessions it removed.
func (st *MemoryStore) insert(s *Session, limit int, policy LimitPolicy, now int64) ([]*Session, error) {
	if s.userID == "" {
		st.add(s)
		return nil, nil
	}
	us := st.userShard(s.userID)
	us.mu.Lock()
	defer us.mu.Unlock()
	var buf [1]*Session
	list := us.get(s.userID, &buf)
	var removed []*Session
	keep := list[:0]
	for _, o := range list {
		if o.expiredAt(now) && st.drop(o) {
			removed = append(removed, o)
			continue
		}
		keep = append(keep, o)
	}
	clear(list[len(keep):])
	if limit > 0 && len(keep) >= limit {
		if policy == RejectNew {
			st.setUserList(us, s.userID, keep)
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
	st.setUserList(us, s.userID, append(keep, s))
	return removed, nil
}

func (st *MemoryStore) setUserList(us *userShard, user string, list []*Session) {
	st.nuser.Add(us.set(user, list))
}

// add puts s in its shard and the expiry heap.
func (st *MemoryStore) add(s *Session) {
	sh := st.shard(s.id)
	sh.mu.Lock()
	sh.byID[s.id] = s
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
	if sh.byID[s.id] != s {
		return false
	}
	delete(sh.byID, s.id)
	s.ended.Store(true)
	sh.exp.ended(s)
	st.live.Add(-1)
	return true
}

// remove ends s if it is still in the store and ok (when not nil) agrees,
// keeping the user index in step. It reports whether this call removed it.
func (st *MemoryStore) remove(s *Session, ok func(*Session) bool) bool {
	if s.userID == "" {
		if ok != nil && !ok(s) {
			return false
		}
		return st.drop(s)
	}
	us := st.userShard(s.userID)
	us.mu.Lock()
	defer us.mu.Unlock()
	if ok != nil && !ok(s) {
		return false
	}
	if !st.drop(s) {
		return false
	}
	var buf [1]*Session
	list := us.get(s.userID, &buf)
	if i := slices.Index(list, s); i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	st.setUserList(us, s.userID, list)
	return true
}

// removeUser ends every session of user live at now and returns them;
// expired ones stay for the sweep to claim.
func (st *MemoryStore) removeUser(user string, now int64) []*Session {
	us := st.userShard(user)
	us.mu.Lock()
	defer us.mu.Unlock()
	var removed []*Session
	var buf [1]*Session
	list := us.get(user, &buf)
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
	st.setUserList(us, user, keep)
	return removed
}

// userSessions returns user's sessions live at now.
func (st *MemoryStore) userSessions(user string, now int64) []*Session {
	us := st.userShard(user)
	us.mu.Lock()
	defer us.mu.Unlock()
	var out []*Session
	var buf [1]*Session
	for _, s := range us.get(user, &buf) {
		if !s.expiredAt(now) {
			out = append(out, s)
		}
	}
	return out
}

// all returns every session live at now.
func (st *MemoryStore) all(now int64) []*Session {
	var out []*Session
	for i := range st.shards {
		sh := &st.shards[i]
		sh.mu.RLock()
		for _, s := range sh.byID {
			if !s.expiredAt(now) {
				out = append(out, s)
			}
		}
		sh.mu.RUnlock()
	}
	return out
}

// snapshot returns every session in the store, expired or not.
func (st *MemoryStore) snapshot() []*Session {
	var out []*Session
	for i := range st.shards {
		sh := &st.shards[i]
		sh.mu.RLock()
		for _, s := range sh.byID {
			out = append(out, s)
		}
		sh.mu.RUnlock()
	}
	return out
}

// expired removes up to max sessions expired at now and returns them. Each
// shard's lock is held only while its heap yields candidates, at most max
// at a time.
func (st *MemoryStore) expired(now int64, max int) []*Session {
	var out []*Session
	expiredNow := func(s *Session) bool { return s.expiredAt(now) }
	for i := range st.shards {
		if len(out) >= max {
			break
		}
		sh := &st.shards[i]
		var cand []*Session
		sh.mu.Lock()
		for len(sh.exp.e) > 0 && sh.exp.top().at <= now && len(out)+len(cand) < max {
			s := sh.exp.top().s
			switch d := s.deadline(); {
			case s.ended.Load(): // ended otherwise: its entry was stale
				sh.exp.pop()
				sh.exp.stale--
			case d > now: // activity moved it: file it anew
				sh.exp.refile(d)
			default:
				sh.exp.pop()
				cand = append(cand, s)
			}
		}
		sh.mu.Unlock()
		for _, s := range cand {
			if st.remove(s, expiredNow) {
				out = append(out, s)
				continue
			}
			st.reindex(s) // activity came in between, or another caller ended it
		}
	}
	return out
}

// reindex files s again in its shard's heap, after a sweep took it as a
// candidate and did not end it, if it is still in the store.
func (st *MemoryStore) reindex(s *Session) {
	sh := st.shard(s.id)
	sh.mu.Lock()
	if sh.byID[s.id] == s {
		sh.exp.push(s)
	}
	sh.mu.Unlock()
}

// count reports the sessions and users live at now. The expired sessions
// not yet swept are found from the heaps, so it costs in proportion to them.
func (st *MemoryStore) count(now int64) (sessions, users int) {
	sessions, users = int(st.live.Load()), int(st.nuser.Load())
	var stale []*Session
	for i := range st.shards {
		sh := &st.shards[i]
		sh.mu.RLock()
		stale = sh.exp.expired(now, stale)
		sh.mu.RUnlock()
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
	if err != nil || !st.remove(s, nil) {
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

// Expired implements Store. Claims need no lease in one process: Ack does
// nothing.
func (st *MemoryStore) Expired(_ context.Context, now time.Time, max int) ([]Record, error) {
	return recordsOf(st.expired(now.UnixNano(), max)), nil
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
