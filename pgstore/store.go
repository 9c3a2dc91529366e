package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokyopredictor/sessions"
)

var _ sessions.Store = (*Store)(nil)

// Defaults of the options.
const (
	DefaultTable = "sessions"
	DefaultLease = 5 * time.Minute
)

// Option configures a Store; pass options to New.
type Option func(*options)

type options struct {
	table string
	lease time.Duration
}

// WithTable sets the name of the store's table; the default is "sessions".
// Migrate also creates <name>_schema (the schema version) and
// <name>_replies (replies.go), and indexes named <name>_user, <name>_due,
// <name>_lease, <name>_replies_op and <name>_replies_made. The name must be a plain SQL
// identifier (letters, digits, underscores; not starting with a digit) of
// at most 48 bytes; it is quoted, so its case is kept. One table per app:
// stores on different tables share nothing.
func WithTable(name string) Option { return func(o *options) { o.table = name } }

// WithLease sets how long a session claimed by Expired stays claimed
// without Ack before a later Expired returns it again (its claimer is then
// presumed dead). It must exceed the time a manager needs to run the
// termination hooks of one batch of claims, or their hooks run twice; the
// default is five minutes, the minimum a millisecond.
func WithLease(d time.Duration) Option { return func(o *options) { o.lease = d } }

// Store is a sessions.Store kept in a PostgreSQL table, shared by any
// number of managers in any number of processes. Create it with New and
// create its table with Migrate (or the SQL in the package documentation).
// Its methods are safe for concurrent use. It does not own the pool:
// closing the pool is the caller's business.
type Store struct {
	pool  *pgxpool.Pool
	table string
	lease time.Duration
	now   func() time.Time
	q     queries

	replies replyBook // replies.go
}

// New returns a Store that keeps sessions in a table reached through pool.
// It does not contact the server; call Migrate once to create the table.
// It returns an error for a nil pool or an invalid option.
func New(pool *pgxpool.Pool, opts ...Option) (*Store, error) {
	if pool == nil {
		return nil, errors.New("pgstore: nil pool")
	}
	o := options{table: DefaultTable, lease: DefaultLease}
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case !tableName.MatchString(o.table):
		return nil, fmt.Errorf("pgstore: table name %q is not a plain identifier of at most 48 bytes", o.table)
	case o.lease < time.Millisecond:
		return nil, fmt.Errorf("pgstore: lease %v shorter than 1ms", o.lease)
	}
	return &Store{pool: pool, table: o.table, lease: o.lease, now: time.Now, q: newQueries(o.table)}, nil
}

// errNotFound is what methods return for an ID with no live session.
var errNotFound = fmt.Errorf("pgstore: %w", sessions.ErrNotFound)

// A note on time: methods that receive no time (Load, Delete, DeleteUser,
// UserSessions, All, and Create's expiry check) and Activate and Update
// (whose at is the activity to record, not the time of the call) judge
// liveness by this process's clock, passed to the server as a parameter;
// Expired and Count go by their now argument. The server's clock is never
// read, so every process sharing the table should have clocks within a
// small part of the idle timeout of each other.

// Create implements sessions.Store. rec must carry SealedID (the Manager
// fills it): the table holds no raw ID. For a user's session it is one
// round trip: a batch that takes the user's advisory transaction lock and
// then, in one statement, removes the user's expired sessions, evicts the
// least recently active ones as the limit requires and inserts rec. On
// RejectNew at the limit it returns the expired records it removed together
// with an error wrapping sessions.ErrLimitReached.
func (s *Store) Create(ctx context.Context, rec sessions.Record, limit int, policy sessions.LimitPolicy) ([]sessions.Record, error) {
	if rec.ID == "" {
		return nil, errors.New("pgstore: create: empty session ID")
	}
	if len(rec.SealedID) == 0 {
		// Without the sealed ID, what the store returns could not be
		// matched to a session.
		return nil, errors.New("pgstore: create: record without SealedID")
	}
	vals, err := encodeValues(rec.Values)
	if err != nil {
		return nil, fmt.Errorf("pgstore: create: %w", err)
	}
	args := []any{hashID(rec.ID), rec.SealedID, nullBytes(rec.UserID), rec.CreatedAt, rec.LastActivity,
		int64(rec.IdleTimeout), nullTime(rec.AbsoluteDeadline), rec.Deadline(), vals,
		[]byte(rec.UserAgent), []byte(rec.RemoteAddr)}
	if rec.UserID == "" {
		// No limit and no expired sessions to clear: one insert.
		if _, err := s.pool.Exec(ctx, s.q.insert, args...); err != nil {
			return nil, fmt.Errorf("pgstore: create: %w", err)
		}
		return nil, nil
	}
	if limit < 0 {
		limit = 0
	}
	args = append(args, s.now(), limit, policy != sessions.RejectNew)
	b := &pgx.Batch{}
	b.Queue(lockUser, lockKey("user", s.table, rec.UserID))
	b.Queue(s.q.create, args...)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("pgstore: create: lock user: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("pgstore: create: %w", err)
	}
	var kinds []string
	recs, _, err := scanRecords(rows, &kinds)
	if err != nil {
		return nil, fmt.Errorf("pgstore: create: %w", err)
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("pgstore: create: %w", err)
	}
	added := false
	removed := recs[:0]
	for i, k := range kinds {
		if k == kindAdded {
			added = true
			continue
		}
		removed = append(removed, recs[i])
	}
	if len(removed) == 0 {
		removed = nil
	}
	if !added {
		return removed, fmt.Errorf("pgstore: create: %w", sessions.ErrLimitReached)
	}
	return removed, nil
}

