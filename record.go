package sessions

import (
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
)

// newSession makes a Session of a record's fields other than its values.
func newSession(rec Record, id uuid.UUID) *Session {
	s := &Session{
		id:      id,
		userID:  rec.UserID,
		created: rec.CreatedAt.UnixNano(),
		idle:    rec.IdleTimeout,
	}
	if !rec.AbsoluteDeadline.IsZero() {
		s.absolute = rec.AbsoluteDeadline.UnixNano()
	}
	s.last.Store(rec.LastActivity.UnixNano())
	if rec.UserAgent != "" || rec.RemoteAddr != "" {
		s.info = &clientInfo{userAgent: rec.UserAgent, remoteAddr: rec.RemoteAddr}
	}
	return s
}

// record copies s into a Record, encoding its values. It returns the
// record with every value that encodes, and the first error.
func (s *Session) record() (Record, error) {
	rec := Record{
		ID:           s.ID(),
		UserID:       s.userID,
		CreatedAt:    s.CreatedAt(),
		LastActivity: s.LastActivity(),
		IdleTimeout:  s.idle,
		UserAgent:    s.UserAgent(),
		RemoteAddr:   s.RemoteAddr(),
	}
	if s.absolute != 0 {
		rec.AbsoluteDeadline = time.Unix(0, s.absolute)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.Values = make(map[string][]byte, len(s.data))
	var first error
	for _, e := range s.data {
		if raw, ok := e.val.(rawValue); ok {
			rec.Values[e.key] = slices.Clone(raw)
			continue
		}
		b, err := encodeValue(e.val)
		if err != nil {
			if first == nil {
				first = fmt.Errorf("value %q: %w", e.key, err)
			}
			continue
		}
		rec.Values[e.key] = b
	}
	return rec, first
}

// rawValue is a value that came in through the Store interface, already
// encoded; it goes back out byte for byte.
type rawValue []byte
