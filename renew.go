package sessions

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
)

// Renew gives the request's session a new ID and sets the new cookie on w:
// call it when the user's privileges change (a step-up login, a new role)
// while the session goes on, so that an ID that leaked before the change is
// worth nothing after it. Everything else stays: the user, the data, the
// creation time, the absolute deadline (AbsoluteTimeout is not restarted),
// and the session's place under MaxSessionsPerUser (the old ID is replaced,
// never a session added, so no other session is evicted). The renewal
// counts as activity. Pending changes of the request's session are saved
// first. The new cookie is persistent or browser-session as the old one was
// (see RememberMe); with WithTokenHeader the response carries the new token
// too. After Renew, FromContext(r.Context()) returns the renewed session.
//
// No termination hook runs: no session ended. (Start, by contrast, ends the
// old session with ReasonRenewed and begins a new one.) The old ID is dead at
// once: another request still running with it loses the changes it makes
// after Renew, and one arriving with the old cookie finds no session.
//
// A request with no live session is ErrNotFound. On a shared store the
// renewal takes two store calls; if the store fails between them the
// session has ended, Renew returns the error, and the hooks run for it
// with ReasonRenewed, so that no ending goes unreported.
func (m *Manager) Renew(w http.ResponseWriter, r *http.Request) (*Session, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	st := m.state(r)
	old, ok := m.requestSession(r, st)
	if !ok {
		return nil, ErrNotFound
	}
	if st != nil {
		if cur := st.s.Load(); cur != nil && cur.shared() {
			if err := cur.Save(r.Context()); err != nil {
				return nil, err
			}
		}
	}
	id, err := m.newID("")
	if err != nil {
		return nil, err
	}
	if m.placer != nil {
		// The session stays where its store placed it (see Placer).
		id[0], id[1] = old[0], old[1]
	}
	// The new cookie keeps the old one's lifetime (see RememberMe).
	prev, _, sent := m.requestToken(r)
	value, err := m.cookies.encodeFor(id, sent && !m.cookies.persistent(prev))
	if err != nil {
		return nil, err
	}
	s, err := m.renew(r.Context(), old, id)
	if err != nil {
		return nil, err
	}
	if m.mem != nil {
		s.rememberIssued(m.cookies, value)
	}
	h := w.Header()
	m.sendCookie(h, st, m.cookies.cookie(value).String())
	if name := m.web.tokenHeader; name != "" && name != "Authorization" {
		h.Set(name, value)
	}
	if st != nil {
		st.s.Store(s)
	}
	return s, nil
}

// renew moves the live session old to the new ID id; see Renew.
func (m *Manager) renew(ctx context.Context, old, id uuid.UUID) (*Session, error) {
	if err := m.enter(); err != nil {
		return nil, err
	}
	defer m.guard.RUnlock()
	now := time.Now()
	var s *Session
	var evs []Event
	var err error
	switch b := m.b.(type) {
	case *memBackend:
		if cur := b.st.lookup(old); cur != nil {
			s, err = b.st.rename(cur, id, now.UnixNano())
		} else {
			err = ErrNotFound
		}
	case *storeBackend:
		s, evs, err = b.renew(ctx, old, id, now)
	default:
		err = fmt.Errorf("sessions: Renew: backend %T cannot renew", m.b)
	}
	m.fire(evs...)
	switch {
	case err == nil:
		return s, nil
	case errors.Is(err, ErrNotFound):
		return nil, err
	}
	return nil, m.storeErr("renew", err)
}

// renew moves the live session old to the new ID id through the Store
// interface: Delete, then Create of the same record under the new ID. The
// record keeps its values as stored (no decoding), its creation time and
// absolute deadline. Create runs with the user's limit and EvictOldest, so
// the limit holds exactly even if a concurrent Create took the freed place
// in between. If Create fails, the session has ended: its event
// (ReasonRenewed) is returned with the error.
func (b *storeBackend) renew(ctx context.Context, old, id uuid.UUID, now time.Time) (*Session, []Event, error) {
	rec, err := b.st.Delete(ctx, old.String())
	if err != nil {
		return nil, nil, err
	}
	ended := rec
	ended.ID = old.String()
	rec.ID = id.String()
	if rec.SealedID, err = b.sealer.seal(rec.ID); err != nil {
		return nil, []Event{b.event(ended, ReasonRenewed, now)}, err
	}
	if rec.LastActivity.Before(now) {
		rec.LastActivity = now
	}
	rec.Claim, rec.LeaseEnd = "", time.Time{}
	removed, err := b.st.Create(ctx, rec, b.cfg.MaxSessionsPerUser, EvictOldest)
	evs := make([]Event, 0, len(removed)+1)
	for _, r := range removed {
		evs = append(evs, b.event(r, limitReason(r.Expired(now), r.expiryReason()), now))
	}
	if err != nil {
		return nil, append(evs, b.event(ended, ReasonRenewed, now)), err
	}
	return b.session(rec, id), evs, nil
}
