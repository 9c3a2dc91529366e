package storetest

import (
	"fmt"
	"maps"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// coalesce is how far behind the activity a store holds may lag the
// activity written to it: 5% of the idle timeout (Store.Activate).
func coalesce(idle time.Duration) time.Duration { return idle / 20 }

// requireActivity checks that the activity a store holds for a record with
// the given idle timeout, after activity was recorded at at, is at (within
// the store's precision) or behind it by no more than the coalescing
// allowance.
func (h *harness) requireActivity(got time.Time, at time.Time, idle time.Duration, what string) {
	h.t.Helper()
	require.False(h.t, got.Before(at.Add(-coalesce(idle)-tolerance)),
		"%s: the store holds activity %v, more than 5%% of the idle timeout (%v) behind %v", what, got, coalesce(idle), at)
	require.False(h.t, got.After(at.Add(tolerance)),
		"%s: the store holds activity %v, after the latest activity recorded (%v)", what, got, at)
}

func testCreateLoadRoundTrip(h *harness) {
	t := h.t
	now := time.Now()
	full := h.rec("alice", func(r *sessions.Record) {
		r.CreatedAt = now.Add(-10 * time.Minute)
		r.LastActivity = now.Add(-2 * time.Minute)
		r.IdleTimeout = 45 * time.Minute
		r.AbsoluteDeadline = now.Add(6 * time.Hour)
		r.UserAgent = "Mozilla/5.0 (X11; Linux x86_64) \"quoted\" ünïcödé"
		r.RemoteAddr = "[::1]:8080"
	})
	bare := h.rec("", func(r *sessions.Record) {
		r.Values = nil
		r.UserAgent = ""
		r.RemoteAddr = ""
	})
	for _, r := range []sessions.Record{full, bare} {
		h.create(r)
		got, err := h.s.Load(h.ctx, r.ID)
		require.NoError(t, err, "Load after Create")
		h.requireSame(r, got, true, "Load after Create")
	}
	h.requireCount(2, 1, "after two Creates")
}

func testValuesRoundTrip(h *harness) {
	t := h.t
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	values := map[string][]byte{
		"empty":         {},
		"all bytes":     all,
		"zeros":         make([]byte, 16),
		"random":        randomBytes(1000),
		"large":         randomBytes(32 << 10),
		"invalid utf-8": {0xff, 0xfe, 0xc3},
		"text":          []byte("plain text"),
		"ключ":          []byte("значение"),
		"a:b/c d{e}*":   []byte("odd key"),
	}
	r := h.rec("alice", func(r *sessions.Record) { r.Values = maps.Clone(values) })
	h.create(r)
	got, err := h.s.Load(h.ctx, r.ID)
	require.NoError(t, err, "Load")
	requireValues(t, values, got.Values, "Values after Create and Load")

	set := map[string][]byte{
		"empty 2":   {},
		"all bytes": randomBytes(256),
		"new":       {0, 0, 0, 1},
		"text":      {},
	}
	del := []string{"zeros", "ключ"}
	require.NoError(t, h.s.Update(h.ctx, r.ID, time.Now(), set, del), "Update")
	maps.Copy(values, set)
	for _, k := range del {
		delete(values, k)
	}
	got, err = h.s.Load(h.ctx, r.ID)
	require.NoError(t, err, "Load after Update")
	requireValues(t, values, got.Values, "Values after Update and Load")

	us := h.userSessions("alice")
	require.Len(t, us, 1, "UserSessions")
	requireValues(t, values, us[0].Values, "Values returned by UserSessions")
	deleted, err := h.delete(r.ID)
	require.NoError(t, err, "Delete")
	requireValues(t, values, deleted.Values, "Values returned by Delete")
}

// testRecordsAreValues checks that a store does not share Values maps with
// its callers: a Record is a plain value.
func testRecordsAreValues(h *harness) {
	t := h.t
	r := h.rec("alice")
	want := maps.Clone(r.Values)
	h.create(r)
	r.Values["added after Create"] = str("x")
	delete(r.Values, "greeting")

	got, err := h.s.Load(h.ctx, r.ID)
	require.NoError(t, err, "Load")
	requireValues(t, want, got.Values, "Values after the caller changed the map it passed to Create")

	got.Values["added after Load"] = str("y")
	delete(got.Values, "lang")
	again, err := h.s.Load(h.ctx, r.ID)
	require.NoError(t, err, "Load")
	requireValues(t, want, again.Values, "Values after the caller changed the map Load returned")
}

func testUnknownID(h *harness) {
	t := h.t
	r := h.create(h.rec("alice"))
	for _, id := range []string{uuid.NewString(), "not-a-session-id", ""} {
		_, err := h.s.Load(h.ctx, id)
		requireNotFound(t, err, "Load(%q)", id)
		_, err = h.s.Activate(h.ctx, id, time.Now())
		requireNotFound(t, err, "Activate(%q)", id)
		err = h.s.Update(h.ctx, id, time.Now(), map[string][]byte{"k": str("v")}, []string{"greeting"})
		requireNotFound(t, err, "Update(%q)", id)
		_, err = h.delete(id)
		requireNotFound(t, err, "Delete(%q)", id)
	}
	got, err := h.s.Load(h.ctx, r.ID)
	require.NoError(t, err, "Load of the one live record")
	h.requireSame(r, got, true, "Load after calls on unknown IDs")
	h.requireCount(1, 1, "after calls on unknown IDs")
}

func testExpiredNeverReturned(h *harness) {
	t := h.t
	live := h.create(h.rec("alice"))
	expired := []sessions.Record{
		h.create(h.rec("alice", idleExpired)),
		h.create(h.rec("bob", idleExpired)),
		h.create(h.rec("carol", absoluteExpired)),
		h.create(h.rec("", idleExpired)),
		h.create(h.rec("", absoluteExpired)),
	}
	for _, r := range expired {
		_, err := h.s.Load(h.ctx, r.ID)
		requireNotFound(t, err, "Load of an expired record")
		_, err = h.s.Activate(h.ctx, r.ID, time.Now())
		requireNotFound(t, err, "Activate of an expired record")
		err = h.s.Update(h.ctx, r.ID, time.Now(), map[string][]byte{"greeting": str("changed")}, []string{"lang"})
		requireNotFound(t, err, "Update of an expired record")
		_, err = h.delete(r.ID)
		requireNotFound(t, err, "Delete of an expired record")
	}
	h.requireSameSet([]sessions.Record{live}, h.userSessions("alice"), true, "UserSessions with expired records")
	require.Empty(t, h.describe(h.userSessions("bob")), "UserSessions of a user whose only record expired")
	require.Empty(t, h.describe(h.deleteUser("carol")), "DeleteUser of a user whose only record expired")
	h.requireSameSet([]sessions.Record{live}, h.all(), true, "All with expired records")
	h.requireCount(1, 1, "Count with expired records")

	// The endings are still reported, with the records as they were:
	// Activate and Update of expired records changed nothing.
	h.drainExpired(time.Now(), 100)
	h.requireEndedOnce(expired, true, "expired records after Expired")
	_, ended := h.endedRecord(live.ID)
	require.False(t, ended, "the live record was reported as ended")
}

// testExpiresOnTime waits for two records, one idle and one with an absolute
// deadline, to expire, checking that Load returns them up to their deadline
// and never after.
func testExpiresOnTime(h *harness) {
	t := h.t
	deadline := time.Now().Add(150 * time.Millisecond)
	idle := h.create(h.rec("alice", idleDeadline(time.Second, deadline)))
	abs := h.create(h.rec("bob", func(r *sessions.Record) { r.AbsoluteDeadline = deadline }))

	pending := map[string]sessions.Record{idle.ID: idle, abs.ID: abs}
	giveUp := deadline.Add(2 * time.Second)
	for len(pending) > 0 {
		require.True(t, time.Now().Before(giveUp), "Load still returns records 2s after their deadline")
		for id := range pending {
			before := time.Now()
			_, err := h.s.Load(h.ctx, id)
			after := time.Now()
			if err == nil {
				require.True(t, before.Before(deadline.Add(tolerance)),
					"Load returned %s %v after its deadline", id, before.Sub(deadline))
				continue
			}
			requireNotFound(t, err, "Load of %s around its deadline", id)
			require.False(t, after.Before(deadline.Add(-tolerance)),
				"Load of %s returned ErrNotFound %v before its deadline", id, deadline.Sub(after))
			delete(pending, id)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, r := range []sessions.Record{idle, abs} {
		_, err := h.s.Activate(h.ctx, r.ID, time.Now())
		requireNotFound(t, err, "Activate after the deadline")
		err = h.s.Update(h.ctx, r.ID, time.Now(), map[string][]byte{"k": str("v")}, nil)
		requireNotFound(t, err, "Update after the deadline")
		h.requireGone(r, "after the deadline")
	}
	h.requireCount(0, 0, "after the deadline")
	h.drainExpired(time.Now(), 10)
	h.requireEndedOnce([]sessions.Record{idle, abs}, true, "records that expired")
}

func testActivateRecordsActivity(h *harness) {
	t := h.t
	idle := 30 * time.Minute
	r := h.create(h.rec("alice", activeAt(time.Now().Add(-10*time.Minute)), func(r *sessions.Record) {
		r.IdleTimeout = idle
		r.AbsoluteDeadline = time.Now().Add(time.Hour)
	}))
	at := time.Now()
	got, err := h.s.Activate(h.ctx, r.ID, at)
	require.NoError(t, err, "Activate")
	h.requireSame(r, got, false, "Activate")
	requireTime(t, at, got.LastActivity, "LastActivity of the record Activate returned")

	loaded, err := h.s.Load(h.ctx, r.ID)
	require.NoError(t, err, "Load after Activate")
	h.requireSame(r, loaded, false, "Load after Activate")
	h.requireActivity(loaded.LastActivity, at, idle, "Load after Activate 10 minutes ahead")

	// A record 10s from its idle deadline, activated now, is good for
	// (almost) another idle timeout.
	soon := h.create(h.rec("bob", idleDeadline(idle, time.Now().Add(10*time.Second))))
	at = time.Now()
	_, err = h.s.Activate(h.ctx, soon.ID, at)
	require.NoError(t, err, "Activate")
	loaded, err = h.s.Load(h.ctx, soon.ID)
	require.NoError(t, err, "Load after Activate")
	h.requireActivity(loaded.LastActivity, at, idle, "Load after Activate of a record about to expire")
	require.False(t, loaded.Deadline().Before(at.Add(idle-coalesce(idle)-tolerance)),
		"Activate did not extend the deadline: %v", loaded.Deadline())
}

func testActivateNeverMovesBack(h *harness) {
	t := h.t
	last := time.Now().Add(-time.Minute)
	r := h.create(h.rec("alice", activeAt(last)))
	for _, back := range []time.Duration{10 * time.Minute, 3 * time.Hour} {
		_, err := h.s.Activate(h.ctx, r.ID, last.Add(-back))
		require.NoError(t, err, "Activate with a time %v before the last activity", back)
		loaded, err := h.s.Load(h.ctx, r.ID)
		require.NoError(t, err, "Load after Activate with a time %v before the last activity", back)
		require.False(t, loaded.LastActivity.Before(last.Add(-tolerance)),
			"Activate moved LastActivity back from %v to %v", last, loaded.LastActivity)

		require.NoError(t, h.s.Update(h.ctx, r.ID, last.Add(-back), map[string][]byte{"k": str("v")}, nil),
			"Update with a time %v before the last activity", back)
		loaded, err = h.s.Load(h.ctx, r.ID)
		require.NoError(t, err, "Load after Update with a time %v before the last activity", back)
		require.False(t, loaded.LastActivity.Before(last.Add(-tolerance)),
			"Update moved LastActivity back from %v to %v", last, loaded.LastActivity)
	}
	h.requireCount(1, 1, "after activity in the past")
}

// testActivateExtendsDeadline activates a record shortly before it would
// expire and checks, once that moment has passed, that it is still live.
func testActivateExtendsDeadline(h *harness) {
	t := h.t
	const idle = time.Second // 5% is 50ms
	for attempt := 1; ; attempt++ {
		orig := time.Now().Add(150 * time.Millisecond)
		r := h.create(h.rec("alice", idleDeadline(idle, orig)))
		at := time.Now()
		if at.After(orig.Add(-75*time.Millisecond)) && attempt < 3 {
			continue // the machine is too busy: Create alone ate the margin
		}
		got, err := h.s.Activate(h.ctx, r.ID, at)
		require.NoError(t, err, "Activate of a record %v before its deadline", orig.Sub(at))
		requireTime(t, at, got.LastActivity, "LastActivity of the record Activate returned")

		sleepUntil(orig.Add(30 * time.Millisecond))
		loaded, err := h.s.Load(h.ctx, r.ID)
		require.NoError(t, err, "Load of an activated record after its old deadline")
		h.requireActivity(loaded.LastActivity, at, idle, "Load after Activate")
		for _, e := range h.expired(time.Now(), 100) {
			require.NotEqual(t, r.ID, h.id(e), "Expired returned a record activated before its old deadline")
		}
		n, _, err := h.s.Count(h.ctx, time.Now())
		require.NoError(t, err, "Count")
		require.Equal(t, 1, n, "Count after the old deadline of an activated record")
		return
	}
}

func testUpdateSetsAndDeletes(h *harness) {
	t := h.t
	idle := 30 * time.Minute
	r := h.create(h.rec("alice", activeAt(time.Now().Add(-10*time.Minute)), func(r *sessions.Record) {
		r.IdleTimeout = idle
		r.Values = map[string][]byte{"a": str("A"), "b": str("B"), "c": str("C"), "d": str("D")}
	}))
	want := r
	want.Values = map[string][]byte{"a": str("A"), "b": str("B2"), "d": str("D"), "e": str("E")}

	at := time.Now()
	err := h.s.Update(h.ctx, r.ID, at, map[string][]byte{"b": str("B2"), "e": str("E")}, []string{"c", "missing"})
	require.NoError(t, err, "Update")
	got, err := h.s.Load(h.ctx, r.ID)
	require.NoError(t, err, "Load after Update")
	h.requireSame(want, got, false, "Load after Update")
	h.requireActivity(got.LastActivity, at, idle, "Load after Update 10 minutes ahead")

	require.NoError(t, h.s.Update(h.ctx, r.ID, time.Now(), nil, nil), "Update with nothing to change")
	require.NoError(t, h.s.Update(h.ctx, r.ID, time.Now(), nil, []string{"a"}), "Update deleting only")
	require.NoError(t, h.s.Update(h.ctx, r.ID, time.Now(), map[string][]byte{"f": str("F")}, nil), "Update setting only")
	delete(want.Values, "a")
	want.Values["f"] = str("F")
	got, err = h.s.Load(h.ctx, r.ID)
	require.NoError(t, err, "Load after Updates")
	h.requireSame(want, got, false, "Load after Updates")

	other := h.create(h.rec("alice"))
	got, err = h.s.Load(h.ctx, other.ID)
	require.NoError(t, err, "Load")
	h.requireSame(other, got, true, "another record of the user after Updates")
}

func testUpdateNeverResurrects(h *harness) {
	t := h.t
	r := h.create(h.rec("alice"))
	other := h.create(h.rec("bob"))
	_, err := h.delete(r.ID)
	require.NoError(t, err, "Delete")

	err = h.s.Update(h.ctx, r.ID, time.Now(), map[string][]byte{"greeting": str("back?")}, []string{"lang"})
	requireNotFound(t, err, "Update of a deleted session")
	h.requireGone(r, "after Update of a deleted session")
	h.requireCount(1, 1, "after Update of a deleted session")
	_, err = h.delete(r.ID)
	requireNotFound(t, err, "Delete after Update of a deleted session")
	require.Empty(t, h.describe(h.deleteUser("alice")), "DeleteUser after Update of a deleted session")

	e := h.create(h.rec("carol", idleExpired))
	err = h.s.Update(h.ctx, e.ID, time.Now(), map[string][]byte{"greeting": str("back?")}, []string{"lang"})
	requireNotFound(t, err, "Update of an expired session")
	h.requireCount(1, 1, "after Update of an expired session")

	// Nothing left behind: claiming everything that will ever expire finds
	// only the records really there, the expired one unchanged.
	pending := h.notEnded([]sessions.Record{other, e})
	got := h.drainExpired(time.Now().Add(48*time.Hour), 100)
	h.requireSameSet(pending, got, true, "Expired far in the future")
	h.requireEndedOnce([]sessions.Record{e}, true, "the expired record Update was given")
	h.requireCount(0, 0, "after claiming everything")
}

func testDeleteOnce(h *harness) {
	t := h.t
	r := h.create(h.rec("alice"))
	other := h.create(h.rec("alice"))
	got, err := h.delete(r.ID)
	require.NoError(t, err, "Delete")
	h.requireSame(r, got, true, "Delete")
	_, err = h.delete(r.ID)
	requireNotFound(t, err, "second Delete")
	h.requireGone(r, "after Delete")
	_, err = h.s.Activate(h.ctx, r.ID, time.Now())
	requireNotFound(t, err, "Activate after Delete")
	_, err = h.s.Load(h.ctx, other.ID)
	require.NoError(t, err, "Load of the user's other record after Delete")
	h.requireCount(1, 1, "after Delete")

	e := h.create(h.rec("bob", idleExpired))
	_, err = h.delete(e.ID)
	requireNotFound(t, err, "Delete of an expired record")
	h.drainExpired(time.Now(), 10)
	h.requireEndedOnce([]sessions.Record{e}, true, "an expired record Delete was given")
}

func testDeleteUser(h *harness) {
	t := h.t
	alice := h.createN(3, "alice")
	aliceExpired := h.create(h.rec("alice", idleExpired))
	bob := h.createN(2, "bob")
	anon := h.create(h.rec(""))

	h.requireSameSet(alice, h.deleteUser("alice"), true, "DeleteUser")
	require.Empty(t, h.describe(h.deleteUser("alice")), "second DeleteUser")
	require.Empty(t, h.describe(h.deleteUser("nobody")), "DeleteUser of a user with no sessions")
	for _, r := range alice {
		h.requireGone(r, "after DeleteUser")
	}
	h.requireSameSet(bob, h.userSessions("bob"), true, "UserSessions of another user after DeleteUser")
	_, err := h.s.Load(h.ctx, anon.ID)
	require.NoError(t, err, "Load of an anonymous record after DeleteUser")
	h.requireCount(3, 1, "after DeleteUser")

	h.drainExpired(time.Now(), 10)
	h.requireEndedOnce([]sessions.Record{aliceExpired}, true, "the user's expired record")
}

func testUserSessionsAndAll(h *harness) {
	t := h.t
	require.Empty(t, h.describe(h.all()), "All on an empty store")
	alice := h.createN(3, "alice")
	h.create(h.rec("alice", idleExpired))
	h.create(h.rec("alice", absoluteExpired))
	bob := h.createN(2, "bob")
	anon := h.createN(2, "")
	h.create(h.rec("", idleExpired))

	h.requireSameSet(alice, h.userSessions("alice"), true, "UserSessions")
	h.requireSameSet(bob, h.userSessions("bob"), true, "UserSessions")
	require.Empty(t, h.describe(h.userSessions("nobody")), "UserSessions of a user with no sessions")
	h.requireSameSet(append(append(alice, bob...), anon...), h.all(), true, "All")
}

func testCount(h *harness) {
	t := h.t
	h.requireCount(0, 0, "empty store")
	h.createN(2, "alice")
	h.create(h.rec("bob"))
	h.create(h.rec("bob", idleExpired))
	h.create(h.rec("carol", idleExpired))
	h.create(h.rec("dave", absoluteExpired))
	h.createN(2, "")
	h.create(h.rec("", absoluteExpired))
	h.requireCount(5, 2, "live records of two users and two anonymous ones")

	now := time.Now()
	h.create(h.rec("erin", idleDeadline(30*time.Minute, now.Add(10*time.Minute))))
	h.requireCount(6, 3, "after adding a record of a third user")
	n, u, err := h.s.Count(h.ctx, now.Add(20*time.Minute))
	require.NoError(t, err, "Count")
	require.Equal(t, []int{5, 2}, []int{n, u}, "Count at a time after one record's deadline: sessions, users")
	n, u, err = h.s.Count(h.ctx, now.Add(2*time.Hour))
	require.NoError(t, err, "Count")
	require.Equal(t, []int{0, 0}, []int{n, u}, "Count at a time after every deadline: sessions, users")
}

func testAnonymousNotLimited(h *harness) {
	t := h.t
	for _, policy := range []sessions.LimitPolicy{sessions.EvictOldest, sessions.RejectNew} {
		for range 4 {
			removed, err := h.createLimited(h.rec(""), 1, policy)
			require.NoError(t, err, "Create of an anonymous record with limit 1, policy %d", policy)
			require.Empty(t, removed, "Create of an anonymous record with limit 1 removed records")
		}
	}
	h.requireCount(8, 0, "anonymous records")
	require.Len(t, h.all(), 8, "All")
}

func testLimitEvictOldest(h *harness) {
	t := h.t
	now := time.Now()
	o30 := h.create(h.rec("alice", activeAt(now.Add(-30*time.Minute))))
	o10 := h.create(h.rec("alice", activeAt(now.Add(-10*time.Minute))))
	o20 := h.create(h.rec("alice", activeAt(now.Add(-20*time.Minute))))
	bob := h.create(h.rec("bob", activeAt(now.Add(-50*time.Minute))))
	anon := h.create(h.rec("", activeAt(now.Add(-55*time.Minute))))

	n1 := h.rec("alice", activeAt(now.Add(-time.Minute)))
	removed, err := h.createLimited(n1, 3, sessions.EvictOldest)
	require.NoError(t, err, "Create at the limit with EvictOldest")
	h.requireSameSet([]sessions.Record{o30}, removed, true, "records Create evicted at limit 3")
	h.requireSameSet([]sessions.Record{o10, o20, n1}, h.userSessions("alice"), true, "UserSessions after eviction")

	n2 := h.rec("alice")
	removed, err = h.createLimited(n2, 2, sessions.EvictOldest)
	require.NoError(t, err, "Create above the limit with EvictOldest")
	h.requireSameSet([]sessions.Record{o20, o10}, removed, true, "records Create evicted at limit 2 with 3 live")
	h.requireSameSet([]sessions.Record{n1, n2}, h.userSessions("alice"), true, "UserSessions after eviction")

	n3 := h.rec("alice")
	removed, err = h.createLimited(n3, 1, sessions.EvictOldest)
	require.NoError(t, err, "Create with limit 1 and EvictOldest")
	h.requireSameSet([]sessions.Record{n1, n2}, removed, true, "records Create evicted at limit 1")
	h.requireSameSet([]sessions.Record{n3}, h.userSessions("alice"), true, "UserSessions after eviction")

	for _, r := range []sessions.Record{o30, o20, o10, n1, n2} {
		h.requireGone(r, "after eviction")
	}
	for _, r := range []sessions.Record{bob, anon} {
		got, err := h.s.Load(h.ctx, r.ID)
		require.NoError(t, err, "Load of a record of another user after eviction")
		h.requireSame(r, got, true, "Load of a record of another user after eviction")
	}
	h.requireCount(3, 2, "after eviction")
}

func testLimitRejectNew(h *harness) {
	t := h.t
	alice := h.createN(3, "alice")
	n := h.rec("alice")
	removed, err := h.createLimited(n, 3, sessions.RejectNew)
	require.ErrorIs(t, err, sessions.ErrLimitReached, "Create at the limit with RejectNew")
	require.Empty(t, removed, "Create rejected at the limit removed records")
	h.requireGone(n, "after a rejected Create")
	h.requireSameSet(alice, h.userSessions("alice"), true, "UserSessions after a rejected Create")
	h.requireCount(3, 1, "after a rejected Create")

	removed, err = h.createLimited(n, 4, sessions.RejectNew)
	require.NoError(t, err, "Create below the limit with RejectNew")
	require.Empty(t, removed, "Create below the limit removed records")
	h.requireSameSet(append(alice, n), h.userSessions("alice"), true, "UserSessions")

	bob := h.rec("bob")
	_, err = h.createLimited(bob, 1, sessions.RejectNew)
	require.NoError(t, err, "Create of another user's first record with limit 1")
	_, err = h.createLimited(h.rec("bob"), 1, sessions.RejectNew)
	require.ErrorIs(t, err, sessions.ErrLimitReached, "Create of another user's second record with limit 1")
	h.requireSameSet([]sessions.Record{bob}, h.userSessions("bob"), true, "UserSessions")
	h.requireCount(5, 2, "after rejected Creates")
}

func testNoLimit(h *harness) {
	t := h.t
	for _, limit := range []int{0, -1} {
		for _, policy := range []sessions.LimitPolicy{sessions.EvictOldest, sessions.RejectNew} {
			user := uuid.NewString()
			for range 6 {
				removed, err := h.createLimited(h.rec(user), limit, policy)
				require.NoError(t, err, "Create with limit %d, policy %d", limit, policy)
				require.Empty(t, removed, "Create with limit %d removed live records", limit)
			}
			require.Len(t, h.userSessions(user), 6, "UserSessions after 6 Creates with limit %d", limit)
		}
	}
	h.requireCount(24, 4, "after Creates with no limit")
}

// testLimitClearsExpiredFirst checks that Create clears the user's expired
// records (and reports them) before it counts the user's records.
func testLimitClearsExpiredFirst(h *harness) {
	t := h.t
	now := time.Now()
	for _, policy := range []sessions.LimitPolicy{sessions.EvictOldest, sessions.RejectNew} {
		// Room once the expired records are cleared: nothing live is evicted.
		user := uuid.NewString()
		live := []sessions.Record{
			h.create(h.rec(user, activeAt(now.Add(-30*time.Minute)))),
			h.create(h.rec(user, activeAt(now.Add(-10*time.Minute)))),
		}
		expired := []sessions.Record{
			h.create(h.rec(user, idleExpired)),
			h.create(h.rec(user, absoluteExpired)),
		}
		pending := h.notEnded(expired)
		n := h.rec(user)
		removed, err := h.createLimited(n, 3, policy)
		require.NoError(t, err, "Create at the limit counting expired records, policy %d", policy)
		h.requireSameSet(pending, removed, true, fmt.Sprintf("records Create removed (policy %d)", policy))
		h.requireEndedOnce(expired, true, "the user's expired records")
		h.requireSameSet(append(live, n), h.userSessions(user), true, "UserSessions")

		// No room even then: EvictOldest also evicts the oldest live
		// record; RejectNew adds nothing.
		user = uuid.NewString()
		live = []sessions.Record{
			h.create(h.rec(user, activeAt(now.Add(-30*time.Minute)))),
			h.create(h.rec(user, activeAt(now.Add(-10*time.Minute)))),
			h.create(h.rec(user, activeAt(now.Add(-20*time.Minute)))),
		}
		expired = []sessions.Record{h.create(h.rec(user, idleExpired))}
		n = h.rec(user)
		removed, err = h.createLimited(n, 3, policy)
		if policy == sessions.EvictOldest {
			require.NoError(t, err, "Create at the limit with EvictOldest")
			h.requireSameSet([]sessions.Record{expired[0], live[0]}, removed, true, "records Create removed")
			h.requireSameSet([]sessions.Record{live[1], live[2], n}, h.userSessions(user), true, "UserSessions")
			continue
		}
		require.ErrorIs(t, err, sessions.ErrLimitReached, "Create at the limit with RejectNew")
		for _, r := range removed {
			require.Equal(t, expired[0].ID, h.id(r), "Create rejected at the limit removed a live record")
		}
		h.requireSameSet(live, h.userSessions(user), true, "UserSessions after a rejected Create")
		h.requireGone(n, "after a rejected Create")
		h.drainExpired(time.Now(), 10)
		h.requireEndedOnce(expired, true, "the user's expired record")
	}
	// What Create cleared is not reported again.
	require.Empty(t, h.describe(h.drainExpired(time.Now(), 10)), "Expired after Create cleared the expired records")
}
