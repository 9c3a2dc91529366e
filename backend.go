package sessions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// backend is how a Manager reaches its store: memBackend hands out the
// memory store's live sessions; storeBackend goes through the Store
// interface, encoding values and sealing IDs.
type backend interface {
	// create adds s and returns the events of sessions the limit ended.
	create(ctx context.Context, s *Session, now time.Time) ([]Event, error)
	get(ctx context.Context, id uuid.UUID, touch bool, now time.Time) (*Session, error)
	end(ctx context.Context, id uuid.UUID, r Reason, now time.Time) (Event, error)
	endUser(ctx context.Context, user string, r Reason, now time.Time) ([]Event, error)
	userSessions(ctx context.Context, user string, now time.Time) ([]*Session, error)
	all(ctx context.Context, now time.Time) ([]*Session, error)
	// expired claims expired sessions and appends their events to into[:0].
	// A shared store also returns its claims, one per event, which must be
	// held until their hooks have run and then acknowledged (claimKeeper).
	// Unless detail is set (a hook will read them), the events may carry
	// only their Reason.
	expired(ctx context.Context, now time.Time, max int, detail bool, into []Event) (evs []Event, claims []claim, err error)
	count(ctx context.Context, now time.Time) (sessions, users int, err error)
}

// limitReason is why a session removed by Create's limit step ended.
func limitReason(expired bool, expiry Reason) Reason {
	if expired {
		return expiry
	}
	return ReasonEvicted
}

type memBackend struct {
	st  *MemoryStore
	cfg *Config
}

func (b *memBackend) create(_ context.Context, s *Session, now time.Time) ([]Event, error) {
	removed, err := b.st.insert(s, b.cfg.MaxSessionsPerUser, b.cfg.LimitPolicy, now.UnixNano())
	evs := make([]Event, len(removed))
	for i, o := range removed {
		evs[i] = o.event(limitReason(o.expiredAt(now.UnixNano()), o.expiryReason()), now)
	}
	return evs, err
}

// live returns the session id if it is live at now.
func (b *memBackend) live(id uuid.UUID, now int64) (*Session, error) {
	s := b.st.lookup(id)
	if s == nil || s.expiredAt(now) {
		return nil, ErrNotFound
	}
	return s, nil
}

func (b *memBackend) get(_ context.Context, id uuid.UUID, touch bool, now time.Time) (*Session, error) {
	s, err := b.live(id, now.UnixNano())
	if err == nil && touch {
		s.touchAt(now.UnixNano())
	}
	return s, err
}

func (b *memBackend) end(_ context.Context, id uuid.UUID, r Reason, now time.Time) (Event, error) {
	s, err := b.live(id, now.UnixNano())
	if err != nil || !b.st.remove(s) {
		return Event{}, ErrNotFound
	}
	return s.event(r, now), nil
}

func (b *memBackend) endUser(_ context.Context, user string, r Reason, now time.Time) ([]Event, error) {
	var evs []Event
	for _, s := range b.st.removeUser(user, now.UnixNano()) {
		evs = append(evs, s.event(r, now))
	}
	return evs, nil
}

func (b *memBackend) userSessions(_ context.Context, user string, now time.Time) ([]*Session, error) {
	return b.st.userSessions(user, now.UnixNano()), nil
}

func (b *memBackend) all(_ context.Context, now time.Time) ([]*Session, error) {
	return b.st.all(now.UnixNano()), nil
}

func (b *memBackend) expired(_ context.Context, now time.Time, max int, detail bool, into []Event) ([]Event, []claim, error) {
	evs := into[:0]
	for _, s := range b.st.expired(now.UnixNano(), max) {
		if detail {
			evs = append(evs, s.event(s.expiryReason(), now))
		} else {
			evs = append(evs, Event{Reason: s.expiryReason()})
		}
	}
	return evs, nil, nil
}

func (b *memBackend) count(_ context.Context, now time.Time) (int, int, error) {
	s, u := b.st.count(now.UnixNano())
	return s, u, nil
}

// shutdown ends every session left in the store: ReasonShutdown, or the
// expiry reason of one that had expired unswept.
func (b *memBackend) shutdown(now time.Time) []Event {
	var evs []Event
	for _, s := range b.st.snapshot() {
		if !b.st.remove(s) {
			continue
		}
		r := ReasonShutdown
		if s.expiredAt(now.UnixNano()) {
			r = s.expiryReason()
		}
		evs = append(evs, s.event(r, now))
	}
	return evs
}

type storeBackend struct {
	st     Store
	cfg    *Config
	sealer *idSealer
	log    *slog.Logger
	closed *atomic.Bool // the manager's
}

func (b *storeBackend) create(ctx context.Context, s *Session, now time.Time) ([]Event, error) {
	rec, err := s.record()
	if err != nil {
		return nil, err
	}
	sealed, err := b.sealer.seal(rec.ID)
	if err != nil {
		return nil, err
	}
	rec.SealedID = sealed
	removed, err := b.st.Create(ctx, rec, b.cfg.MaxSessionsPerUser, b.cfg.LimitPolicy)
	evs := make([]Event, 0, len(removed))
	for _, r := range removed {
		evs = append(evs, b.event(r, limitReason(r.Expired(now), r.expiryReason()), now))
	}
	s.sh = &sharedState{b: b}
	return evs, err
}

func (b *storeBackend) get(ctx context.Context, id uuid.UUID, touch bool, now time.Time) (*Session, error) {
	var rec Record
	var err error
	if touch {
		rec, err = b.st.Activate(ctx, id.String(), now)
	} else {
		rec, err = b.st.Load(ctx, id.String())
	}
	if err != nil {
		return nil, err
	}
	return b.session(rec, id), nil
}

