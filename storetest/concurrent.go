package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// testConcurrentCreates races 64 Creates for one user with limit 5.
func testConcurrentCreates(h *harness, policy sessions.LimitPolicy) {
	t := h.t
	const n, limit = 64, 5
	now := time.Now()
	recs := make([]sessions.Record, n)
	for i := range recs {
		recs[i] = h.rec("alice", activeAt(now.Add(-time.Duration(n-i)*time.Second)))
	}
	removed := make([][]sessions.Record, n)
	errs := make([]error, n)
	start, done := make(chan struct{}), make(chan struct{})

	// An observer checks that no moment shows more than limit live records.
	var (
		observer   sync.WaitGroup
		maxSeen    int
		observeErr error
	)
	observer.Go(func() {
		<-start
		for {
			select {
			case <-done:
				return
			default:
			}
			live, err := h.s.UserSessions(h.ctx, "alice")
			if err != nil {
				observeErr = err
				return
			}
			maxSeen = max(maxSeen, len(live))
			runtime.Gosched()
		}
	})
	var wg sync.WaitGroup
	for i := range recs {
		wg.Go(func() {
			<-start
			removed[i], errs[i] = h.s.Create(h.ctx, recs[i], limit, policy)
		})
	}
	close(start)
	wg.Wait()
	close(done)
	observer.Wait()
	require.NoError(t, observeErr, "UserSessions during concurrent Creates")
	require.LessOrEqual(t, maxSeen, limit, "UserSessions saw more than limit live records during concurrent Creates")

	var all, succeeded []sessions.Record
	for i := range recs {
		h.noteEnded(t, "Create", removed[i])
		all = append(all, removed[i]...)
		switch {
		case errs[i] == nil:
			succeeded = append(succeeded, recs[i])
		case policy == sessions.RejectNew && errors.Is(errs[i], sessions.ErrLimitReached):
			require.Empty(t, removed[i], "a rejected Create removed records")
		default:
			require.NoError(t, errs[i], "concurrent Create")
		}
	}
	live := h.userSessions("alice")
	require.Len(t, live, limit, "live records after %d concurrent Creates with limit %d", n, limit)
	h.requireCount(limit, 1, "after concurrent Creates")
	if policy == sessions.RejectNew {
		require.Empty(t, all, "Creates with RejectNew and no expired records removed records")
		require.Len(t, succeeded, limit, "Creates that succeeded with RejectNew")
		h.requireSameSet(succeeded, live, true, "live records after concurrent Creates with RejectNew")
		return
	}
	require.Len(t, succeeded, n, "Creates that succeeded with EvictOldest")
	h.requireSameSet(recs, append(all, live...), true, "records evicted by concurrent Creates and left live")
}

func testExpiredClaims(h *harness) {
	t := h.t
	require.Empty(t, h.describe(h.expired(time.Now(), 10)), "Expired on an empty store")
	live := []sessions.Record{
		h.create(h.rec("alice")),
		h.create(h.rec("")),
		h.create(h.rec("bob", func(r *sessions.Record) { r.AbsoluteDeadline = time.Now().Add(time.Hour) })),
	}
	require.Empty(t, h.describe(h.expired(time.Now(), 10)), "Expired with only live records")
	expired := []sessions.Record{
		h.create(h.rec("carol", idleExpired)),
		h.create(h.rec("dave", absoluteExpired)),
		h.create(h.rec("", idleExpired)),
		h.create(h.rec("", absoluteExpired)),
		h.create(h.rec("alice", idleExpired)),
	}
	pending := h.notEnded(expired)
	claimed := h.expired(time.Now(), 100)
	h.requireSameSet(pending, claimed, true, "Expired")
	require.Empty(t, h.describe(h.expired(time.Now(), 100)), "a second Expired")
	h.requireEndedOnce(expired, true, "expired records")

	for _, r := range expired {
		h.requireGone(r, "after Expired")
		_, err := h.delete(r.ID)
		requireNotFound(t, err, "Delete of a claimed record")
		_, err = h.s.Activate(h.ctx, r.ID, time.Now())
		requireNotFound(t, err, "Activate of a claimed record")
		err = h.s.Update(h.ctx, r.ID, time.Now(), map[string][]byte{"k": str("v")}, nil)
		requireNotFound(t, err, "Update of a claimed record")
	}
	require.Empty(t, h.describe(h.deleteUser("carol")), "DeleteUser of a user whose only record was claimed")
	h.requireCount(3, 2, "after Expired")
	h.requireSameSet(live, h.all(), true, "All after Expired")

	// Ack is idempotent and ignores what it does not know.
	require.NoError(t, h.s.Ack(h.ctx, h.claims(claimed)), "a second Ack of claimed records")
	require.NoError(t, h.s.Ack(h.ctx, []string{uuid.NewString(), "not-a-claim"}), "Ack of unknown claims")
	require.NoError(t, h.s.Ack(h.ctx, nil), "Ack of no claims")
	require.NoError(t, h.s.Ack(h.ctx, []string{live[0].ID}), "Ack of a live record's ID")
	held, _, err := h.s.Extend(h.ctx, h.claims(claimed), time.Now())
	require.NoError(t, err, "Extend of acknowledged claims")
	require.Empty(t, held, "Extend reported acknowledged claims as held")
	for _, r := range expired {
		h.requireGone(r, "after Ack")
	}
	h.requireCount(3, 2, "after Ack")
	require.Empty(t, h.describe(h.expired(time.Now(), 100)), "Expired after Ack")
}