// Load implements sessions.Store: one round trip.
func (s *Store) Load(ctx context.Context, id string) (sessions.Record, error) {
	return s.one(ctx, "load", s.q.load, hashID(id), s.now())
}

// Activate implements sessions.Store: one round trip, a statement that
// reads the session and, in the same statement, writes the activity when
// the stored one lags at by 5% of the session's IdleTimeout or more, so
// most reads write nothing. The returned record has LastActivity at.
func (s *Store) Activate(ctx context.Context, id string, at time.Time) (sessions.Record, error) {
	rec, err := s.one(ctx, "activate", s.q.activate, hashID(id), at, s.now())
	if err == nil {
		rec.LastActivity = at
	}
	return rec, err
}

// one runs a query that returns at most one record.
func (s *Store) one(ctx context.Context, op, q string, args ...any) (sessions.Record, error) {
	var r row
	err := s.pool.QueryRow(ctx, q, args...).Scan(r.dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return sessions.Record{}, errNotFound
	}
	if err != nil {
		return sessions.Record{}, fmt.Errorf("pgstore: %s: %w", op, err)
	}
	rec, err := r.record()
	if err != nil {
		return sessions.Record{}, fmt.Errorf("pgstore: %s: %w", op, err)
	}
	return rec, nil
}

// Update implements sessions.Store: one statement that merges set into the
// session's values and removes del, only if the session is live. Concurrent
// updates of different keys lose nothing: each merges into the row as the
// previous one left it.
func (s *Store) Update(ctx context.Context, id string, at time.Time, set map[string][]byte, del []string) error {
	vals, err := encodeValues(set)
	if err != nil {
		return fmt.Errorf("pgstore: update: %w", err)
	}
	if del == nil {
		del = []string{}
	}
	tag, err := s.pool.Exec(ctx, s.q.update, hashID(id), vals, del, at, s.now())
	if err != nil {
		return fmt.Errorf("pgstore: update: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return errNotFound
	}
	return nil
}

// Delete implements sessions.Store: one round trip, a DELETE ... RETURNING,
// so of any number of concurrent callers only one gets the record. What it
// removes is kept for a while under the call's op token, so that the
// caller's retry after a lost reply gets it too (replies.go).
func (s *Store) Delete(ctx context.Context, id string) (sessions.Record, error) {
	key := hashID(id)
	what := "d:" + string(key)
	op := s.replies.take(what)
	recs, err := s.remove(ctx, "delete", nil, op, s.q.deleteOne, key, s.now(), op)
	s.replies.settle(what, op, err)
	switch {
	case err != nil:
		return sessions.Record{}, err
	case len(recs) == 0:
		return sessions.Record{}, errNotFound
	}
	return recs[0], nil
}

// DeleteUser implements sessions.Store. It holds the user's advisory lock
// (as Create does) while it deletes, so the two never lock the user's rows
// in different orders; and keeps what it removed as Delete does.
func (s *Store) DeleteUser(ctx context.Context, userID string) ([]sessions.Record, error) {
	if userID == "" {
		return nil, nil
	}
	what := "u:" + userID
	op := s.replies.take(what)
	recs, err := s.remove(ctx, "delete user", &userID, op, s.q.deleteUser, []byte(userID), s.now(), op)
	s.replies.settle(what, op, err)
	return recs, err
}

// remove runs a removing statement in one batch after the advisory locks
// of the user (when not nil) and of the op token, and returns its records.
func (s *Store) remove(ctx context.Context, what string, user *string, op []byte, q string, args ...any) ([]sessions.Record, error) {
	b := &pgx.Batch{}
	if user != nil {
		b.Queue(lockUser, lockKey("user", s.table, *user))
	}
	b.Queue(lockOp, opLock(op))
	b.Queue(q, args...)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	for range b.Len() - 1 {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("pgstore: %s: lock: %w", what, err)
		}
	}
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("pgstore: %s: %w", what, err)
	}
	recs, _, err := scanRecords(rows, nil)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %s: %w", what, err)
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("pgstore: %s: %w", what, err)
	}
	return recs, nil
}

// UserSessions implements sessions.Store.
func (s *Store) UserSessions(ctx context.Context, userID string) ([]sessions.Record, error) {
	if userID == "" {
		return nil, nil
	}
	return s.many(ctx, "user sessions", s.q.userSessions, []byte(userID), s.now())
}

// All implements sessions.Store; it reads every live session.
func (s *Store) All(ctx context.Context) ([]sessions.Record, error) {
	return s.many(ctx, "all", s.q.all, s.now())
}

func (s *Store) many(ctx context.Context, op, q string, args ...any) ([]sessions.Record, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %s: %w", op, err)
	}
	recs, _, err := scanRecords(rows, nil)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %s: %w", op, err)
	}
	return recs, nil
}

// Count implements sessions.Store; it reads every live session.
func (s *Store) Count(ctx context.Context, now time.Time) (int, int, error) {
	var n, users int
	if err := s.pool.QueryRow(ctx, s.q.count, now).Scan(&n, &users); err != nil {
		return 0, 0, fmt.Errorf("pgstore: count: %w", err)
	}
	return n, users, nil
}
