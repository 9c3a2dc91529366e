package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// tolerance is how far a time read back from a store may be from the time
// written: stores may keep milliseconds.
const tolerance = time.Millisecond

// harness wraps the store of one subtest. It builds records, maps the
// records a store returns back to the IDs the suite gave them, and keeps a
// ledger of every ending a store reports, so that any ending reported twice
// fails the subtest whichever calls reported it.
type harness struct {
	t   *testing.T
	ctx context.Context
	s   sessions.Store

	mu     sync.Mutex
	sealed map[string]string          // string(SealedID) → ID
	ended  map[string]sessions.Record // ID → the record its ending was reported with
	dups   []string                   // endings reported more than once
}

func newHarness(t *testing.T, newStore func(t *testing.T) sessions.Store) *harness {
	t.Helper()
	s := newStore(t)
	require.NotNil(t, s, "newStore returned a nil Store")
	h := &harness{
		t:      t,
		ctx:    t.Context(),
		s:      s,
		sealed: make(map[string]string),
		ended:  make(map[string]sessions.Record),
	}
	return h
}

// newID returns a new session ID for user, placed as a Manager places it
// when the store is a sessions.Placer.
func (h *harness) newID(user string) string {
	id := uuid.New()
	if p, ok := h.s.(sessions.Placer); ok {
		v := p.PlaceID(user, uint16(id[0])<<8|uint16(id[1]))
		id[0], id[1] = byte(v>>8), byte(v)
	}
	return id.String()
}

// randomBytes returns n random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return b
}

// str is a value as the Manager encodes a string (a tag byte, then the
// text). Stores must treat values as opaque bytes; the suite uses this
// encoding for the values it does not examine so that stores which decode
// values (the memory store does) can hold them. ValuesRoundTrip checks
// arbitrary bytes.
func str(s string) []byte { return append([]byte{1}, s...) }

// rec returns a new record of user: live, last active now with a one-hour
// idle timeout, created a minute ago, with a couple of values. opts adjust
// it. It is safe to call from several goroutines.
func (h *harness) rec(user string, opts ...func(*sessions.Record)) sessions.Record {
	now := time.Now()
	r := sessions.Record{
		ID:           h.newID(user),
		SealedID:     randomBytes(60),
		UserID:       user,
		CreatedAt:    now.Add(-time.Minute),
		LastActivity: now,
		IdleTimeout:  time.Hour,
		Values:       map[string][]byte{"greeting": str("hello"), "lang": str("en")},
		UserAgent:    "storetest/1.0 (conformance)",
		RemoteAddr:   "127.0.0.1:54321",
	}
	for _, o := range opts {
		o(&r)
	}
	h.mu.Lock()
	h.sealed[string(r.SealedID)] = r.ID
	h.mu.Unlock()
	return r
}

// Record options.

// activeAt makes the record last active at t (created an hour before).
func activeAt(t time.Time) func(*sessions.Record) {
	return func(r *sessions.Record) {
		r.LastActivity = t
		r.CreatedAt = t.Add(-time.Hour)
	}
}

// idleExpired makes the record idle-expired an hour ago.
func idleExpired(r *sessions.Record) {
	activeAt(time.Now().Add(-2 * time.Hour))(r)
}

// absoluteExpired makes the record recently active but past its absolute
// deadline.
func absoluteExpired(r *sessions.Record) {
	now := time.Now()
	r.CreatedAt = now.Add(-2 * time.Hour)
	r.LastActivity = now.Add(-time.Minute)
	r.AbsoluteDeadline = now.Add(-30 * time.Second)
}

// idleDeadline makes the record expire by idleness at deadline, with the
// given idle timeout.
func idleDeadline(idle time.Duration, deadline time.Time) func(*sessions.Record) {
	return func(r *sessions.Record) {
		r.IdleTimeout = idle
		r.LastActivity = deadline.Add(-idle)
		r.CreatedAt = r.LastActivity.Add(-time.Minute)
	}
}

// create adds r with no limit. A store may clear the user's expired records
// while doing so; those are noted as ended.
func (h *harness) create(r sessions.Record) sessions.Record {
	h.t.Helper()
	removed, err := h.s.Create(h.ctx, r, 0, sessions.EvictOldest)
	require.NoError(h.t, err, "Create with no limit")
	h.noteEnded(h.t, "Create", removed)
	now := time.Now()
	for _, o := range removed {
		require.True(h.t, o.Expired(now),
			"Create with no limit removed live record %s: only expired records may be cleared", h.id(o))
		require.Equal(h.t, r.UserID, o.UserID, "Create removed a record of another user")
	}
	return r
}

