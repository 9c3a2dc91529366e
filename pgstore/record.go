package pgstore

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tokyopredictor/sessions"
)

// cols are the columns every query that returns records selects, in the
// order scanRecord reads them.
const cols = `key, sealed_id, user_id, created_at, last_activity, idle_timeout_ns,
    absolute_deadline, vals, user_agent, remote_addr, claim, lease_end`

// hashID returns the key that stands for a session ID in the table.
func hashID(id string) []byte {
	sum := sha256.Sum256([]byte(id))
	return sum[:]
}

// row is one record as the table holds it.
type row struct {
	key, sealed, user []byte
	created, last     time.Time
	idleNS            int64
	absolute, lease   pgtype.Timestamptz
	vals              []byte
	ua, ra            []byte
	claim             []byte
}

// dest returns the scan destinations of cols.
func (r *row) dest() []any {
	return []any{&r.key, &r.sealed, &r.user, &r.created, &r.last, &r.idleNS,
		&r.absolute, &r.vals, &r.ua, &r.ra, &r.claim, &r.lease}
}

// record returns the sessions.Record of r: ID empty, SealedID set (the
// store never holds raw IDs); Claim and LeaseEnd are the caller's to set.
func (r *row) record() (sessions.Record, error) {
	rec := sessions.Record{
		SealedID:     r.sealed,
		UserID:       string(r.user),
		CreatedAt:    r.created,
		LastActivity: r.last,
		IdleTimeout:  time.Duration(r.idleNS),
		UserAgent:    string(r.ua),
		RemoteAddr:   string(r.ra),
	}
	if r.absolute.Valid {
		rec.AbsoluteDeadline = r.absolute.Time
	}
	if err := json.Unmarshal(r.vals, &rec.Values); err != nil {
		return sessions.Record{}, fmt.Errorf("decode values: %w", err)
	}
	return rec, nil
}

// scanRecords reads every row of rows as a record (with a leading kind
// column when kinds is not nil: kinds receives each row's).
func scanRecords(rows pgx.Rows, kinds *[]string) ([]sessions.Record, []row, error) {
	defer rows.Close()
	var recs []sessions.Record
	var raw []row
	for rows.Next() {
		var r row
		var kind string
		dest := r.dest()
		if kinds != nil {
			dest = append([]any{&kind}, dest...)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, nil, err
		}
		rec, err := r.record()
		if err != nil {
			return nil, nil, err
		}
		if kinds != nil {
			*kinds = append(*kinds, kind)
		}
		recs = append(recs, rec)
		raw = append(raw, r)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	return recs, raw, nil
}

// nullBytes is b, or NULL when b is empty (an anonymous session's user).
func nullBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

// nullTime is t, or NULL for the zero time (no absolute deadline).
func nullTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// encodeValues returns values as the table's jsonb: each name maps to the
// base64 of its bytes (jsonb holds only valid text).
func encodeValues(values map[string][]byte) (string, error) {
	if values == nil {
		return "{}", nil
	}
	b, err := json.Marshal(values)
	if err != nil {
		return "", fmt.Errorf("encode values: %w", err)
	}
	return string(b), nil
}
