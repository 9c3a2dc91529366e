package sessions

import (
	"context"
	"time"
)

// Store keeps sessions for a Manager. MemoryStore is the default; the
// redisstore sub-package shares sessions between processes. A store for
// another database implements these methods and runs the storetest suite.
//
// A Store deals in Records: plain values with data already encoded, so a
// store never needs to know the Go types of session values. Every method is
// safe for concurrent use, also by several managers (and processes) sharing
// the store. Methods that take an ID return an error wrapping ErrNotFound
// when no live session has that ID: unknown, ended, or expired at the time of
// the call (a store must never return an expired record, swept or not). Any
// other error is a store failure, which the Manager reports and never treats
// as a logout.
//
// Each ending must be reported to exactly one caller: whichever of Delete,
// DeleteUser, Create (limit evictions and expired sessions it clears) or
// Expired removes a record returns it, and no other call returns it again.
// That is how every termination hook runs exactly once.
type Store interface {
	// Create adds rec. When rec.UserID is not empty and limit > 0, it first
	// removes that user's expired records, then enforces the limit in the
	// same atomic step: with EvictOldest it removes the user's least recently
	// active records until one slot is free; with RejectNew it adds nothing
	// and returns an error wrapping ErrLimitReached. It returns every record
	// it removed. No interleaving of concurrent Creates may leave a user with
	// more than limit live records.
	Create(ctx context.Context, rec Record, limit int, policy LimitPolicy) (removed []Record, err error)

	// Load returns the live record for id.
	Load(ctx context.Context, id string) (Record, error)

	// Activate is Load that also records activity at the time at (it never
	// moves LastActivity back). A store may coalesce these writes: the
	// activity it holds may lag at by at most 5% of rec.IdleTimeout. The
	// returned record has LastActivity at.
	Activate(ctx context.Context, id string, at time.Time) (Record, error)

	// Update writes the changed values of a live session: set adds or
	// replaces keys, del removes keys, and other keys are left as they are.
	// It records activity at at, and may coalesce that write as Activate
	// does. It never brings back an ended session: for
	// a session that is gone it changes nothing and returns ErrNotFound.
	Update(ctx context.Context, id string, at time.Time, set map[string][]byte, del []string) error

	// Delete removes the live session id and returns its record.
	Delete(ctx context.Context, id string) (Record, error)

	// DeleteUser removes every live session of userID and returns their
	// records; none is (nil, nil).
	DeleteUser(ctx context.Context, userID string) ([]Record, error)

	// UserSessions returns the live records of userID, in no set order.
	UserSessions(ctx context.Context, userID string) ([]Record, error)

	// All returns every live record, in no set order.
	All(ctx context.Context) ([]Record, error)

	// Expired claims up to max records whose Deadline is not after now and
	// returns them; they are no longer live. The work is proportional to
	// what has expired, not to how many sessions live. Each returned record
	// carries a Claim token and the LeaseEnd of its claim: a claim that is
	// neither acknowledged (Ack) nor extended (Extend) before its lease ends
	// is returned again, under a new token, by a later call (its claimer is
	// presumed dead), so its ending is never lost.
	Expired(ctx context.Context, now time.Time, max int) ([]Record, error)

	// Extend renews, from now, the leases of the given claims that are still
	// held under those tokens, and returns those (held) and when their
	// leases now end (the zero time if claims never lapse). Claims
	// acknowledged already or handed out again under another token are
	// left out of held. A Manager extends the claims whose hooks are still
	// pending, so slow hooks never let a claim lapse, and runs no hook of a
	// claim that is no longer held.
	Extend(ctx context.Context, claims []string, now time.Time) (held []string, leaseEnd time.Time, err error)

	// Ack tells the store that the endings of the given claims have been
	// handled; it forgets those records. Unknown claims, and claims handed
	// out again under another token, are ignored, so Ack is safe to retry.
	Ack(ctx context.Context, claims []string) error

	// Count reports how many records are live at now and how many distinct
	// non-empty user IDs they carry.
	Count(ctx context.Context, now time.Time) (sessions, users int, err error)
}

// A Placer is a Store that finds a session from its ID alone and wants a
// say in where new sessions go: redisstore keeps a user's sessions in one
// Redis Cluster hash slot, and reads the slot off the ID instead of keeping
// a key that points to it. When the Store given to WithStore is a Placer,
// the Manager lets it choose the first 16 bits of every new session ID;
// the other 106 random bits of the UUID stay as drawn from crypto/rand.
// Renew keeps the first 16 bits of the old ID, so a session stays where
// it was placed.
type Placer interface {
	// PlaceID returns the first 16 bits of a new session ID for userID
	// ("" for a session without a user), given drawn, the 16 random bits
	// drawn for them. It should keep as much of drawn as it can (every bit
	// it fixes is one bit less for an attacker to guess), and must be safe
	// for concurrent use.
	PlaceID(userID string, drawn uint16) uint16
}

// Record is a session as a Store keeps it.
type Record struct {
	// ID is the session ID. A store that must not keep raw IDs may leave it
	// empty in what it returns, provided it returns SealedID.
	ID string
	// SealedID is the ID encrypted by the Manager (AES-GCM under a key
	// derived from Config.Keys); a store may keep it instead of ID.
	SealedID []byte

	UserID       string
	CreatedAt    time.Time
	LastActivity time.Time
	// IdleTimeout is how long the session may stay idle.
	IdleTimeout time.Duration
	// AbsoluteDeadline is when the session ends whatever its activity;
	// zero means never.
	AbsoluteDeadline time.Time

	// Values holds the session data, each value encoded by the Manager.
	Values map[string][]byte

	// UserAgent and RemoteAddr describe the client that started the session.
	UserAgent  string
	RemoteAddr string

	// Claim is set only on records returned by Store.Expired: a token the
	// store made that names this claim for Ack and Extend. It must be
	// usable without any key (a claim whose sealed ID no longer opens is
	// still acknowledged), and a record handed out again after its lease
	// lapsed carries a new token.
	Claim string
	// LeaseEnd is set with Claim: when the claim lapses unless extended
	// (Store.Extend). Zero means the claim never lapses.
	LeaseEnd time.Time
}

// Deadline is when the record expires: its idle deadline
// (LastActivity + IdleTimeout) or its absolute deadline, whichever is first.
func (r *Record) Deadline() time.Time {
	d := r.LastActivity.Add(r.IdleTimeout)
	if !r.AbsoluteDeadline.IsZero() && r.AbsoluteDeadline.Before(d) {
		return r.AbsoluteDeadline
	}
	return d
}

// Expired reports whether the record has expired at now: its deadline is
// not after now.
func (r *Record) Expired(now time.Time) bool {
	return !r.Deadline().After(now)
}

// expiryReason tells why a record that expired at now ended.
func (r *Record) expiryReason() Reason {
	if !r.AbsoluteDeadline.IsZero() && !r.AbsoluteDeadline.After(r.LastActivity.Add(r.IdleTimeout)) {
		return ReasonAbsolute
	}
	return ReasonIdle
}
