package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokyopredictor/sessions"
)

// A claim token is "<hex of the row's key>.<hex of the claiming call's
// nonce>": it names the row and the call that claimed it, so Ack and Extend
// need no key, and a row claimed again (after its lease lapsed) carries
// another nonce, under which the old token matches nothing.

// nonceLen is the size of a claiming call's random nonce.
const nonceLen = 8

// Expired implements sessions.Store: one statement claims up to max rows
// due at now — live sessions past their deadline, and claims whose lease
// ended at or before now — with FOR UPDATE SKIP LOCKED, under a fresh nonce
// and a lease ending now + WithLease. (It first prunes the replies of
// Delete and DeleteUser older than two minutes, replies.go.) Concurrent sweepers take disjoint
// rows and never wait for each other or for a request. The partial indexes
// on deadline and lease end make the work proportional to what is due.
func (s *Store) Expired(ctx context.Context, now time.Time, max int) ([]sessions.Record, error) {
	if max <= 0 {
		return nil, nil
	}
	if err := s.pruneReplies(ctx, now); err != nil {
		return nil, fmt.Errorf("pgstore: expired: prune replies: %w", err)
	}
	nonce := make([]byte, nonceLen)
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails
	leaseEnd := now.Add(s.lease)
	rows, err := s.pool.Query(ctx, s.q.claimDue, now, max, nonce, leaseEnd)
	if err != nil {
		return nil, fmt.Errorf("pgstore: expired: %w", err)
	}
	recs, raw, err := scanRecords(rows, nil)
	if err != nil {
		// The claims made, if the statement committed, lapse after the
		// lease and are handed out again then.
		return nil, fmt.Errorf("pgstore: expired: %w", err)
	}
	for i := range recs {
		recs[i].Claim = hex.EncodeToString(raw[i].key) + "." + hex.EncodeToString(raw[i].claim)
		if raw[i].lease.Valid {
			recs[i].LeaseEnd = raw[i].lease.Time
		}
	}
	return recs, nil
}

// Extend implements sessions.Store: it moves the lease end of the claims
// still held under the given tokens to now + WithLease.
func (s *Store) Extend(ctx context.Context, claims []string, now time.Time) ([]string, time.Time, error) {
	until := now.Add(s.lease)
	keys, nonces := parseClaims(claims)
	if len(keys) == 0 {
		return nil, until, nil
	}
	rows, err := s.pool.Query(ctx, s.q.extendClaims, keys, nonces, until)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("pgstore: extend: %w", err)
	}
	var held []string
	var key, nonce []byte
	_, err = pgx.ForEachRow(rows, []any{&key, &nonce}, func() error {
		held = append(held, hex.EncodeToString(key)+"."+hex.EncodeToString(nonce))
		return nil
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("pgstore: extend: %w", err)
	}
	return held, until, nil
}

// Ack implements sessions.Store: it deletes the rows still claimed under
// the given tokens. Unknown, malformed and stale tokens match nothing.
func (s *Store) Ack(ctx context.Context, claims []string) error {
	keys, nonces := parseClaims(claims)
	if len(keys) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, s.q.ackClaims, keys, nonces); err != nil {
		return fmt.Errorf("pgstore: ack: %w", err)
	}
	return nil
}

// parseClaims returns the keys and nonces of the well-formed tokens among
// claims.
func parseClaims(claims []string) (keys, nonces [][]byte) {
	for _, c := range claims {
		k, n, ok := strings.Cut(c, ".")
		if !ok || len(k) != 2*32 || len(n) != 2*nonceLen {
			continue
		}
		key, err1 := hex.DecodeString(k)
		nonce, err2 := hex.DecodeString(n)
		if err1 != nil || err2 != nil {
			continue
		}
		keys = append(keys, key)
		nonces = append(nonces, nonce)
	}
	return keys, nonces
}