func testExpiredHonoursMax(h *harness) {
	t := h.t
	expired := h.createN(10, "", idleExpired)
	for _, m := range []int{1, 3} {
		// h.expired checks that it returns no more than max.
		require.NotEmpty(t, h.expired(time.Now(), m), "Expired(max %d) with unclaimed expired records", m)
	}
	h.drainExpired(time.Now(), 3)
	h.requireEndedOnce(expired, true, "expired records claimed 3 at a time")
}

func testExpiredHonoursNow(h *harness) {
	t := h.t
	base := time.Now().Truncate(time.Millisecond)
	recs := []sessions.Record{
		h.create(h.rec("", idleDeadline(time.Hour, base.Add(-time.Hour)))),
		h.create(h.rec("", idleDeadline(time.Hour, base.Add(-30*time.Minute)))),
		h.create(h.rec("", func(r *sessions.Record) {
			r.CreatedAt = base.Add(-3 * time.Hour)
			r.LastActivity = base.Add(-time.Minute)
			r.AbsoluteDeadline = base.Add(-10 * time.Minute)
		})),
	}
	for i, r := range recs {
		d := r.Deadline()
		require.Empty(t, h.describe(h.expired(d.Add(-time.Millisecond), 10)),
			"Expired at 1ms before the deadline of record %d", i)
		h.requireSameSet([]sessions.Record{r}, h.expired(d, 10), true,
			fmt.Sprintf("Expired at the deadline of record %d", i))
	}
}

func testExpiredConcurrentClaimers(h *harness) {
	t := h.t
	const nExpired, nLive, claimers, batch = 500, 20, 4, 7
	var expired, live []sessions.Record
	for i := range nExpired {
		opt := idleExpired
		if i%2 == 1 {
			opt = absoluteExpired
		}
		expired = append(expired, h.create(h.rec("", opt)))
	}
	for i := range nLive {
		live = append(live, h.create(h.rec(fmt.Sprintf("user%d", i%5))))
	}

	got := make([][]sessions.Record, claimers)
	errs := make([]error, claimers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for c := range claimers {
		wg.Go(func() {
			<-start
			for range 2 * nExpired {
				now := time.Now()
				recs, err := h.s.Expired(h.ctx, now, batch)
				if err != nil {
					errs[c] = fmt.Errorf("Expired: %w", err)
					return
				}
				if len(recs) > batch {
					errs[c] = fmt.Errorf("Expired(max %d) returned %d records", batch, len(recs))
					return
				}
				if len(recs) == 0 {
					return
				}
				got[c] = append(got[c], recs...)
				ids := make([]string, 0, len(recs))
				for _, r := range recs {
					id, err := h.idOf(r)
					if err != nil {
						errs[c] = err
						return
					}
					if !r.Expired(now) {
						errs[c] = fmt.Errorf("Expired returned %s, live at now", id)
						return
					}
					ids = append(ids, id)
				}
				if err := h.s.Ack(h.ctx, ids); err != nil {
					errs[c] = fmt.Errorf("Ack: %w", err)
					return
				}
			}
			errs[c] = errors.New("Expired kept returning records")
		})
	}
	close(start)
	wg.Wait()
	var all []sessions.Record
	for c := range claimers {
		require.NoError(t, errs[c], "claimer %d", c)
		h.noteEnded(t, fmt.Sprintf("Expired (claimer %d)", c), got[c])
		all = append(all, got[c]...)
	}
	h.requireSameSet(expired, all, true, "records claimed by concurrent callers of Expired")
	h.requireCount(nLive, 5, "after concurrent claims")
	h.requireSameSet(live, h.all(), true, "All after concurrent claims")
}

func testConcurrentDeletes(h *harness) {
	t := h.t
	r := h.create(h.rec("alice"))
	const callers = 16
	recs := make([]sessions.Record, callers)
	errs := make([]error, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			recs[i], errs[i] = h.s.Delete(h.ctx, r.ID)
		})
	}
	close(start)
	wg.Wait()
	var deleted []sessions.Record
	for i := range callers {
		if errs[i] == nil {
			deleted = append(deleted, recs[i])
			continue
		}
		requireNotFound(t, errs[i], "concurrent Delete of one record")
	}
	h.noteEnded(t, "Delete", deleted)
	h.requireSameSet([]sessions.Record{r}, deleted, true, "records returned by concurrent Deletes of one record")

	bob := h.createN(20, "bob")
	got := make([][]sessions.Record, 4)
	start = make(chan struct{})
	for i := range got {
		wg.Go(func() {
			<-start
			got[i], errs[i] = h.s.DeleteUser(h.ctx, "bob")
		})
	}
	close(start)
	wg.Wait()
	var all []sessions.Record
	for i := range got {
		require.NoError(t, errs[i], "concurrent DeleteUser")
		h.noteEnded(t, "DeleteUser", got[i])
		all = append(all, got[i]...)
	}
	h.requireSameSet(bob, all, true, "records returned by concurrent DeleteUsers of one user")
	h.requireCount(0, 0, "after concurrent deletes")
}