// createN creates n records of user made with opts.
func (h *harness) createN(n int, user string, opts ...func(*sessions.Record)) []sessions.Record {
	h.t.Helper()
	out := make([]sessions.Record, n)
	for i := range out {
		out[i] = h.create(h.rec(user, opts...))
	}
	return out
}

// idOf returns the ID the suite gave the record a store returned.
func (h *harness) idOf(r sessions.Record) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(r.SealedID) > 0 {
		id, ok := h.sealed[string(r.SealedID)]
		switch {
		case !ok:
			return "", fmt.Errorf("store returned a record with a SealedID the suite never made (%x)", r.SealedID)
		case r.ID != "" && r.ID != id:
			return "", fmt.Errorf("store returned a record with ID %s and the SealedID of %s", r.ID, id)
		}
		return id, nil
	}
	if r.ID == "" {
		return "", errors.New("store returned a record with neither ID nor SealedID")
	}
	return r.ID, nil
}

// id is idOf that fails the test on error.
func (h *harness) id(r sessions.Record) string {
	h.t.Helper()
	id, err := h.idOf(r)
	require.NoError(h.t, err)
	return id
}

// ids returns the sorted IDs of recs.
func (h *harness) ids(recs []sessions.Record) []string {
	h.t.Helper()
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = h.id(r)
	}
	sort.Strings(out)
	return out
}

// byID indexes recs by ID, failing on a duplicate.
func (h *harness) byID(what string, recs []sessions.Record) map[string]sessions.Record {
	h.t.Helper()
	m := make(map[string]sessions.Record, len(recs))
	for _, r := range recs {
		id := h.id(r)
		_, dup := m[id]
		require.False(h.t, dup, "%s returned record %s twice", what, id)
		m[id] = r
	}
	return m
}

// noteEnded records endings reported by a store call. It may be called from
// any goroutine with t nil; duplicates are then failed by checkLedger.
func (h *harness) noteEnded(t *testing.T, what string, recs []sessions.Record) {
	if t != nil {
		t.Helper()
	}
	for _, r := range recs {
		id, err := h.idOf(r)
		if err != nil {
			h.mu.Lock()
			h.dups = append(h.dups, what+": "+err.Error())
			h.mu.Unlock()
			continue
		}
		h.mu.Lock()
		if _, dup := h.ended[id]; dup {
			h.dups = append(h.dups, fmt.Sprintf("%s reported the ending of %s, already reported", what, id))
		} else {
			h.ended[id] = r
		}
		h.mu.Unlock()
	}
	if t != nil {
		h.checkLedger()
	}
}

// checkLedger fails the test if any ending was reported twice.
func (h *harness) checkLedger() {
	h.t.Helper()
	h.mu.Lock()
	dups := slices.Clone(h.dups)
	h.mu.Unlock()
	require.Empty(h.t, dups, "each ending must be reported to exactly one caller")
}

// endedRecord returns the record an ending of id was reported with.
func (h *harness) endedRecord(id string) (sessions.Record, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.ended[id]
	return r, ok
}

// notEnded returns those of recs whose ending has not been reported.
func (h *harness) notEnded(recs []sessions.Record) []sessions.Record {
	var out []sessions.Record
	for _, r := range recs {
		if _, ok := h.endedRecord(r.ID); !ok {
			out = append(out, r)
		}
	}
	return out
}

// Store calls that report endings.

func (h *harness) delete(id string) (sessions.Record, error) {
	h.t.Helper()
	r, err := h.s.Delete(h.ctx, id)
	if err == nil {
		h.noteEnded(h.t, "Delete", []sessions.Record{r})
		require.Equal(h.t, id, h.id(r), "Delete(%s) returned another record", id)
	}
	return r, err
}

func (h *harness) deleteUser(user string) []sessions.Record {
	h.t.Helper()
	recs, err := h.s.DeleteUser(h.ctx, user)
	require.NoError(h.t, err, "DeleteUser")
	h.noteEnded(h.t, "DeleteUser", recs)
	for _, r := range recs {
		require.Equal(h.t, user, r.UserID, "DeleteUser(%q) returned a record of another user", user)
	}
	return recs
}

