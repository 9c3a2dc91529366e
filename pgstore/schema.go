package pgstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ErrSchemaTooNew is returned by Migrate when the table's recorded schema
// version is newer than this package knows: a newer release migrated it.
var ErrSchemaTooNew = errors.New("pgstore: schema version newer than this package")

// SchemaVersion is the schema version this package writes and expects.
const SchemaVersion = 2

// The schema, with {t} the quoted table name and {name} its bare name (for
// the derived index names). doc.go shows it for the default table.
const (
	// createVersions records which migrations ran.
	createVersions = `CREATE TABLE IF NOT EXISTS {t_schema} (
    version    integer     PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)`

	// createTable is version 1: one row per session, live or claimed.
	createTable = `CREATE TABLE IF NOT EXISTS {t} (
    key               bytea       PRIMARY KEY,  -- SHA-256 of the session ID
    sealed_id         bytea       NOT NULL,     -- the ID sealed by the Manager
    user_id           bytea,                    -- NULL for an anonymous session
    created_at        timestamptz NOT NULL,
    last_activity     timestamptz NOT NULL,
    idle_timeout_ns   bigint      NOT NULL,
    absolute_deadline timestamptz,              -- NULL: none
    deadline          timestamptz NOT NULL,     -- least(last_activity + idle timeout, absolute_deadline)
    vals              jsonb       NOT NULL,     -- value name -> base64 of the encoded value
    user_agent        bytea       NOT NULL,
    remote_addr       bytea       NOT NULL,
    claim             bytea,                    -- NULL while live, else the nonce of the Expired call that claimed it
    lease_end         timestamptz               -- with claim: when the claim lapses
)`
	// The user's live sessions by activity (limits, UserSessions, DeleteUser).
	createUserIndex = `CREATE INDEX IF NOT EXISTS {name_user} ON {t} (user_id, last_activity)
    WHERE claim IS NULL AND user_id IS NOT NULL`
	// Live sessions by deadline (Expired's due sessions).
	createDueIndex = `CREATE INDEX IF NOT EXISTS {name_due} ON {t} (deadline) WHERE claim IS NULL`
	// Claimed sessions by lease end (Expired's lapsed claims).
	createLeaseIndex = `CREATE INDEX IF NOT EXISTS {name_lease} ON {t} (lease_end) WHERE claim IS NOT NULL`

	// createReplies is version 2: what Delete and DeleteUser removed, by
	// the call's op token, kept for replyTTL so that a call repeated after
	// its reply was lost gets the first run's answer (replies.go).
	createReplies = `CREATE TABLE IF NOT EXISTS {t_replies} (
    op                bytea       NOT NULL,     -- the call's op token
    made_at           timestamptz NOT NULL,
    key               bytea       NOT NULL,     -- the removed session's columns, as in the sessions table
    sealed_id         bytea       NOT NULL,
    user_id           bytea,
    created_at        timestamptz NOT NULL,
    last_activity     timestamptz NOT NULL,
    idle_timeout_ns   bigint      NOT NULL,
    absolute_deadline timestamptz,
    vals              jsonb       NOT NULL,
    user_agent        bytea       NOT NULL,
    remote_addr       bytea       NOT NULL,
    claim             bytea,
    lease_end         timestamptz
)`
	createRepliesOpIndex   = `CREATE INDEX IF NOT EXISTS {name_replies_op} ON {t_replies} (op)`
	createRepliesMadeIndex = `CREATE INDEX IF NOT EXISTS {name_replies_made} ON {t_replies} (made_at)`

	recordVersion = `INSERT INTO {t_schema} (version) VALUES ($1) ON CONFLICT DO NOTHING`
	readVersion   = `SELECT coalesce(max(version), 0) FROM {t_schema}`
	lockMigration = `SELECT pg_advisory_xact_lock($1)`
)

// migrations[i] brings the schema from version i to version i+1.
var migrations = [][]string{
	{createTable, createUserIndex, createDueIndex, createLeaseIndex},
	{createReplies, createRepliesOpIndex, createRepliesMadeIndex},
}

// tableName is what WithTable accepts: a plain SQL identifier short enough
// that the derived names (name_schema, name_replies_made...) stay within
// PostgreSQL's 63 bytes.
var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,47}$`)

// expand replaces the placeholders of a statement with the (quoted) names
// derived from the table name.
func expand(q, name string) string {
	quote := func(n string) string { return pgx.Identifier{n}.Sanitize() }
	return strings.NewReplacer(
		"{t_schema}", quote(name+"_schema"),
		"{t_replies}", quote(name+"_replies"),
		"{name_replies_op}", quote(name+"_replies_op"),
		"{name_replies_made}", quote(name+"_replies_made"),
		"{t}", quote(name),
		"{name_user}", quote(name+"_user"),
		"{name_due}", quote(name+"_due"),
		"{name_lease}", quote(name+"_lease"),
	).Replace(q)
}

// lockKey returns the advisory lock key for a purpose and a subject: the
// first 64 bits of SHA-256 over both, so tables and users never share one
// but by chance (then they only wait for each other).
func lockKey(purpose, table, subject string) int64 {
	h := sha256.New()
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write([]byte(table))
	h.Write([]byte{0})
	h.Write([]byte(subject))
	return int64(binary.BigEndian.Uint64(h.Sum(nil)))
}

// Migrate creates the store's tables and indexes, or upgrades them to
// SchemaVersion, in one transaction. It is idempotent, and safe when
// several processes start at once: it holds a transaction-scoped advisory
// lock (per table) while it reads and writes the recorded version, so
// concurrent calls run one after another and the later ones find nothing
// to do. It returns an error wrapping ErrSchemaTooNew when a newer release
// already migrated the table. Teams that run their own migrations apply
// the SQL in the package documentation instead.
func (s *Store) Migrate(ctx context.Context) (err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if _, err := tx.Exec(ctx, lockMigration, lockKey("migrate", s.table, "")); err != nil {
		return fmt.Errorf("pgstore: migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, expand(createVersions, s.table)); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	var v int
	if err := tx.QueryRow(ctx, expand(readVersion, s.table)).Scan(&v); err != nil {
		return fmt.Errorf("pgstore: migrate: read version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("%w: table %s is at version %d, this package knows %d", ErrSchemaTooNew, s.table, v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		for _, q := range migrations[v] {
			if _, err := tx.Exec(ctx, expand(q, s.table)); err != nil {
				return fmt.Errorf("pgstore: migrate to version %d: %w", v+1, err)
			}
		}
		if _, err := tx.Exec(ctx, expand(recordVersion, s.table), v+1); err != nil {
			return fmt.Errorf("pgstore: migrate: record version %d: %w", v+1, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: migrate: commit: %w", err)
	}
	return nil
}