// testEndingsReportedOnce races Delete, DeleteUser, Expired and Create
// (evicting and clearing expired records) on the same records, some of
// them expiring during the race, and checks that every ending is reported
// exactly once.
func testEndingsReportedOnce(h *harness) {
	t := h.t
	const users, limit = 6, 2
	now := time.Now()
	boundaryEnd := now.Add(80 * time.Millisecond) // the last moment a record expires during the race
	boundary := func(r *sessions.Record) {
		idleDeadline(time.Second, now.Add(20*time.Millisecond+rand.N(60*time.Millisecond)))(r)
	}
	var (
		created []sessions.Record // records in the store when the race starts
		userIDs []string
	)
	for u := range users {
		user := fmt.Sprintf("racer%d", u)
		userIDs = append(userIDs, user)
		for i := range 3 {
			created = append(created, h.create(h.rec(user, activeAt(now.Add(-time.Duration(i+1)*time.Minute)))))
		}
		created = append(created, h.createN(2, user, boundary)...)
		created = append(created, h.create(h.rec(user, idleExpired)))
	}
	for range 10 {
		created = append(created, h.create(h.rec("", idleExpired)))
	}
	created = append(created, h.createN(5, "", boundary)...)
	created = append(created, h.createN(5, "")...)
	var added []sessions.Record // records Creates add during the race
	for _, user := range userIDs {
		added = append(added, h.rec(user), h.rec(user))
	}
	everything := append(append([]sessions.Record(nil), created...), added...)
	ids := make([]string, len(everything))
	for i, r := range everything {
		ids[i] = r.ID
	}
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })

	type result struct {
		what  string
		ended []sessions.Record
		err   error
	}
	var results []*result
	start := make(chan struct{})
	var wg sync.WaitGroup
	racer := func(what string, f func(r *result)) {
		r := &result{what: what}
		results = append(results, r)
		wg.Go(func() {
			<-start
			f(r)
		})
	}
	racer("Delete", func(r *result) {
		for _, id := range ids {
			rec, err := h.s.Delete(h.ctx, id)
			switch {
			case err == nil:
				r.ended = append(r.ended, rec)
			case !errors.Is(err, sessions.ErrNotFound):
				r.err = fmt.Errorf("Delete: %w", err)
				return
			}
		}
	})
	racer("DeleteUser", func(r *result) {
		for _, user := range userIDs {
			recs, err := h.s.DeleteUser(h.ctx, user)
			if err != nil {
				r.err = fmt.Errorf("DeleteUser: %w", err)
				return
			}
			r.ended = append(r.ended, recs...)
		}
	})
	for c := range 2 {
		racer(fmt.Sprintf("Expired (claimer %d)", c), func(r *result) {
			for range 1000 {
				recs, err := h.s.Expired(h.ctx, time.Now(), 4)
				if err != nil {
					r.err = fmt.Errorf("Expired: %w", err)
					return
				}
				r.ended = append(r.ended, recs...)
				acks := make([]string, 0, len(recs))
				for _, rec := range recs {
					id, err := h.idOf(rec)
					if err != nil {
						r.err = err
						return
					}
					acks = append(acks, id)
				}
				if err := h.s.Ack(h.ctx, acks); err != nil {
					r.err = fmt.Errorf("Ack: %w", err)
					return
				}
				if len(recs) == 0 {
					if time.Now().After(boundaryEnd) {
						return
					}
					time.Sleep(2 * time.Millisecond) // pace the polling until the last record expires
				}
			}
			r.err = errors.New("Expired kept returning records")
		})
	}
	racer("Create", func(r *result) {
		for _, rec := range added {
			removed, err := h.s.Create(h.ctx, rec, limit, sessions.EvictOldest)
			if err != nil {
				r.err = fmt.Errorf("Create: %w", err)
				return
			}
			r.ended = append(r.ended, removed...)
		}
	})
	close(start)
	wg.Wait()
	for _, r := range results {
		require.NoError(t, r.err, r.what)
		h.noteEnded(t, r.what, r.ended)
	}

	// End what is left and check that every record ended exactly once.
	sleepUntil(boundaryEnd.Add(5 * time.Millisecond))
	for _, user := range userIDs {
		h.deleteUser(user)
	}
	for _, r := range everything {
		if r.UserID == "" {
			_, err := h.delete(r.ID)
			if err != nil {
				requireNotFound(t, err, "Delete")
			}
		}
	}
	h.drainExpired(time.Now(), 100)
	for _, r := range everything {
		_, ok := h.endedRecord(r.ID)
		require.True(t, ok, "the ending of %s (user %q) was never reported", r.ID, r.UserID)
	}
	h.requireCount(0, 0, "after ending everything")
	require.Empty(t, h.describe(h.all()), "All after ending everything")
}

