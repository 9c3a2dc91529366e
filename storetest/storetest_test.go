package storetest

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// The suite is checked against refStore, a plain store that keeps every
// promise, and against refStore with one bug planted (a mutant): the suite
// must pass the first and fail each mutant in the subtest named for it.

// mutantEnv names the bug a child process plants in refStore.
const mutantEnv = "STORETEST_MUTANT"

const refLease = 150 * time.Millisecond

func TestReferenceStore(t *testing.T) {
	bug := os.Getenv(mutantEnv)
	Run(t, func(t *testing.T) sessions.Store { return newRefStore(bug, 10*time.Second) })
}

func TestReferenceStoreLease(t *testing.T) {
	bug := os.Getenv(mutantEnv)
	RunLease(t, func(t *testing.T) sessions.Store { return newRefStore(bug, refLease) }, refLease)
}

func TestSuiteCatchesBrokenStores(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Fatalf("%s is set: run only in a child process", mutantEnv)
	}
	mutants := []struct{ bug, test string }{
		{"shareValues", "TestReferenceStore/RecordsAreValues"},
		{"loadExpired", "TestReferenceStore/ExpiresOnTime"},
		{"allExpired", "TestReferenceStore/UserSessionsAndAll"},
		{"noClear", "TestReferenceStore/LimitClearsExpiredFirst"},
		{"noLimit", "TestReferenceStore/LimitRejectNew"},
		{"evictNewest", "TestReferenceStore/LimitEvictOldest"},
		{"racyLimit", "TestReferenceStore/ConcurrentCreatesEvictOldest"},
		{"noActivity", "TestReferenceStore/ActivateExtendsDeadline"},
		{"activityBack", "TestReferenceStore/ActivateNeverMovesBack"},
		{"resurrect", "TestReferenceStore/UpdateNeverResurrects"},
		{"updateClears", "TestReferenceStore/UpdateSetsAndDeletes"},
		{"deleteKeeps", "TestReferenceStore/DeleteOnce"},
		{"deleteUserExpired", "TestReferenceStore/DeleteUser"},
		{"expiredKeeps", "TestReferenceStore/ExpiredClaims"},
		{"ignoreMax", "TestReferenceStore/ExpiredHonoursMax"},
		{"racyExpired", "TestReferenceStore/ExpiredConcurrentClaimers"},
		{"countAnon", "TestReferenceStore/Count"},
		{"leaseEarly", "TestReferenceStoreLease/ClaimRedeliveredAfterLease"},
		{"noRedeliver", "TestReferenceStoreLease/ClaimRedeliveredAfterLease"},
		{"ackIgnored", "TestReferenceStoreLease/ClaimRedeliveredAfterLease"},
		{"sameToken", "TestReferenceStoreLease/StaleClaimIgnored"},
		{"ackStale", "TestReferenceStoreLease/StaleClaimIgnored"},
		{"noExtend", "TestReferenceStoreLease/ExtendKeepsClaim"},
		{"extendLies", "TestReferenceStoreLease/StaleClaimIgnored"},
	}
	for _, m := range mutants {
		t.Run(m.bug, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^"+m.test+"$", "-test.count=1")
			cmd.Env = append(os.Environ(), mutantEnv+"="+m.bug)
			out, err := cmd.CombinedOutput()
			require.Error(t, err, "the suite passed a store with bug %s:\n%s", m.bug, out)
			require.Contains(t, string(out), "--- FAIL: "+m.test+" ", "the suite failed elsewhere for bug %s:\n%s", m.bug, out)
		})
	}
}

// refStore is a Store kept in a map under one lock. bug plants one bug.
type refStore struct {
	bug   string
	lease time.Duration

	mu      sync.Mutex
	recs    map[string]sessions.Record
	claimed map[string]refClaim
}

type refClaim struct {
	rec   sessions.Record
	token string
	until time.Time
}

func newRefStore(bug string, lease time.Duration) *refStore {
	return &refStore{bug: bug, lease: lease, recs: make(map[string]sessions.Record), claimed: make(map[string]refClaim)}
}

func (s *refStore) copy(r sessions.Record) sessions.Record {
	if s.bug != "shareValues" {
		r.Values = maps.Clone(r.Values)
	}
	return r
}

func (s *refStore) live(id string) (sessions.Record, bool) {
	r, ok := s.recs[id]
	if !ok || r.Expired(time.Now()) && s.bug != "loadExpired" {
		return sessions.Record{}, false
	}
	return r, true
}

func (s *refStore) Create(_ context.Context, rec sessions.Record, limit int, policy sessions.LimitPolicy) ([]sessions.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var removed []sessions.Record
	if rec.UserID != "" && limit > 0 {
		var mine []sessions.Record
		for id, r := range s.recs {
			switch {
			case r.UserID != rec.UserID:
			case r.Expired(time.Now()) && s.bug != "noClear":
				delete(s.recs, id)
				removed = append(removed, s.copy(r))
			default:
				mine = append(mine, r)
			}
		}
		if len(mine) >= limit && s.bug != "noLimit" {
			if policy == sessions.RejectNew {
				return removed, sessions.ErrLimitReached
			}
			sort.Slice(mine, func(i, j int) bool {
				return mine[i].LastActivity.Before(mine[j].LastActivity) != (s.bug == "evictNewest")
			})
			for _, r := range mine[:len(mine)-limit+1] {
				delete(s.recs, r.ID)
				removed = append(removed, s.copy(r))
			}
		}
	}
	if s.bug == "racyLimit" {
		s.mu.Unlock()
		runtime.Gosched()
		s.mu.Lock()
		for _, r := range removed {
			delete(s.recs, r.ID)
		}
	}
	s.recs[rec.ID] = s.copy(rec)
	return removed, nil
}