func (b *storeBackend) end(ctx context.Context, id uuid.UUID, r Reason, now time.Time) (Event, error) {
	rec, err := b.st.Delete(ctx, id.String())
	if err != nil {
		return Event{}, err
	}
	if rec.ID == "" {
		rec.ID = id.String()
	}
	return b.event(rec, r, now), nil
}

func (b *storeBackend) endUser(ctx context.Context, user string, r Reason, now time.Time) ([]Event, error) {
	recs, err := b.st.DeleteUser(ctx, user)
	evs := make([]Event, 0, len(recs))
	for _, rec := range recs {
		evs = append(evs, b.event(rec, r, now))
	}
	return evs, err
}

func (b *storeBackend) userSessions(ctx context.Context, user string, _ time.Time) ([]*Session, error) {
	recs, err := b.st.UserSessions(ctx, user)
	return b.sessions(recs), err
}

func (b *storeBackend) all(ctx context.Context, _ time.Time) ([]*Session, error) {
	recs, err := b.st.All(ctx)
	return b.sessions(recs), err
}

func (b *storeBackend) expired(ctx context.Context, now time.Time, max int, _ bool, into []Event) ([]Event, []claim, error) {
	recs, err := b.st.Expired(ctx, now, max)
	evs := into[:0]
	claims := make([]claim, 0, len(recs))
	for _, rec := range recs {
		evs = append(evs, b.event(rec, rec.expiryReason(), now))
		claims = append(claims, claim{token: rec.Claim, leaseEnd: rec.LeaseEnd})
	}
	return evs, claims, err
}

func (b *storeBackend) count(ctx context.Context, now time.Time) (int, int, error) {
	return b.st.Count(ctx, now)
}

// id returns the record's session ID, unsealing it when the store kept only
// the sealed form.
func (b *storeBackend) id(rec Record) string {
	if rec.ID != "" || rec.SealedID == nil {
		return rec.ID
	}
	id, err := b.sealer.unseal(rec.SealedID)
	if err != nil {
		b.log.Warn("sessions: a stored session's sealed ID does not open with any key", "user", rec.UserID)
		return ""
	}
	return id
}

// values decodes a record's values into a map (an Event's Data); one that
// does not decode is left out, as entries leaves it.
func (b *storeBackend) values(rec Record) map[string]any {
	es := b.entries(rec)
	m := make(map[string]any, len(es))
	for _, e := range es {
		m[e.key] = e.val
	}
	return m
}

func (b *storeBackend) event(rec Record, r Reason, now time.Time) Event {
	return Event{
		SessionID:    b.id(rec),
		UserID:       rec.UserID,
		Reason:       r,
		CreatedAt:    rec.CreatedAt,
		LastActivity: rec.LastActivity,
		Data:         b.values(rec),
		At:           now,
	}
}

// session makes a Session of a record; id, when not zero, is known already.
func (b *storeBackend) session(rec Record, id uuid.UUID) *Session {
	if id == (uuid.UUID{}) {
		id, _ = uuid.Parse(b.id(rec))
	}
	s := newSession(rec, id)
	s.sh = &sharedState{b: b}
	s.data = b.entries(rec)
	return s
}

// entries decodes a record's values into a session's data; one that does
// not decode is left out (and left in the store: only changed keys are
// ever written). A read hit on a shared store builds one session per
// request from it, with no map in between.
func (b *storeBackend) entries(rec Record) []entry {
	data := make([]entry, 0, len(rec.Values))
	for k, raw := range rec.Values {
		v, err := decodeValue(raw)
		if err != nil {
			b.log.Warn("sessions: a stored value does not decode; leaving it out", "key", k, "err", err)
			continue
		}
		if bs, ok := v.([]byte); ok {
			v = bytes.Clone(bs)
		}
		data = append(data, entry{k, v})
	}
	return data
}

func (b *storeBackend) sessions(recs []Record) []*Session {
	out := make([]*Session, 0, len(recs))
	for _, rec := range recs {
		s := b.session(rec, uuid.UUID{})
		if s.id == (uuid.UUID{}) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// save writes s's pending changes. Keys changed again while the write is
// under way stay pending; on failure the written ones become pending again.
func (b *storeBackend) save(ctx context.Context, s *Session) error {
	if b.closed.Load() {
		return ErrClosed
	}
	s.mu.Lock()
	dirty, touched := s.sh.dirty, s.sh.touched
	if len(dirty) == 0 && !touched {
		s.mu.Unlock()
		return nil
	}
	set := make(map[string][]byte)
	var del []string
	var encErr error
	for k := range dirty {
		i := s.find(k)
		if i < 0 {
			del = append(del, k)
			continue
		}
		v, err := encodeValue(s.data[i].val)
		if err != nil {
			encErr = fmt.Errorf("sessions: value %q: %w", k, err)
			break
		}
		set[k] = v
	}
	if encErr != nil {
		s.mu.Unlock()
		return encErr
	}
	s.sh.dirty, s.sh.touched = nil, false
	s.mu.Unlock()

	err := b.st.Update(ctx, s.ID(), time.Unix(0, s.last.Load()), set, del)
	if err == nil {
		return nil
	}
	s.mu.Lock()
	for k := range dirty {
		s.markDirty(k)
	}
	s.sh.touched = s.sh.touched || touched
	s.mu.Unlock()
	if errors.Is(err, ErrNotFound) {
		s.ended.Store(true)
	}
	return err
}