// testLease checks that a claim never acknowledged is handed out again once
// its lease has passed, not before, and under a new token; and that an
// acknowledged claim is never handed out again.
func testLease(h *harness, lease time.Duration) {
	t := h.t
	a := h.create(h.rec("", idleExpired))
	b := h.create(h.rec("", absoluteExpired))
	claimedAt := time.Now()
	got, err := h.s.Expired(h.ctx, claimedAt, 10)
	require.NoError(t, err, "Expired")
	h.requireSameSet([]sessions.Record{a, b}, got, true, "Expired")
	first := h.byID("Expired", got)
	for _, r := range got {
		require.NotEmpty(t, r.Claim, "a claimed record without a Claim")
		require.False(t, r.LeaseEnd.Before(claimedAt.Add(lease-tolerance)),
			"LeaseEnd %v is not a lease (%v) after the claim at %v", r.LeaseEnd, lease, claimedAt)
	}
	require.NoError(t, h.s.Ack(h.ctx, []string{first[h.id(b)].Claim}), "Ack") // a is never acknowledged: its claimer "died"

	h.requireGone(a, "during the lease")
	_, err = h.s.Delete(h.ctx, a.ID)
	requireNotFound(t, err, "Delete of a claimed record during the lease")
	h.requireCount(0, 0, "during the lease")

	again := h.awaitRedelivery(claimedAt, lease)
	h.requireSameSet([]sessions.Record{a}, again, true, "Expired after the lease")
	require.NotEqual(t, first[h.id(a)].Claim, again[0].Claim, "a claim handed out again kept its token")
	require.NoError(t, h.s.Ack(h.ctx, []string{again[0].Claim}), "Ack of a record handed out again")

	// Acknowledged claims are never handed out again.
	h.requireNoClaims(lease+lease/2, "Expired handed out an acknowledged claim again")
	require.NoError(t, h.s.Ack(h.ctx, []string{first[h.id(a)].Claim}), "a late Ack from the first claimer")
	h.requireGone(a, "after the lease")
	h.requireCount(0, 0, "after the lease")
}