func (s *refStore) Load(_ context.Context, id string) (sessions.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.live(id)
	if !ok {
		return r, sessions.ErrNotFound
	}
	return s.copy(r), nil
}

func (s *refStore) Activate(_ context.Context, id string, at time.Time) (sessions.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.live(id)
	if !ok {
		return r, sessions.ErrNotFound
	}
	if (at.After(r.LastActivity) || s.bug == "activityBack") && s.bug != "noActivity" {
		r.LastActivity = at
		s.recs[id] = r
	}
	r = s.copy(r)
	r.LastActivity = at
	return r, nil
}

func (s *refStore) Update(_ context.Context, id string, at time.Time, set map[string][]byte, del []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.live(id)
	if !ok {
		if s.bug == "resurrect" {
			s.recs[id] = sessions.Record{ID: id, Values: maps.Clone(set)}
		}
		return sessions.ErrNotFound
	}
	r = s.copy(r)
	if r.Values == nil || s.bug == "updateClears" {
		r.Values = make(map[string][]byte)
	}
	for _, k := range del {
		delete(r.Values, k)
	}
	maps.Copy(r.Values, set)
	if at.After(r.LastActivity) {
		r.LastActivity = at
	}
	s.recs[id] = r
	return nil
}

func (s *refStore) Delete(_ context.Context, id string) (sessions.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.live(id)
	if !ok {
		return r, sessions.ErrNotFound
	}
	if s.bug != "deleteKeeps" {
		delete(s.recs, id)
	}
	return s.copy(r), nil
}

func (s *refStore) DeleteUser(_ context.Context, user string) ([]sessions.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sessions.Record
	for id, r := range s.recs {
		if r.UserID == user && (!r.Expired(time.Now()) || s.bug == "deleteUserExpired") {
			delete(s.recs, id)
			out = append(out, s.copy(r))
		}
	}
	return out, nil
}

func (s *refStore) UserSessions(_ context.Context, user string) ([]sessions.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sessions.Record
	for _, r := range s.recs {
		if r.UserID == user && !r.Expired(time.Now()) {
			out = append(out, s.copy(r))
		}
	}
	return out, nil
}

func (s *refStore) All(_ context.Context) ([]sessions.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sessions.Record
	for _, r := range s.recs {
		if !r.Expired(time.Now()) || s.bug == "allExpired" {
			out = append(out, s.copy(r))
		}
	}
	return out, nil
}

func (s *refStore) Expired(_ context.Context, now time.Time, max int) ([]sessions.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bug == "ignoreMax" {
		max = 1 << 30
	}
	var out []sessions.Record
	for id, c := range s.claimed {
		if len(out) < max && s.bug != "noRedeliver" && (!c.until.After(now) || s.bug == "leaseEarly") {
			c.until = now.Add(s.lease)
			if s.bug != "sameToken" {
				c.token = id + "/" + uuid.NewString()
			}
			s.claimed[id] = c
			out = append(out, s.claim(c))
		}
	}
	var claim []sessions.Record
	for _, r := range s.recs {
		if len(out)+len(claim) < max && r.Expired(now) {
			claim = append(claim, r)
		}
	}
	if s.bug == "racyExpired" {
		s.mu.Unlock()
		runtime.Gosched()
		s.mu.Lock()
	}
	for _, r := range claim {
		if s.bug != "expiredKeeps" {
			delete(s.recs, r.ID)
		}
		c := refClaim{rec: r, token: r.ID + "/" + uuid.NewString(), until: now.Add(s.lease)}
		s.claimed[r.ID] = c
		out = append(out, s.claim(c))
	}
	return out, nil
}

// claim returns the record of a claim as Expired hands it out.
func (s *refStore) claim(c refClaim) sessions.Record {
	r := s.copy(c.rec)
	r.Claim, r.LeaseEnd = c.token, c.until
	return r
}

// held returns the ID of the record claimed under token.
func (s *refStore) held(token string) (string, bool) {
	for id, c := range s.claimed {
		if c.token == token || (s.bug == "ackStale" && c.rec.ID == strings.SplitN(token, "/", 2)[0]) {
			return id, true
		}
	}
	return "", false
}

func (s *refStore) Extend(_ context.Context, claims []string, now time.Time) ([]string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	until := now.Add(s.lease)
	var held []string
	for _, token := range claims {
		id, ok := s.held(token)
		if ok && s.bug != "noExtend" {
			c := s.claimed[id]
			c.until = until
			s.claimed[id] = c
		}
		if ok || s.bug == "extendLies" {
			held = append(held, token)
		}
	}
	return held, until, nil
}

func (s *refStore) Ack(_ context.Context, claims []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bug != "ackIgnored" {
		for _, token := range claims {
			if id, ok := s.held(token); ok {
				delete(s.claimed, id)
			}
		}
	}
	return nil
}

func (s *refStore) Count(_ context.Context, now time.Time) (int, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, users := 0, make(map[string]bool)
	for _, r := range s.recs {
		if !r.Expired(now) {
			n++
			if r.UserID != "" || s.bug == "countAnon" {
				users[r.UserID] = true
			}
		}
	}
	return n, len(users), nil
}
