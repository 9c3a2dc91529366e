package sessions

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Session is one user's session. Its methods are safe for concurrent use by
// many requests.
//
// On the memory store a Session is the live session itself: a change is
// visible at once to every request. On a shared store it is a snapshot
// loaded for one request or call: changes are kept as pending and written by
// Save, which the Middleware calls before the response's first byte leaves.
type Session struct {
	id       uuid.UUID
	userID   string
	created  int64 // Unix nanoseconds
	idle     time.Duration
	absolute int64 // absolute deadline, Unix nanoseconds; 0 → none

	last  atomic.Int64 // last activity, Unix nanoseconds
	ended atomic.Bool  // set once, never cleared; on the memory store under the session's shard lock
	uhash uint32       // on the memory store: the hash of userID that places it (set before it is published)

	vsum atomic.Uint64 // keyed sum of a cookie value that verified; 0 → none (see remember)

	mu   sync.Mutex
	data []entry
	info *clientInfo

	sh *sharedState // nil on the memory store
}

type entry struct {
	key string
	val any
}

// clientInfo is what a session knows of the client that started it; kept
// apart so that sessions made without a request pay one pointer.
type clientInfo struct {
	userAgent  string
	remoteAddr string
	sealedID   []byte // Record.SealedID when the memory store is used as a Store
}

// sharedState is what a session loaded from a shared store needs to save
// itself: the store and the changes not yet written. A memory-store session
// made by a Manager points to its manager's sharedState instead, shared by
// all the sessions the manager made, with b nil: only log, closed and
// warned are used then.
type sharedState struct {
	b       *storeBackend
	dirty   map[string]struct{} // keys set or deleted since the last save
	touched bool                // Touch since the last save

	log    *slog.Logger // memory store: the manager's
	closed *atomic.Bool // memory store: the manager's
	warned atomic.Bool  // memory store: a change after Close was logged
}

// shared reports whether s was loaded from a shared store.
func (s *Session) shared() bool { return s.sh != nil && s.sh.b != nil }

// logger returns the logger of s's manager; slog.Default() for a session
// no Manager made (the MemoryStore's Store methods).
func (s *Session) logger() *slog.Logger {
	switch {
	case s.sh == nil:
		return slog.Default()
	case s.sh.b != nil:
		return s.sh.b.log
	}
	return s.sh.log
}

// ID returns the session ID: a random (version 4) UUID in its text form.
// Treat it as a secret: it identifies the session.
func (s *Session) ID() string { return s.id.String() }

// UserID returns the user the session belongs to; "" for an anonymous one.
func (s *Session) UserID() string { return s.userID }

// CreatedAt returns when the session was created.
func (s *Session) CreatedAt() time.Time { return time.Unix(0, s.created) }

// LastActivity returns when the session last saw activity.
func (s *Session) LastActivity() time.Time { return time.Unix(0, s.last.Load()) }

// UserAgent returns the User-Agent header of the request that started the
// session with Manager.Start; "" for sessions made by Create.
func (s *Session) UserAgent() string {
	if s.info == nil {
		return ""
	}
	return s.info.userAgent
}

// RemoteAddr returns the remote address (http.Request.RemoteAddr) of the
// request that started the session with Manager.Start; "" for sessions made
// by Create.
func (s *Session) RemoteAddr() string {
	if s.info == nil {
		return ""
	}
	return s.info.remoteAddr
}

// Active reports whether the session has neither ended nor expired. For a
// session loaded from a shared store it reflects what this process knows.
func (s *Session) Active() bool {
	return !s.ended.Load() && !s.expiredAt(time.Now().UnixNano())
}

// IdleFor returns how long the session has been idle.
func (s *Session) IdleFor() time.Duration {
	return time.Duration(time.Now().UnixNano() - s.last.Load())
}

// ExpiresAt returns when the session will expire unless it sees activity:
// its idle deadline or its absolute deadline, whichever comes first.
func (s *Session) ExpiresAt() time.Time { return time.Unix(0, s.deadline()) }

func (s *Session) deadline() int64 {
	d := s.last.Load() + int64(s.idle)
	if s.absolute != 0 && s.absolute < d {
		return s.absolute
	}
	return d
}

func (s *Session) expiredAt(now int64) bool { return s.deadline() <= now }

// expiryReason tells why a session that has expired ended.
func (s *Session) expiryReason() Reason {
	if s.absolute != 0 && s.absolute <= s.last.Load()+int64(s.idle) {
		return ReasonAbsolute
	}
	return ReasonIdle
}

// touchAt records activity at now; it never moves LastActivity back, and
// never brings back a session that has expired by now: once the idle
// deadline passed, only a sweep or a reader's ErrNotFound follows.
func (s *Session) touchAt(now int64) {
	for {
		old := s.last.Load()
		if old >= now || old+int64(s.idle) <= now || s.last.CompareAndSwap(old, now) {
			return
		}
	}
}

// Get returns the value stored under key and whether there was one. The
// value has the Go type it was stored with.
func (s *Session) Get(key string) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.find(key); i >= 0 {
		return s.data[i].val, true
	}
	return nil, false
}