// testExtend checks that Extend keeps a claim held past its first lease.
func testExtend(h *harness, lease time.Duration) {
	t := h.t
	a := h.create(h.rec("alice", idleExpired))
	got, err := h.s.Expired(h.ctx, time.Now(), 10)
	require.NoError(t, err, "Expired")
	h.requireSameSet([]sessions.Record{a}, got, true, "Expired")
	claim := got[0].Claim
	// Extend every half lease for two leases: the claim must stay held.
	poll := min(max(lease/20, time.Millisecond), 50*time.Millisecond)
	until := time.Now().Add(2 * lease)
	next := time.Now().Add(lease / 2)
	for time.Now().Before(until) {
		if !time.Now().Before(next) {
			now := time.Now()
			held, end, err := h.s.Extend(h.ctx, []string{claim}, now)
			require.NoError(t, err, "Extend")
			require.Equal(t, []string{claim}, held, "Extend of a claim held")
			require.False(t, end.Before(now.Add(lease-tolerance)), "Extend returned %v, less than a lease after %v", end, now)
			next = now.Add(lease / 2)
		}
		recs, err := h.s.Expired(h.ctx, time.Now(), 10)
		require.NoError(t, err, "Expired")
		require.Empty(t, h.ids(recs), "Expired handed out a claim that was extended in time")
		time.Sleep(poll)
	}
	require.NoError(t, h.s.Ack(h.ctx, []string{claim}), "Ack after extending")
	h.requireNoClaims(lease+lease/2, "Expired handed out an extended claim after its Ack")
	h.requireGone(a, "after Ack")
}

// testStaleClaim checks that the first claimer of a record handed out again
// can neither extend nor acknowledge the new claim.
func testStaleClaim(h *harness, lease time.Duration) {
	t := h.t
	a := h.create(h.rec("", idleExpired))
	claimedAt := time.Now()
	got, err := h.s.Expired(h.ctx, claimedAt, 10)
	require.NoError(t, err, "Expired")
	h.requireSameSet([]sessions.Record{a}, got, true, "Expired")
	stale := got[0].Claim
	again := h.awaitRedelivery(claimedAt, lease)
	h.requireSameSet([]sessions.Record{a}, again, true, "Expired after the lease")
	require.NotEqual(t, stale, again[0].Claim, "a claim handed out again kept its token")

	// The first claimer wakes up: its Extend and Ack must not touch the new
	// claim, which therefore lapses and is handed out a third time.
	// The second claim's lease runs from the Expired call that made it,
	// not from now: Extend and Ack below take time too.
	secondAt := time.Now()
	if end := again[0].LeaseEnd; !end.IsZero() && end.Add(-lease).Before(secondAt) {
		secondAt = end.Add(-lease)
	}
	held, _, err := h.s.Extend(h.ctx, []string{stale, "not-a-claim"}, time.Now())
	require.NoError(t, err, "Extend of a stale claim")
	require.Empty(t, held, "Extend reported a stale claim as held")
	require.NoError(t, h.s.Ack(h.ctx, []string{stale}), "Ack of a stale claim")
	third := h.awaitRedelivery(secondAt, lease)
	h.requireSameSet([]sessions.Record{a}, third, true, "Expired after a stale Ack")
	require.NoError(t, h.s.Ack(h.ctx, []string{third[0].Claim}), "Ack of the third claim")
	h.requireNoClaims(lease+lease/2, "Expired handed out an acknowledged claim again")
}

// awaitRedelivery polls Expired until it hands out records again and
// checks that this happened no sooner than a lease after claimedAt and no
// later than two leases and a second.
func (h *harness) awaitRedelivery(claimedAt time.Time, lease time.Duration) []sessions.Record {
	t := h.t
	t.Helper()
	poll := min(max(lease/20, time.Millisecond), 50*time.Millisecond)
	giveUp := claimedAt.Add(2*lease + time.Second)
	for {
		again, err := h.s.Expired(h.ctx, time.Now(), 10)
		after := time.Now()
		require.NoError(t, err, "Expired")
		if len(again) > 0 {
			require.False(t, after.Before(claimedAt.Add(lease-tolerance)),
				"a claim was handed out again %v after the claim, before the lease (%v) passed", after.Sub(claimedAt), lease)
			return again
		}
		require.True(t, after.Before(giveUp), "a claim never acknowledged was not handed out again within 2×lease+1s")
		time.Sleep(poll)
	}
}

// requireNoClaims polls Expired for d and fails if it hands out anything.
func (h *harness) requireNoClaims(d time.Duration, msg string) {
	t := h.t
	t.Helper()
	poll := min(max(d/30, time.Millisecond), 50*time.Millisecond)
	until := time.Now().Add(d)
	for time.Now().Before(until) {
		recs, err := h.s.Expired(h.ctx, time.Now(), 10)
		require.NoError(t, err, "Expired")
		require.Empty(t, h.ids(recs), msg)
		time.Sleep(poll)
	}
}