func (h *harness) createLimited(r sessions.Record, limit int, policy sessions.LimitPolicy) ([]sessions.Record, error) {
	h.t.Helper()
	removed, err := h.s.Create(h.ctx, r, limit, policy)
	h.noteEnded(h.t, "Create", removed)
	return removed, err
}

// expired calls Expired once and acknowledges what it returns.
func (h *harness) expired(now time.Time, max int) []sessions.Record {
	h.t.Helper()
	recs, err := h.s.Expired(h.ctx, now, max)
	require.NoError(h.t, err, "Expired")
	require.LessOrEqual(h.t, len(recs), max, "Expired returned more than max records")
	h.noteEnded(h.t, "Expired", recs)
	for _, r := range recs {
		require.True(h.t, r.Expired(now), "Expired returned record %s, live at now (deadline %v, now %v)",
			h.id(r), r.Deadline(), now)
	}
	require.NoError(h.t, h.s.Ack(h.ctx, h.claims(recs)), "Ack of records Expired returned")
	return recs
}

// claims returns the claim tokens of records Expired returned, failing on
// a record without one.
func (h *harness) claims(recs []sessions.Record) []string {
	h.t.Helper()
	out := make([]string, len(recs))
	for i, r := range recs {
		require.NotEmpty(h.t, r.Claim, "Expired returned record %s without a Claim", h.id(r))
		out[i] = r.Claim
	}
	return out
}

// drainExpired calls Expired until it returns nothing and returns all it
// returned.
func (h *harness) drainExpired(now time.Time, max int) []sessions.Record {
	h.t.Helper()
	var all []sessions.Record
	for range 10000 {
		recs := h.expired(now, max)
		if len(recs) == 0 {
			return all
		}
		all = append(all, recs...)
	}
	h.t.Fatalf("Expired kept returning records after %d calls", 10000)
	return nil
}

// Checks.

// requireSame checks that got is the record want as a store keeps it.
// LastActivity is compared only when activity is set.
func (h *harness) requireSame(want, got sessions.Record, activity bool, what string) {
	t := h.t
	t.Helper()
	switch {
	case got.ID == "" && len(got.SealedID) == 0:
		t.Fatalf("%s: record %s came back with neither ID nor SealedID", what, want.ID)
	case got.ID != "":
		require.Equal(t, want.ID, got.ID, "%s: ID", what)
	}
	if len(got.SealedID) > 0 || got.ID == "" {
		require.Equal(t, want.SealedID, got.SealedID, "%s: SealedID of %s", what, want.ID)
	}
	require.Equal(t, want.UserID, got.UserID, "%s: UserID of %s", what, want.ID)
	requireTime(t, want.CreatedAt, got.CreatedAt, fmt.Sprintf("%s: CreatedAt of %s", what, want.ID))
	if activity {
		requireTime(t, want.LastActivity, got.LastActivity, fmt.Sprintf("%s: LastActivity of %s", what, want.ID))
	}
	require.Equal(t, want.IdleTimeout, got.IdleTimeout, "%s: IdleTimeout of %s", what, want.ID)
	requireTime(t, want.AbsoluteDeadline, got.AbsoluteDeadline, fmt.Sprintf("%s: AbsoluteDeadline of %s", what, want.ID))
	requireValues(t, want.Values, got.Values, "%s: Values of %s", what, want.ID)
	require.Equal(t, want.UserAgent, got.UserAgent, "%s: UserAgent of %s", what, want.ID)
	require.Equal(t, want.RemoteAddr, got.RemoteAddr, "%s: RemoteAddr of %s", what, want.ID)
}

// describe names recs for a failure message: ID, user, and whether the
// record had expired.
func (h *harness) describe(recs []sessions.Record) []string {
	h.t.Helper()
	now := time.Now()
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = fmt.Sprintf("%s (user %q, deadline %s)", h.id(r), r.UserID, r.Deadline().Format(time.RFC3339Nano))
		if r.Expired(now) {
			out[i] += " EXPIRED"
		}
	}
	sort.Strings(out)
	return out
}