// Set stores v under key. Every store accepts the same values, those it
// gives back with the Go type they were written with: nil, string, bool,
// the sized and unsized integer and float types, []byte, time.Time,
// time.Duration, and types registered with encoding/gob.Register (values,
// not pointers: a pointer would come back as what it points to). Set
// refuses any other value on every store, the memory store included, so
// that what works in development works on a shared store in production: it
// leaves key as it was and logs an error wrapping ErrUnsupportedValue.
//
// After the manager's Close has ended the session (memory store), a change
// is kept nowhere: the first one logs a warning, and Save returns ErrClosed.
func (s *Session) Set(key string, v any) {
	if err := checkValue(v); err != nil {
		s.logger().Error("sessions: Set refused a value that no store can keep; the key keeps its old value",
			"session", logID(s.ID()), "key", key, "err", err)
		return
	}
	if b, ok := v.([]byte); ok {
		v = bytes.Clone(b) // the caller may reuse its slice
	}
	s.mu.Lock()
	if i := s.find(key); i >= 0 {
		s.data[i].val = v
	} else {
		s.data = append(s.data, entry{key, v})
	}
	s.markDirty(key)
	s.mu.Unlock()
	s.warnClosed("Set", key)
}

// Delete removes key. After Close it warns as Set does.
func (s *Session) Delete(key string) {
	s.mu.Lock()
	if i := s.find(key); i >= 0 {
		s.data = append(s.data[:i], s.data[i+1:]...)
		s.markDirty(key)
	}
	s.mu.Unlock()
	s.warnClosed("Delete", key)
}

// warnClosed logs, once per manager, a change to a memory-store session
// that its manager's Close has ended.
func (s *Session) warnClosed(op, key string) {
	if !s.ended.Load() || s.sh == nil || s.sh.b != nil || !s.sh.closed.Load() || !s.sh.warned.CompareAndSwap(false, true) {
		return
	}
	s.sh.log.Warn("sessions: session changed after Manager.Close; the change is kept nowhere (further ones are not logged)",
		"op", op, "key", key, "session", logID(s.ID()))
}

// Data returns a copy of the session's data.
func (s *Session) Data() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]any, len(s.data))
	for _, e := range s.data {
		m[e.key] = e.val
	}
	return m
}

// Touch records activity now, as a request through the Middleware does. It
// never brings back a session that has expired: on every store an expired
// session stays expired (Manager.Get returns ErrNotFound, its cookie is
// refused) even before the sweeper has run.
func (s *Session) Touch() {
	s.touchAt(time.Now().UnixNano())
	if s.shared() {
		s.mu.Lock()
		s.sh.touched = true
		s.mu.Unlock()
	}
}

// Save writes the session's pending changes to its store now. The
// Middleware saves for you before a response's first byte; call Save for
// changes made outside a request. On the memory store there is nothing to
// write: it returns nil while the session is live. It returns an error
// wrapping ErrNotFound when the session has ended or expired, ErrClosed after the
// manager is closed, ErrUnsupportedValue for a value the store cannot keep,
// or the store's error; changes that could not be written stay pending.
func (s *Session) Save(ctx context.Context) error {
	if s.shared() {
		return s.sh.b.save(ctx, s)
	}
	if !s.ended.Load() && !s.expiredAt(time.Now().UnixNano()) {
		return nil
	}
	if s.sh != nil && s.sh.closed.Load() {
		return ErrClosed
	}
	return fmt.Errorf("sessions: %v has ended: %w", s, ErrNotFound)
}

// MarshalJSON encodes the session as the seed's to_dict did: session_id,
// user_id, created_at, last_activity (RFC 3339), is_active and data.
func (s *Session) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		SessionID    string         `json:"session_id"`
		UserID       string         `json:"user_id"`
		CreatedAt    string         `json:"created_at"`
		LastActivity string         `json:"last_activity"`
		IsActive     bool           `json:"is_active"`
		Data         map[string]any `json:"data"`
	}{
		s.ID(), s.userID,
		s.CreatedAt().UTC().Format(time.RFC3339Nano),
		s.LastActivity().UTC().Format(time.RFC3339Nano),
		s.Active(), s.Data(),
	})
}

// String returns a short description that never shows the raw ID.
func (s *Session) String() string {
	return fmt.Sprintf("session %s user %q", logID(s.ID()), s.userID)
}

// find returns the index of key in s.data, or -1; s.mu must be held.
func (s *Session) find(key string) int {
	for i := range s.data {
		if s.data[i].key == key {
			return i
		}
	}
	return -1
}

func (s *Session) markDirty(key string) {
	if !s.shared() {
		return
	}
	if s.sh.dirty == nil {
		s.sh.dirty = make(map[string]struct{})
	}
	s.sh.dirty[key] = struct{}{}
}

// checkData returns an error wrapping ErrUnsupportedValue, naming the key,
// if a value of m is one Set would refuse.
func checkData(m map[string]any) error {
	for k, v := range m {
		if err := checkValue(v); err != nil {
			return fmt.Errorf("sessions: value %q: %w", k, err)
		}
	}
	return nil
}

// setData replaces the session's data with a copy of m.
func (s *Session) setData(m map[string]any) {
	s.data = make([]entry, 0, len(m))
	for k, v := range m {
		if b, ok := v.([]byte); ok {
			v = bytes.Clone(b)
		}
		s.data = append(s.data, entry{k, v})
	}
}

// event describes the session's ending for the hooks.
func (s *Session) event(r Reason, at time.Time) Event {
	return Event{
		SessionID:    s.ID(),
		UserID:       s.userID,
		Reason:       r,
		CreatedAt:    s.CreatedAt(),
		LastActivity: s.LastActivity(),
		Data:         s.Data(),
		At:           at,
	}
}
