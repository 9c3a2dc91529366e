package pgstore

// The statements of the store. {t} is the quoted table name (see expand);
// every value is a parameter. A session is live while claim IS NULL and
// deadline > the time of the call; every statement that reads or writes a
// live session checks both, so an expired session is never returned nor
// written, swept or not.

// idle is a row's idle timeout as an interval (stored in nanoseconds;
// timestamps hold microseconds).
const idle = `(idle_timeout_ns / 1000) * interval '1 microsecond'`

// touchWindow is how far a row's stored activity may lag: 5% of its idle
// timeout.
const touchWindow = `(idle_timeout_ns / 20000) * interval '1 microsecond'`

// liveByKey is the liveness test of the statements that find a session by
// key ($1), with the time of the call in the given parameter. It compares
// deadline - $n rather than deadline with $n on purpose: no index on
// deadline matches it, so even a generic plan made before the table has
// statistics looks the row up by primary key instead of walking the
// deadline index (which it did, measured: a full index walk per read).
func liveByKey(param string) string {
	return `key = $1 AND claim IS NULL AND deadline - ` + param + `::timestamptz > interval '0'`
}

// The statements (variables only because some are built with liveByKey).
var (
	// lockUser takes the advisory lock of one user for the rest of the
	// transaction (the implicit one of a batch): Create and DeleteUser of
	// one user run one after another on every process.
	lockUser = `SELECT pg_advisory_xact_lock($1)`

	// insert adds an anonymous session ($1..$11 as insertCols).
	insert = `INSERT INTO {t} (` + insertCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11)`

	insertCols = `key, sealed_id, user_id, created_at, last_activity, idle_timeout_ns,
    absolute_deadline, deadline, vals, user_agent, remote_addr`

	// create adds a user's session under the user's lock, in one statement
	// (one snapshot): it deletes the user's expired sessions, counts the
	// live ones, evicts the least recently active as the limit requires
	// ($13 the limit, 0 for none; $14 true for EvictOldest) and inserts the
	// new one unless RejectNew refuses it. Each row it returns is tagged:
	// 'x' expired and removed, 'v' evicted, 'a' the added session. A row
	// that another call deleted or claimed meanwhile is skipped by the
	// DELETEs (they re-check claim IS NULL on the row's latest version), so
	// each removal is returned by one call only.
	create = `WITH expired AS (
    DELETE FROM {t}
    WHERE user_id = $3 AND claim IS NULL AND deadline <= $12
    RETURNING ` + cols + `
), live AS (
    SELECT key, last_activity FROM {t}
    WHERE user_id = $3 AND claim IS NULL AND deadline > $12
), excess AS (
    SELECT CASE WHEN $13::int > 0 THEN greatest(count(*) - $13::int + 1, 0) ELSE 0 END AS n FROM live
), evicted AS (
    DELETE FROM {t}
    WHERE $14::bool AND claim IS NULL
      AND key IN (SELECT key FROM live ORDER BY last_activity, key LIMIT (SELECT n FROM excess))
    RETURNING ` + cols + `
), added AS (
    INSERT INTO {t} (` + insertCols + `)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11
    WHERE $14::bool OR (SELECT n FROM excess) = 0
    RETURNING ` + cols + `
)
SELECT 'x'::text, * FROM expired
UNION ALL SELECT 'v'::text, * FROM evicted
UNION ALL SELECT 'a'::text, * FROM added`

	// load reads a live session ($1 key, $2 the time of the call).
	load = `SELECT ` + cols + ` FROM {t} WHERE ` + liveByKey("$2")

	// activate is load ($1 key, $3 the time of the call) that also records
	// the activity $2 when the stored one lags it by the touch window or
	// more. The main SELECT sees the row as it was before the UPDATE (one
	// snapshot); the caller sets LastActivity itself.
	activate = `WITH touch AS (
    UPDATE {t}
    SET last_activity = $2::timestamptz,
        deadline = least($2::timestamptz + ` + idle + `, absolute_deadline)
    WHERE ` + liveByKey("$3") + `
      AND last_activity <= $2::timestamptz - ` + touchWindow + `
)
SELECT ` + cols + ` FROM {t} WHERE ` + liveByKey("$3")

	// update merges $2 into the values, removes the names $3 and records
	// the activity $4 (never moving it back), if the session is live at $5.
	update = `UPDATE {t}
SET vals = (vals || $2::jsonb) - $3::text[],
    last_activity = greatest(last_activity, $4::timestamptz),
    deadline = least(greatest(last_activity, $4::timestamptz) + ` + idle + `, absolute_deadline)
