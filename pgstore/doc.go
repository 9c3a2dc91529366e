// Package pgstore is a sessions.Store kept in PostgreSQL (through pgx and
// its pool), for running several processes behind a load balancer on the
// database they already have. Every manager that shares the store (same
// database, same table, same signing keys) sees the same sessions, and the
// per-user limit, expiry and termination hooks keep their guarantees across
// all of them:
//
//	pool, err := pgxpool.New(ctx, "postgres://app@db.internal/app")
//	...
//	store, err := pgstore.New(pool) // pgstore.WithTable("sessions") is the default
//	...
//	if err := store.Migrate(ctx); err != nil { ... } // or apply the SQL below yourself
//	m, err := sessions.NewManager(cfg, sessions.WithStore(store)) // cfg.Keys set
//
// It needs PostgreSQL 12 or later (it is tested on 15) and works at the
// default isolation level, READ COMMITTED.
//
// # Guarantees
//
// Every change is one statement, or a user's advisory lock and one
// statement sent together in one round trip (a batch, one implicit
// transaction); nothing is checked in Go and then acted on.
//
//   - Create takes the user's advisory transaction lock
//     (pg_advisory_xact_lock), then in one statement deletes the user's
//     expired sessions, evicts the least recently active ones as the limit
//     requires (EvictOldest) or inserts nothing (RejectNew), and inserts
//     the new session: no interleaving of Creates, from any number of
//     processes, leaves a user over the limit. DeleteUser takes the same
//     lock.
//   - Each ending is returned to exactly one caller. Delete, DeleteUser and
//     Create's removals are DELETE ... RETURNING: of concurrent callers,
//     one deletes the row and the others find nothing. Expired claims due
//     rows with FOR UPDATE SKIP LOCKED, marking them with the claiming
//     call's random nonce and a lease end (WithLease); Ack deletes them and
//     Extend renews their lease, only while they are held under that nonce.
//     A claim not acknowledged within the lease (the claimer died) is
//     claimed again, under a new nonce, by a later Expired, so a crash
//     between the claim and the hooks delays the hooks but does not lose
//     them; a crash after the hooks ran but before Ack runs them twice.
//   - No two calls deadlock. Sweepers skip locked rows rather than wait;
//     Ack and Extend lock their rows in key order; the only statements that
//     lock several live rows of a user (Create, DeleteUser) hold that
//     user's advisory lock; every other statement locks one row. Nothing
//     runs at an isolation level that raises serialization failures.
//   - An expired session is never returned, swept or not: every statement
//     checks claim IS NULL AND deadline > the time of the call.
//   - Update and Activate write only to a row that is live, in the
//     statement that checks it: a save racing with Delete, DeleteUser, an
//     eviction or a claim never brings a session back.
//   - Update is one statement that merges the changed values into the
//     session's jsonb and removes the deleted names; concurrent requests
//     changing different keys lose nothing (each merges into the row as the
//     previous one left it).
//   - Load and Activate are one round trip. Activate writes the activity
//     only when the stored one lags by 5% of the session's IdleTimeout or
//     more, in the same statement as the read, so most reads write nothing
//     and the stored activity is never further behind than that.
//   - Raw session IDs never reach the database: the key is SHA-256 of the
//     ID, and the row keeps only the ID sealed by the Manager
//     (Record.SealedID). Records come back with ID empty; the Manager
//     unseals SealedID.
//   - A logout or termination whose reply was lost (the connection dropped
//     after the server committed it) is answered when the Manager retries
//     it: Delete and DeleteUser keep what they removed for two minutes in
//     <table>_replies under the call's op token, and this Store reuses the
//     token of a call that got no answer for its next call on the same
//     session or user, which waits for the first run (an advisory lock on
//     the token) and returns its ending. A Create whose reply was lost is
//     not recognised: the Manager then ends its session, but the endings
//     of what it evicted are lost.
//   - Migrate creates or upgrades the schema in one transaction under an
//     advisory lock, so processes starting at once migrate one after
//     another; the version is recorded in <table>_schema.
//
// # Schema
//
// For teams that run their own migrations, this is what Migrate applies
// for the default table name (replace "sessions" in every name for
// WithTable):
//
//	CREATE TABLE IF NOT EXISTS sessions_schema (
//	    version    integer     PRIMARY KEY,
//	    applied_at timestamptz NOT NULL DEFAULT now()
//	);
//	CREATE TABLE IF NOT EXISTS sessions (
//	    key               bytea       PRIMARY KEY,  -- SHA-256 of the session ID
//	    sealed_id         bytea       NOT NULL,     -- the ID sealed by the Manager
//	    user_id           bytea,                    -- NULL for an anonymous session
//	    created_at        timestamptz NOT NULL,
//	    last_activity     timestamptz NOT NULL,
//	    idle_timeout_ns   bigint      NOT NULL,
//	    absolute_deadline timestamptz,              -- NULL: none
//	    deadline          timestamptz NOT NULL,     -- least(last_activity + idle timeout, absolute_deadline)
//	    vals              jsonb       NOT NULL,     -- value name -> base64 of the encoded value
//	    user_agent        bytea       NOT NULL,
//	    remote_addr       bytea       NOT NULL,
//	    claim             bytea,                    -- NULL while live, else the nonce of the Expired call that claimed it
//	    lease_end         timestamptz               -- with claim: when the claim lapses
//	);
//	CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id, last_activity)
//	    WHERE claim IS NULL AND user_id IS NOT NULL;
//	CREATE INDEX IF NOT EXISTS sessions_due ON sessions (deadline) WHERE claim IS NULL;
//	CREATE INDEX IF NOT EXISTS sessions_lease ON sessions (lease_end) WHERE claim IS NOT NULL;
//	INSERT INTO sessions_schema (version) VALUES (1) ON CONFLICT DO NOTHING;
//	CREATE TABLE IF NOT EXISTS sessions_replies (
//	    op                bytea       NOT NULL,     -- the call's op token
//	    made_at           timestamptz NOT NULL,
//	    key               bytea       NOT NULL,     -- the removed session's columns, as in the sessions table
//	    sealed_id         bytea       NOT NULL,
//	    user_id           bytea,
//	    created_at        timestamptz NOT NULL,
//	    last_activity     timestamptz NOT NULL,
//	    idle_timeout_ns   bigint      NOT NULL,
//	    absolute_deadline timestamptz,
//	    vals              jsonb       NOT NULL,
//	    user_agent        bytea       NOT NULL,
//	    remote_addr       bytea       NOT NULL,
//	    claim             bytea,
//	    lease_end         timestamptz
//	);
//	CREATE INDEX IF NOT EXISTS sessions_replies_op ON sessions_replies (op);
//	CREATE INDEX IF NOT EXISTS sessions_replies_made ON sessions_replies (made_at);
//	INSERT INTO sessions_schema (version) VALUES (2) ON CONFLICT DO NOTHING;
//
// A test (TestSchemaInDocs) checks that this text is what Migrate runs.
//
// # Costs and caveats
//
// Count and All read every live session; UserSessions, DeleteUser and a
// limited Create cost what the user has; Expired costs what is due. A read
// that writes the activity (once per 5% of the idle timeout per session)
// and every Update write a new row version, as any UPDATE does: autovacuum
// must keep up, as for any busy table. Eviction picks the least recently
// active session by the stored activity, which may lag by the touch window.
// Methods judge liveness by this process's clock,
// never the server's:
// all processes' clocks should agree within a small part of the idle
// timeout. User IDs, user agents and addresses are stored as bytes, any
// bytes; value names go into jsonb keys, so they must be valid UTF-8
// without NUL (the Manager's names are Go strings chosen by the app).
package pgstore
