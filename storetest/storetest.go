// Package storetest is a conformance suite for implementations of
// sessions.Store. It checks the promises of the Store interface and of
// Record: round trips of every field, ErrNotFound for sessions that are
// unknown, ended or expired, per-user limits under both policies and under
// concurrent Creates, claims of expired records, counts, and that each
// ending is reported to exactly one caller even when Delete, DeleteUser,
// Create and Expired race on the same records.
//
// A store author runs it from an ordinary test of the store's package:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) sessions.Store {
//			s, err := mystore.New(dsn)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// A store whose claims by Expired hold for a lease also runs RunLease with a
// store configured for a short lease:
//
//	func TestLease(t *testing.T) {
//		storetest.RunLease(t, func(t *testing.T) sessions.Store {
//			return mystore.New(dsn, mystore.WithLease(200*time.Millisecond))
//		}, 200*time.Millisecond)
//	}
//
// Each subtest calls newStore once and expects an empty store. Subtests run
// one after another, never in parallel, so newStore may hand out the same
// database each time after emptying it. The whole suite takes about a
// second against an in-memory store and waits for the real clock for at
// most a few hundred milliseconds at a time.
//
// Beyond what the interface documents, the suite relies on the following,
// which every faithful store meets:
//   - Times come back within a millisecond of what was written, and the
//     zero time comes back as the zero time.
//   - Session IDs are random UUIDs in text form; SealedID holds random
//     bytes. A store may return either ID or SealedID (or both); records
//     are matched by whichever it returns.
//   - Values are opaque bytes: ValuesRoundTrip stores arbitrary ones,
//     empty and binary among them.
//   - Create accepts a record that has already expired; it is never live
//     and its ending is reported later, by Expired or by a Create that
//     clears it. Create may clear the user's expired records even when it
//     enforces no limit, as long as it returns them.
//   - Expired returns an empty result only when no unclaimed record has
//     expired at now, and Expired and Count go by their now argument, not
//     by the store's clock; the methods without a now argument use the
//     store's clock, which is this machine's.
//   - The lease of the stores Run gets is longer than a few seconds: Run
//     acknowledges every claim at once, as a Manager does.
package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// check is one subtest of Run.
type check struct {
	name string
	fn   func(h *harness)
}

// checks are the subtests of Run, in the order they run.
var checks = []check{
	{"CreateLoadRoundTrip", testCreateLoadRoundTrip},
	{"ValuesRoundTrip", testValuesRoundTrip},
	{"RecordsAreValues", testRecordsAreValues},
	{"UnknownID", testUnknownID},
	{"ExpiredNeverReturned", testExpiredNeverReturned},
	{"ExpiresOnTime", testExpiresOnTime},
	{"ActivateRecordsActivity", testActivateRecordsActivity},
	{"ActivateNeverMovesBack", testActivateNeverMovesBack},
	{"ActivateExtendsDeadline", testActivateExtendsDeadline},
	{"UpdateSetsAndDeletes", testUpdateSetsAndDeletes},
	{"UpdateNeverResurrects", testUpdateNeverResurrects},
	{"DeleteOnce", testDeleteOnce},
	{"DeleteUser", testDeleteUser},
	{"UserSessionsAndAll", testUserSessionsAndAll},
	{"Count", testCount},
	{"AnonymousNotLimited", testAnonymousNotLimited},
	{"LimitEvictOldest", testLimitEvictOldest},
	{"LimitRejectNew", testLimitRejectNew},
	{"NoLimit", testNoLimit},
	{"LimitClearsExpiredFirst", testLimitClearsExpiredFirst},
	{"ConcurrentCreatesEvictOldest", func(h *harness) { testConcurrentCreates(h, sessions.EvictOldest) }},
	{"ConcurrentCreatesRejectNew", func(h *harness) { testConcurrentCreates(h, sessions.RejectNew) }},
	{"ExpiredClaims", testExpiredClaims},
	{"ExpiredHonoursMax", testExpiredHonoursMax},
	{"ExpiredHonoursNow", testExpiredHonoursNow},
	{"ExpiredConcurrentClaimers", testExpiredConcurrentClaimers},
	{"ConcurrentDeletes", testConcurrentDeletes},
	{"EndingsReportedOnce", testEndingsReportedOnce},
}

// Run runs the conformance suite against stores made by newStore. Each
// subtest gets a fresh, empty store from newStore (which may register
// t.Cleanup to close it). Subtests run sequentially; Run returns when all
// have finished. newStore must not return nil.
func Run(t *testing.T, newStore func(t *testing.T) sessions.Store) {
	t.Helper()
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, newStore)
			c.fn(h)
			h.checkLedger()
		})
	}
}

// RunLease checks that a record claimed by Expired and never acknowledged
// is handed out again once lease has passed, not before, and under a new
// token; that a claim acknowledged with Ack is never handed out again; that
// Extend keeps a claim held; and that a claimer whose claim was handed out
// again can neither extend nor acknowledge the new claim. lease must be the
// lease of the stores newStore makes; keep it short (100ms–1s): the checks
// take about ten leases in all. Each subtest gets a fresh, empty store.
func RunLease(t *testing.T, newStore func(t *testing.T) sessions.Store, lease time.Duration) {
	t.Helper()
	require.Positive(t, lease, "RunLease needs the store's lease")
	for _, c := range []struct {
		name string
		fn   func(h *harness, lease time.Duration)
	}{
		{"ClaimRedeliveredAfterLease", testLease},
		{"ExtendKeepsClaim", testExtend},
		{"StaleClaimIgnored", testStaleClaim},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, newStore)
			c.fn(h, lease)
			h.checkLedger()
		})
	}
}