// requireSameSet checks that got holds exactly the records want, in any
// order, each once.
func (h *harness) requireSameSet(want, got []sessions.Record, activity bool, what string) {
	h.t.Helper()
	gotBy := h.byID(what, got)
	wantIDs := make([]string, len(want))
	for i, w := range want {
		wantIDs[i] = w.ID
	}
	sort.Strings(wantIDs)
	if gotIDs := h.ids(got); !slices.Equal(wantIDs, gotIDs) {
		var missing, extra []sessions.Record
		for _, w := range want {
			if _, ok := gotBy[w.ID]; !ok {
				missing = append(missing, w)
			}
		}
		wantSet := make(map[string]bool, len(want))
		for _, id := range wantIDs {
			wantSet[id] = true
		}
		for id, g := range gotBy {
			if !wantSet[id] {
				extra = append(extra, g)
			}
		}
		h.t.Fatalf("%s: want %d records, got %d\nmissing: %v\nunexpected: %v",
			what, len(want), len(got), h.describe(missing), h.describe(extra))
	}
	for _, w := range want {
		h.requireSame(w, gotBy[w.ID], activity, what)
	}
}

// requireTime checks that got is want within the store's precision; a zero
// time must stay zero. what names the field.
func requireTime(t *testing.T, want, got time.Time, what string) {
	t.Helper()
	if want.IsZero() {
		require.True(t, got.IsZero(), "%s: want the zero time, got %v", what, got)
		return
	}
	require.False(t, got.IsZero(), "%s: want %v, got the zero time", what, want)
	require.WithinDuration(t, want, got, tolerance, "%s", what)
}

// requireValues checks that got holds the same keys and bytes as want; an
// empty and a nil value (or map) are the same.
func requireValues(t *testing.T, want, got map[string][]byte, msgAndArgs ...any) {
	t.Helper()
	norm := func(m map[string][]byte) map[string]string {
		out := make(map[string]string, len(m))
		for k, v := range m {
			out[k] = string(v)
		}
		return out
	}
	require.Equal(t, norm(want), norm(got), msgAndArgs...)
	for k, v := range want {
		require.True(t, bytes.Equal(v, got[k]), msgAndArgs...)
	}
}

// requireNotFound checks that err wraps sessions.ErrNotFound.
func requireNotFound(t *testing.T, err error, msgAndArgs ...any) {
	t.Helper()
	require.ErrorIs(t, err, sessions.ErrNotFound, msgAndArgs...)
}

// requireGone checks that no method reading live sessions returns r: it is
// ended, expired or was never added.
func (h *harness) requireGone(r sessions.Record, what string) {
	t := h.t
	t.Helper()
	_, err := h.s.Load(h.ctx, r.ID)
	requireNotFound(t, err, "%s: Load of %s", what, r.ID)
	for _, o := range h.userSessions(r.UserID) {
		require.NotEqual(t, r.ID, h.id(o), "%s: UserSessions(%q) returned %s", what, r.UserID, r.ID)
	}
	for _, o := range h.all() {
		require.NotEqual(t, r.ID, h.id(o), "%s: All returned %s", what, r.ID)
	}
}

func (h *harness) userSessions(user string) []sessions.Record {
	h.t.Helper()
	recs, err := h.s.UserSessions(h.ctx, user)
	require.NoError(h.t, err, "UserSessions")
	for _, r := range recs {
		require.Equal(h.t, user, r.UserID, "UserSessions(%q) returned a record of another user", user)
	}
	return recs
}

func (h *harness) all() []sessions.Record {
	h.t.Helper()
	recs, err := h.s.All(h.ctx)
	require.NoError(h.t, err, "All")
	return recs
}

// requireCount checks Count at now.
func (h *harness) requireCount(sessionsWant, usersWant int, what string) {
	h.t.Helper()
	n, u, err := h.s.Count(h.ctx, time.Now())
	require.NoError(h.t, err, "%s: Count", what)
	require.Equal(h.t, sessionsWant, n, "%s: Count sessions", what)
	require.Equal(h.t, usersWant, u, "%s: Count users", what)
}

// requireEndedOnce checks that the ending of each of recs has been reported
// (once: the ledger fails duplicates) with the record's content.
func (h *harness) requireEndedOnce(recs []sessions.Record, activity bool, what string) {
	h.t.Helper()
	for _, r := range recs {
		got, ok := h.endedRecord(r.ID)
		require.True(h.t, ok, "%s: the ending of %s was never reported", what, r.ID)
		h.requireSame(r, got, activity, what)
	}
}

// sleepUntil waits until the wall clock reads at least tm.
func sleepUntil(tm time.Time) {
	for d := time.Until(tm); d > 0; d = time.Until(tm) {
		time.Sleep(d)
	}
}