WHERE ` + liveByKey("$5")

	// lockOp takes the advisory lock of a call's op token for the rest of
	// the transaction (the implicit one of a batch): a call repeated after
	// a lost reply waits until the first run has committed or failed.
	lockOp = `SELECT pg_advisory_xact_lock($1)`

	// deleteOne removes a live session ($1 key, $2 the time of the call)
	// and returns it, keeping it in the replies under the op token $3; if
	// an earlier run of the same call left a reply, it returns that and
	// removes nothing (replies.go).
	deleteOne = `WITH prior AS (
    SELECT ` + cols + ` FROM {t_replies} WHERE op = $3
), gone AS (
    DELETE FROM {t} WHERE ` + liveByKey("$2") + ` AND NOT EXISTS (SELECT 1 FROM prior)
    RETURNING ` + cols + `
), kept AS (
    INSERT INTO {t_replies} (op, made_at, ` + cols + `) SELECT $3, $2, * FROM gone
)
SELECT * FROM prior UNION ALL SELECT * FROM gone`

	// deleteUser removes a user's live sessions ($1 the user, $2 the time
	// of the call) and returns them, as deleteOne does with the op token $3.
	deleteUser = `WITH prior AS (
    SELECT ` + cols + ` FROM {t_replies} WHERE op = $3
), gone AS (
    DELETE FROM {t} WHERE user_id = $1 AND claim IS NULL AND deadline > $2 AND NOT EXISTS (SELECT 1 FROM prior)
    RETURNING ` + cols + `
), kept AS (
    INSERT INTO {t_replies} (op, made_at, ` + cols + `) SELECT $3, $2, * FROM gone
)
SELECT * FROM prior UNION ALL SELECT * FROM gone`

	// pruneReplies deletes up to 1,000 replies made before $1, skipping
	// rows another sweeper is pruning.
	pruneReplies = `DELETE FROM {t_replies} WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM {t_replies} WHERE made_at < $1 LIMIT 1000 FOR UPDATE SKIP LOCKED))`

	userSessions = `SELECT ` + cols + ` FROM {t} WHERE user_id = $1 AND claim IS NULL AND deadline > $2`

	all = `SELECT ` + cols + ` FROM {t} WHERE claim IS NULL AND deadline > $1`

	count = `SELECT count(*), count(DISTINCT user_id) FROM {t} WHERE claim IS NULL AND deadline > $1`

	// claimDue claims up to $2 sessions due at $1 — claims whose lease
	// ended (first) and live sessions past their deadline — under the nonce
	// $3 until $4. Each side reads its partial index in order, so the work
	// is proportional to what is due. SKIP LOCKED: a row another call is
	// claiming, deleting or updating is left for later, so sweepers never
	// wait for each other nor for a request.
	claimDue = `WITH lapsed AS (
    SELECT key FROM {t}
    WHERE claim IS NOT NULL AND lease_end <= $1
    ORDER BY lease_end LIMIT $2
    FOR UPDATE SKIP LOCKED
), due AS (
    SELECT key FROM {t}
    WHERE claim IS NULL AND deadline <= $1
    ORDER BY deadline LIMIT $2
    FOR UPDATE SKIP LOCKED
), picked AS (
    (SELECT key FROM lapsed UNION ALL SELECT key FROM due) LIMIT $2
)
UPDATE {t} AS t SET claim = $3, lease_end = $4
FROM picked WHERE t.key = picked.key
RETURNING t.key, t.sealed_id, t.user_id, t.created_at, t.last_activity, t.idle_timeout_ns,
    t.absolute_deadline, t.vals, t.user_agent, t.remote_addr, t.claim, t.lease_end`

	// heldClaims locks, in key order, the rows still claimed under the
	// given (key, nonce) pairs ($1, $2): the order keeps two calls over
	// overlapping claims from deadlocking.
	heldClaims = `SELECT h.key, h.claim FROM {t} h
    JOIN unnest($1::bytea[], $2::bytea[]) AS c(key, claim) ON h.key = c.key AND h.claim = c.claim
    ORDER BY h.key
    FOR UPDATE OF h`

	// ackClaims deletes the claims still held under their tokens.
	ackClaims = `DELETE FROM {t} AS t USING (` + heldClaims + `) AS held
WHERE t.key = held.key AND t.claim = held.claim`

	// extendClaims moves to $3 the lease end of the claims still held and
	// returns their keys and nonces.
	extendClaims = `UPDATE {t} AS t SET lease_end = $3 FROM (` + heldClaims + `) AS held
WHERE t.key = held.key AND t.claim = held.claim
RETURNING t.key, t.claim`
)

// kindAdded tags the added session among create's rows.
const kindAdded = "a"

// queries are the statements of one table.
type queries struct {
	insert, create, load, activate, update, deleteOne, deleteUser string
	userSessions, all, count, claimDue, ackClaims, extendClaims   string
	pruneReplies                                                  string
}

func newQueries(table string) queries {
	e := func(q string) string { return expand(q, table) }
	return queries{
		insert: e(insert), create: e(create), load: e(load), activate: e(activate), update: e(update),
		deleteOne: e(deleteOne), deleteUser: e(deleteUser), userSessions: e(userSessions), all: e(all),
		count: e(count), claimDue: e(claimDue), ackClaims: e(ackClaims), extendClaims: e(extendClaims),
		pruneReplies: e(pruneReplies),
	}
}
