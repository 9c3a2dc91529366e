package sessions

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Errors returned by the Manager and by stores; check them with errors.Is.
var (
	// ErrNotFound: no live session has that ID (unknown, malformed, ended
	// or expired).
	ErrNotFound = errors.New("sessions: session not found")
	// ErrLimitReached: the user is at Config.MaxSessionsPerUser and the
	// policy is RejectNew.
	ErrLimitReached = errors.New("sessions: per-user session limit reached")
	// ErrClosed: the Manager has been closed.
	ErrClosed = errors.New("sessions: manager closed")
	// ErrInvalidConfig: NewManager or LoadConfig found a bad setting; the
	// error's text names it.
	ErrInvalidConfig = errors.New("sessions: invalid config")
)

// Reason tells why a session ended.
type Reason int

const (
	ReasonLogout     Reason = iota + 1 // End: the user logged out
	ReasonIdle                         // idle for IdleTimeout
	ReasonAbsolute                     // AbsoluteTimeout after creation
	ReasonEvicted                      // the user's limit made room for a newer session
	ReasonRenewed                      // Start replaced it with a new ID
	ReasonTerminated                   // Terminate or TerminateUser
	ReasonShutdown                     // Close of the last manager of a memory store
)

var reasonNames = [...]string{"", "logout", "idle", "absolute", "evicted", "renewed", "terminated", "shutdown"}

// String returns the reason's lower-case name, such as "idle".
func (r Reason) String() string {
	if r > 0 && int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// MarshalText encodes r as its name, so that JSON shows "idle", also as a
// map key (Stats.Ended marshals as {"logout": 1}). An unknown reason is
// "Reason(n)".
func (r Reason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText decodes a name MarshalText wrote.
func (r *Reason) UnmarshalText(b []byte) error {
	s := string(b)
	for i, name := range reasonNames {
		if i > 0 && name == s {
			*r = Reason(i)
			return nil
		}
	}
	if n, ok := strings.CutPrefix(s, "Reason("); ok {
		if n, ok := strings.CutSuffix(n, ")"); ok {
			if v, err := strconv.Atoi(n); err == nil {
				*r = Reason(v)
				return nil
			}
		}
	}
	return fmt.Errorf("sessions: unknown reason %q", s)
}

// Event describes a session that ended; termination hooks receive it.
type Event struct {
	SessionID    string
	UserID       string
	Reason       Reason
	CreatedAt    time.Time
	LastActivity time.Time
	Data         map[string]any // the session's data when it ended; the hook may keep it
	At           time.Time      // when it ended
}
