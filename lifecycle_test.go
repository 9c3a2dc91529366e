package sessions_test

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tokyopredictor/sessions"
)

// waitFor is how long a test polls for something that should happen soon.
const waitFor = 5 * time.Second

// poll is how often it polls.
const poll = 2 * time.Millisecond

// eventLog records the termination events a manager's hooks receive.
type eventLog struct {
	mu  sync.Mutex
	evs []sessions.Event
}

func (l *eventLog) hook(ev sessions.Event) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

func (l *eventLog) events() []sessions.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs)
}

func (l *eventLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.evs)
}

// of returns the events for session id.
func (l *eventLog) of(id string) []sessions.Event {
	var out []sessions.Event
	for _, ev := range l.events() {
		if ev.SessionID == id {
			out = append(out, ev)
		}
	}
	return out
}

// reasons counts the events by reason.
func (l *eventLog) reasons() map[sessions.Reason]int {
	out := make(map[sessions.Reason]int)
	for _, ev := range l.events() {
		out[ev.Reason]++
	}
	return out
}

// waitEvent waits for the one event of session id and checks its reason.
func (l *eventLog) waitEvent(t *testing.T, id string, want sessions.Reason) sessions.Event {
	t.Helper()
	require.Eventually(t, func() bool { return len(l.of(id)) > 0 }, waitFor, poll,
		"no termination event for the session (want %v)", want)
	evs := l.of(id)
	require.Len(t, evs, 1, "events for one session")
	require.Equal(t, want, evs[0].Reason)
	return evs[0]
}

// quiet is a logger for managers whose logs a test does not read.
func quiet() sessions.Option { return sessions.WithLogger(slog.New(slog.DiscardHandler)) }

// startManager returns a manager closed at the end of the test, with an
// eventLog registered as its first hook.
func startManager(t testing.TB, cfg sessions.Config, opts ...sessions.Option) (*sessions.Manager, *eventLog) {
	t.Helper()
	m, err := sessions.NewManager(cfg, append([]sessions.Option{quiet()}, opts...)...)
	require.NoError(t, err)
	log := &eventLog{}
	m.OnTerminate(log.hook)
	t.Cleanup(func() { assert.NoError(t, m.Close()) })
	return m, log
}

// checkNoLeaks makes the test fail if, once it and its cleanups are done,
// a goroutine it started is still running. Call it first: cleanups run in
// reverse order, so this check runs after every Close.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// waitPast waits until the clock has passed at.
func waitPast(t *testing.T, at time.Time) {
	t.Helper()
	require.Eventually(t, func() bool { return time.Now().After(at) }, waitFor+time.Until(at), poll)
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func ids(ss []*sessions.Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID()
	}
	slices.Sort(out)
	return out
}

func sortedIDs(id ...string) []string {
	out := slices.Clone(id)
	slices.Sort(out)
	return out
}

var ctx = context.Background()

func TestNewManagerRejectsInvalidConfig(t *testing.T) {
	checkNoLeaks(t)
	key := bytes.Repeat([]byte{1}, 32)
	for name, cfg := range map[string]sessions.Config{
		"negative IdleTimeout":     {IdleTimeout: -time.Second},
		"negative AbsoluteTimeout": {AbsoluteTimeout: -time.Second},
		"negative CleanupInterval": {CleanupInterval: -time.Second},
		"negative Cookie.MaxAge":   {Cookie: sessions.CookieConfig{MaxAge: -time.Second}},
		"MaxSessionsPerUser -2":    {MaxSessionsPerUser: -2},
		"unknown LimitPolicy":      {LimitPolicy: 7},
		"16-byte key":              {Keys: [][]byte{make([]byte, 16)}},
		"second key 31 bytes":      {Keys: [][]byte{key, make([]byte, 31)}},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := sessions.NewManager(cfg, quiet())
			require.Error(t, err)
			require.Nil(t, m)
			require.ErrorIs(t, err, sessions.ErrInvalidConfig)
		})
	}
	t.Run("shared store without keys", func(t *testing.T) {
		m, err := sessions.NewManager(sessions.Config{}, quiet(),
			sessions.WithStore(&countingStore{inner: sessions.NewMemoryStore()}))
		require.Error(t, err)
		require.Nil(t, m)
	})
	t.Run("64-byte keys and rotation are fine", func(t *testing.T) {
		_, _ = startManager(t, sessions.Config{Keys: [][]byte{bytes.Repeat([]byte{2}, 64), key}})
	})
}

func TestCreateAndGet(t *testing.T) {
	checkNoLeaks(t)
	m, _ := startManager(t, sessions.Config{DisableAutoCleanup: true})

	data := map[string]any{"rol": "admin", "saldo": 1000}
	before := time.Now()
	s, err := m.Create(ctx, "usuario_001", data)
	require.NoError(t, err)
	data["rol"] = "changed after Create" // the session holds a copy

	id, err := uuid.Parse(s.ID())
	require.NoError(t, err)
	assert.Equal(t, uuid.Version(4), id.Version())
	assert.Equal(t, uuid.RFC4122, id.Variant())
	assert.Equal(t, id.String(), s.ID(), "the ID is the canonical text form")
	assert.Equal(t, "usuario_001", s.UserID())
	assert.True(t, s.Active())
	assert.False(t, s.CreatedAt().Before(before))
	assert.False(t, s.CreatedAt().After(time.Now()))
	assert.Equal(t, s.CreatedAt(), s.LastActivity())
	assert.Equal(t, map[string]any{"rol": "admin", "saldo": 1000}, s.Data())

	got, err := m.Get(ctx, s.ID())
	require.NoError(t, err)
	assert.Equal(t, s.ID(), got.ID())
	assert.Equal(t, "usuario_001", got.UserID())
	assert.Equal(t, s.CreatedAt(), got.CreatedAt())
	assert.Equal(t, map[string]any{"rol": "admin", "saldo": 1000}, got.Data())
	assert.Equal(t, s.LastActivity(), got.LastActivity(), "Get records no activity")

	// A change is visible at once on the memory store.
	s.Set("saldo", 950)
	v, ok := got.Get("saldo")
	require.True(t, ok)
	assert.Equal(t, 950, v)

	t.Run("nil data", func(t *testing.T) {
		s, err := m.Create(ctx, "u", nil)
		require.NoError(t, err)
		assert.NotNil(t, s.Data())
		assert.Empty(t, s.Data())
	})
	t.Run("IDs are unique", func(t *testing.T) {
		seen := make(map[string]bool)
		for range 500 {
			s, err := m.Create(ctx, "", nil)
			require.NoError(t, err)
			require.False(t, seen[s.ID()], "duplicate ID")
			seen[s.ID()] = true
		}
	})
}

func TestGetUnknownOrMalformedID(t *testing.T) {
	checkNoLeaks(t)
	m, _ := startManager(t, sessions.Config{DisableAutoCleanup: true})
	s, err := m.Create(ctx, "alice", nil)
	require.NoError(t, err)
	for _, id := range []string{
		"", "x", "not-a-uuid", s.ID() + "0", s.ID()[1:], "{" + s.ID() + "}",
		"urn:uuid:" + s.ID(), uuid.NewString(), "00000000-0000-0000-0000-000000000000",
		"zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", string(make([]byte, 36)), "é" + s.ID()[2:],
	} {
		_, err := m.Get(ctx, id)
		assert.ErrorIs(t, err, sessions.ErrNotFound, "Get(%q)", id)
		assert.ErrorIs(t, m.Touch(ctx, id), sessions.ErrNotFound, "Touch(%q)", id)
		assert.ErrorIs(t, m.Terminate(ctx, id), sessions.ErrNotFound, "Terminate(%q)", id)
	}
	_, err = m.Get(ctx, s.ID())
	require.NoError(t, err, "the live session is untouched")
}

func TestTouch(t *testing.T) {
	checkNoLeaks(t)
	m, _ := startManager(t, sessions.Config{DisableAutoCleanup: true})
	s, err := m.Create(ctx, "alice", nil)
	require.NoError(t, err)
	created := s.LastActivity()

	waitPast(t, created)
	require.NoError(t, m.Touch(ctx, s.ID()))
	assert.True(t, s.LastActivity().After(created), "Manager.Touch records activity")
	got, err := m.Get(ctx, s.ID())
	require.NoError(t, err)
	assert.Equal(t, s.LastActivity(), got.LastActivity())
	assert.Equal(t, created, s.CreatedAt(), "CreatedAt never moves")

	last := s.LastActivity()
	waitPast(t, last)
	s.Touch()
	assert.True(t, s.LastActivity().After(last), "Session.Touch records activity")

	require.NoError(t, m.Terminate(ctx, s.ID()))
	assert.ErrorIs(t, m.Touch(ctx, s.ID()), sessions.ErrNotFound, "Touch of an ended session")
}

func TestUserSessionsAndAll(t *testing.T) {
	checkNoLeaks(t)
	m, _ := startManager(t, sessions.Config{DisableAutoCleanup: true})
	create := func(user string) *sessions.Session {
		s, err := m.Create(ctx, user, nil)
		require.NoError(t, err)
		return s
	}
	a1, a2, b1, anon := create("alice"), create("alice"), create("bob"), create("")

	got, err := m.UserSessions(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, sortedIDs(a1.ID(), a2.ID()), ids(got))
	for _, s := range got {
		assert.Equal(t, "alice", s.UserID())
	}

	got, err = m.UserSessions(ctx, "nobody")
	require.NoError(t, err)
	assert.Empty(t, got)

	all, err := m.All(ctx)
	require.NoError(t, err)
	assert.Equal(t, sortedIDs(a1.ID(), a2.ID(), b1.ID(), anon.ID()), ids(all))

	require.NoError(t, m.Terminate(ctx, a1.ID()))
	got, err = m.UserSessions(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, []string{a2.ID()}, ids(got))
	all, err = m.All(ctx)
	require.NoError(t, err)
	assert.Equal(t, sortedIDs(a2.ID(), b1.ID(), anon.ID()), ids(all))
}

func TestTerminate(t *testing.T) {
	checkNoLeaks(t)
	m, log := startManager(t, sessions.Config{DisableAutoCleanup: true})
	s, err := m.Create(ctx, "alice", map[string]any{"token": "t-1"})
	require.NoError(t, err)
	s.Set("saldo", 1000)
	other, err := m.Create(ctx, "alice", nil)
	require.NoError(t, err)

	before := time.Now()
	require.NoError(t, m.Terminate(ctx, s.ID()))
	assert.False(t, s.Active())
	_, err = m.Get(ctx, s.ID())
	assert.ErrorIs(t, err, sessions.ErrNotFound)
	assert.ErrorIs(t, m.Terminate(ctx, s.ID()), sessions.ErrNotFound, "a second Terminate")
	_, err = m.Get(ctx, other.ID())
	assert.NoError(t, err, "the user's other session lives on")

	ev := log.waitEvent(t, s.ID(), sessions.ReasonTerminated)
	assert.Equal(t, "alice", ev.UserID)
	assert.Equal(t, s.CreatedAt(), ev.CreatedAt)
	assert.Equal(t, s.LastActivity(), ev.LastActivity)
	assert.Equal(t, map[string]any{"token": "t-1", "saldo": 1000}, ev.Data)
	assert.False(t, ev.At.Before(before))

	require.NoError(t, m.Close())
	assert.Len(t, log.of(s.ID()), 1, "one event, whatever else happens")
}

func TestTerminateUser(t *testing.T) {
	checkNoLeaks(t)
	m, log := startManager(t, sessions.Config{DisableAutoCleanup: true})
	var alice []string
	for range 3 {
		s, err := m.Create(ctx, "alice", nil)
		require.NoError(t, err)
		alice = append(alice, s.ID())
	}
	bob, err := m.Create(ctx, "bob", nil)
	require.NoError(t, err)

	n, err := m.TerminateUser(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	got, err := m.UserSessions(ctx, "alice")
	require.NoError(t, err)
	assert.Empty(t, got)
	_, err = m.Get(ctx, bob.ID())
	assert.NoError(t, err, "other users keep their sessions")
	for _, id := range alice {
		log.waitEvent(t, id, sessions.ReasonTerminated)
	}

	n, err = m.TerminateUser(ctx, "alice")
	assert.NoError(t, err)
	assert.Equal(t, 0, n, "no sessions left")
	n, err = m.TerminateUser(ctx, "nobody")
	assert.NoError(t, err)
	assert.Equal(t, 0, n, "a user with no sessions")

	st := m.Stats()
	assert.Equal(t, 1, st.ActiveSessions)
	assert.Equal(t, 1, st.UniqueUsers)
}

func TestIdleExpiry(t *testing.T) {
	const idle = 100 * time.Millisecond

	t.Run("without the sweeper", func(t *testing.T) {
		checkNoLeaks(t)
		m, log := startManager(t, sessions.Config{IdleTimeout: idle, DisableAutoCleanup: true})
		assert.False(t, m.Stats().AutoCleanup)
		a, err := m.Create(ctx, "alice", map[string]any{"k": "v"})
		require.NoError(t, err)
		b, err := m.Create(ctx, "alice", nil)
		require.NoError(t, err)
		anon, err := m.Create(ctx, "", nil)
		require.NoError(t, err)
		last := anon.LastActivity()

		// Exact for readers: once the idle deadline has passed, no method
		// returns the session, though no sweep has run.
		waitPast(t, last.Add(idle))
		for _, s := range []*sessions.Session{a, b, anon} {
			_, err := m.Get(ctx, s.ID())
			assert.ErrorIs(t, err, sessions.ErrNotFound)
			assert.ErrorIs(t, m.Touch(ctx, s.ID()), sessions.ErrNotFound)
			assert.False(t, s.Active())
			assert.GreaterOrEqual(t, s.IdleFor(), idle)
		}
		got, err := m.UserSessions(ctx, "alice")
		require.NoError(t, err)
		assert.Empty(t, got)
		all, err := m.All(ctx)
		require.NoError(t, err)
		assert.Empty(t, all)
		st := m.Stats()
		assert.Equal(t, 0, st.ActiveSessions, "expired sessions are not counted")
		assert.Equal(t, 0, st.UniqueUsers)
		n, err := m.TerminateUser(ctx, "nobody")
		require.NoError(t, err)
		assert.Zero(t, n)
		assert.Zero(t, log.len(), "nothing ends them before a sweep")

		n, err = m.Cleanup(ctx)
		require.NoError(t, err)
		assert.Equal(t, 3, n)
		// Cleanup returns once the hooks have run.
		for _, s := range []*sessions.Session{a, b, anon} {
			evs := log.of(s.ID())
			require.Len(t, evs, 1)
			assert.Equal(t, sessions.ReasonIdle, evs[0].Reason)
			assert.Equal(t, s.UserID(), evs[0].UserID)
		}
		assert.Equal(t, map[string]any{"k": "v"}, log.of(a.ID())[0].Data)

		n, err = m.Cleanup(ctx)
		require.NoError(t, err)
		assert.Zero(t, n, "a second sweep finds nothing")
		require.NoError(t, m.Close())
		assert.Equal(t, 3, log.len(), "Close ends nothing twice")
	})

	t.Run("the deadline is exact", func(t *testing.T) {
		checkNoLeaks(t)
		const idle = 300 * time.Millisecond
		m, _ := startManager(t, sessions.Config{IdleTimeout: idle, DisableAutoCleanup: true})
		s, err := m.Create(ctx, "alice", nil)
		require.NoError(t, err)
		// Live while idle for less than the timeout (if this goroutine was
		// not stalled for the whole timeout, which the check tells apart).
		_, err = m.Get(ctx, s.ID())
		if time.Since(s.LastActivity()) < idle {
			require.NoError(t, err)
		}
		// Touch moves the deadline.
		waitPast(t, s.LastActivity().Add(idle/2))
		require.NoError(t, m.Touch(ctx, s.ID()))
		touched := s.LastActivity()
		waitPast(t, s.CreatedAt().Add(idle))
		_, err = m.Get(ctx, s.ID())
		if time.Since(touched) < idle {
			require.NoError(t, err, "activity moved the idle deadline")
		}
		waitPast(t, touched.Add(idle))
		_, err = m.Get(ctx, s.ID())
		require.ErrorIs(t, err, sessions.ErrNotFound)
	})

	t.Run("with the sweeper", func(t *testing.T) {
		checkNoLeaks(t)
		m, log := startManager(t, sessions.Config{IdleTimeout: idle, CleanupInterval: 20 * time.Millisecond})
		assert.True(t, m.Stats().AutoCleanup)
		a, err := m.Create(ctx, "alice", nil)
		require.NoError(t, err)
		anon, err := m.Create(ctx, "", nil)
		require.NoError(t, err)
		log.waitEvent(t, a.ID(), sessions.ReasonIdle)
		log.waitEvent(t, anon.ID(), sessions.ReasonIdle)
		assert.Equal(t, 0, m.Stats().ActiveSessions)
		n, err := m.Cleanup(ctx)
		require.NoError(t, err)
		assert.Zero(t, n, "the sweeper ended them already")

		require.NoError(t, m.Close())
		assert.Equal(t, 2, log.len(), "each ended once")
		assert.False(t, m.Stats().AutoCleanup, "the sweeper stops at Close")
	})

	t.Run("ended sessions are not swept again", func(t *testing.T) {
		checkNoLeaks(t)
		m, log := startManager(t, sessions.Config{IdleTimeout: idle, DisableAutoCleanup: true})
		s, err := m.Create(ctx, "alice", nil)
		require.NoError(t, err)
		gone, err := m.Create(ctx, "alice", nil)
		require.NoError(t, err)
		require.NoError(t, m.Terminate(ctx, gone.ID()))
		waitPast(t, s.LastActivity().Add(idle))
		// Terminate of an expired session: it had ended already, by expiry.
		assert.ErrorIs(t, m.Terminate(ctx, s.ID()), sessions.ErrNotFound)
		n, err := m.Cleanup(ctx)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		require.NoError(t, m.Close())
		assert.Len(t, log.of(s.ID()), 1)
		assert.Equal(t, sessions.ReasonIdle, log.of(s.ID())[0].Reason)
		assert.Len(t, log.of(gone.ID()), 1)
		assert.Equal(t, sessions.ReasonTerminated, log.of(gone.ID())[0].Reason)
	})

	t.Run("TerminateUser does not count expired sessions", func(t *testing.T) {
		checkNoLeaks(t)
		m, log := startManager(t, sessions.Config{IdleTimeout: idle, DisableAutoCleanup: true})
		s, err := m.Create(ctx, "alice", nil)
		require.NoError(t, err)
		waitPast(t, s.LastActivity().Add(idle))
		n, err := m.TerminateUser(ctx, "alice")
		require.NoError(t, err)
		assert.Zero(t, n, "the user has no live session")
		require.NoError(t, m.Close())
		evs := log.of(s.ID())
		require.Len(t, evs, 1)
		assert.Equal(t, sessions.ReasonIdle, evs[0].Reason, "it ended by expiry")
	})
}

func TestAbsoluteExpiry(t *testing.T) {
	const absolute = 150 * time.Millisecond

	t.Run("without the sweeper", func(t *testing.T) {
		checkNoLeaks(t)
		m, log := startManager(t, sessions.Config{IdleTimeout: time.Hour, AbsoluteTimeout: absolute, DisableAutoCleanup: true})
		s, err := m.Create(ctx, "alice", nil)
		require.NoError(t, err)
		deadline := s.CreatedAt().Add(absolute)
		// Activity does not move the absolute deadline.
		require.Eventually(t, func() bool {
			err := m.Touch(ctx, s.ID())
			if time.Now().Before(deadline) {
				return false
			}
			return errors.Is(err, sessions.ErrNotFound)
		}, waitFor, poll)
		waitPast(t, deadline)
		_, err = m.Get(ctx, s.ID())
		assert.ErrorIs(t, err, sessions.ErrNotFound)
		all, err := m.All(ctx)
		require.NoError(t, err)
		assert.Empty(t, all)
		got, err := m.UserSessions(ctx, "alice")
		require.NoError(t, err)
		assert.Empty(t, got)
		assert.Zero(t, m.Stats().ActiveSessions)
		assert.False(t, s.Active())

		n, err := m.Cleanup(ctx)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		evs := log.of(s.ID())
		require.Len(t, evs, 1)
		assert.Equal(t, sessions.ReasonAbsolute, evs[0].Reason)
	})

	t.Run("with the sweeper", func(t *testing.T) {
		checkNoLeaks(t)
		m, log := startManager(t, sessions.Config{IdleTimeout: time.Hour, AbsoluteTimeout: absolute, CleanupInterval: 20 * time.Millisecond})
		s, err := m.Create(ctx, "alice", nil)
		require.NoError(t, err)
		log.waitEvent(t, s.ID(), sessions.ReasonAbsolute)
		assert.False(t, time.Now().Before(s.CreatedAt().Add(absolute)), "not before the deadline")
	})

	t.Run("idle before absolute", func(t *testing.T) {
		checkNoLeaks(t)
		m, log := startManager(t, sessions.Config{IdleTimeout: 50 * time.Millisecond, AbsoluteTimeout: time.Hour, DisableAutoCleanup: true})
		s, err := m.Create(ctx, "alice", nil)
		require.NoError(t, err)
		waitPast(t, s.LastActivity().Add(50*time.Millisecond))
		n, err := m.Cleanup(ctx)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		require.Len(t, log.of(s.ID()), 1)
		assert.Equal(t, sessions.ReasonIdle, log.of(s.ID())[0].Reason)
	})
}

func TestLimitEvictOldest(t *testing.T) {
	checkNoLeaks(t)
	m, log := startManager(t, sessions.Config{MaxSessionsPerUser: 3, DisableAutoCleanup: true})
	var ss []*sessions.Session
	for range 3 {
		s, err := m.Create(ctx, "alice", nil)
		require.NoError(t, err)
		ss = append(ss, s)
	}
	// The oldest-created session is the most recently active one now; the
	// second is the least recently active.
	waitPast(t, ss[2].LastActivity())
	require.NoError(t, m.Touch(ctx, ss[0].ID()))

	d, err := m.Create(ctx, "alice", nil)
	require.NoError(t, err)
	got, err := m.UserSessions(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, sortedIDs(ss[0].ID(), ss[2].ID(), d.ID()), ids(got))
	_, err = m.Get(ctx, ss[1].ID())
	assert.ErrorIs(t, err, sessions.ErrNotFound)
	assert.False(t, ss[1].Active())
	ev := log.waitEvent(t, ss[1].ID(), sessions.ReasonEvicted)
	assert.Equal(t, "alice", ev.UserID)

	// Activity through a Session counts as well.
	waitPast(t, d.LastActivity())
	ss[2].Touch()
	e, err := m.Create(ctx, "alice", nil)
	require.NoError(t, err)
	log.waitEvent(t, ss[0].ID(), sessions.ReasonEvicted)
	got, err = m.UserSessions(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, sortedIDs(ss[2].ID(), d.ID(), e.ID()), ids(got))

	// Other users are not affected.
	bob, err := m.Create(ctx, "bob", nil)
	require.NoError(t, err)
	_, err = m.Get(ctx, bob.ID())
	require.NoError(t, err)
	require.NoError(t, m.Close())
	assert.Equal(t, map[sessions.Reason]int{sessions.ReasonEvicted: 2, sessions.ReasonShutdown: 4}, log.reasons())
}

func TestLimitRejectNew(t *testing.T) {
	checkNoLeaks(t)
	m, log := startManager(t, sessions.Config{MaxSessionsPerUser: 2, LimitPolicy: sessions.RejectNew, DisableAutoCleanup: true})
	a, err := m.Create(ctx, "alice", nil)
	require.NoError(t, err)
	b, err := m.Create(ctx, "alice", nil)
	require.NoError(t, err)

	s, err := m.Create(ctx, "alice", map[string]any{"k": 1})
	require.ErrorIs(t, err, sessions.ErrLimitReached)
	assert.Nil(t, s)
	got, err := m.UserSessions(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, sortedIDs(a.ID(), b.ID()), ids(got), "nothing created, nothing ended")
	all, err := m.All(ctx)
	require.NoError(t, err)
	assert.Len(t, all, 2)
	assert.Equal(t, 2, m.Stats().ActiveSessions)

	_, err = m.Create(ctx, "bob", nil)
	require.NoError(t, err, "other users are not affected")

	// A slot freed by an ending can be used.
	require.NoError(t, m.Terminate(ctx, a.ID()))
	_, err = m.Create(ctx, "alice", nil)
	require.NoError(t, err)
	require.NoError(t, m.Close())
	assert.Equal(t, map[sessions.Reason]int{sessions.ReasonTerminated: 1, sessions.ReasonShutdown: 3}, log.reasons())
}

func TestLimitExpiredSessionsFreeSlots(t *testing.T) {
	checkNoLeaks(t)
	const idle = 80 * time.Millisecond
	for _, policy := range []sessions.LimitPolicy{sessions.EvictOldest, sessions.RejectNew} {
		t.Run(map[sessions.LimitPolicy]string{sessions.EvictOldest: "EvictOldest", sessions.RejectNew: "RejectNew"}[policy], func(t *testing.T) {
			m, log := startManager(t, sessions.Config{IdleTimeout: idle, MaxSessionsPerUser: 1, LimitPolicy: policy, DisableAutoCleanup: true})
			old, err := m.Create(ctx, "alice", nil)
			require.NoError(t, err)
			waitPast(t, old.LastActivity().Add(idle))
			s, err := m.Create(ctx, "alice", nil)
			require.NoError(t, err)
			// The expired one ended by expiry, not by the limit.
			ev := log.waitEvent(t, old.ID(), sessions.ReasonIdle)
			assert.Equal(t, "alice", ev.UserID)
			n, err := m.Cleanup(ctx)
			require.NoError(t, err)
			assert.Zero(t, n)
			_ = s
		})
	}
}

func TestLimitDefaultAndUnlimited(t *testing.T) {
	checkNoLeaks(t)
	t.Run("default is 5", func(t *testing.T) {
		m, log := startManager(t, sessions.Config{DisableAutoCleanup: true})
		for range 7 {
			_, err := m.Create(ctx, "alice", nil)
			require.NoError(t, err)
		}
		got, err := m.UserSessions(ctx, "alice")
		require.NoError(t, err)
		assert.Len(t, got, 5)
		require.Eventually(t, func() bool { return log.len() == 2 }, waitFor, poll)
		assert.Equal(t, map[sessions.Reason]int{sessions.ReasonEvicted: 2}, log.reasons())
	})
	t.Run("Unlimited", func(t *testing.T) {
		m, log := startManager(t, sessions.Config{MaxSessionsPerUser: sessions.Unlimited, LimitPolicy: sessions.RejectNew, DisableAutoCleanup: true})
		for range 50 {
			_, err := m.Create(ctx, "alice", nil)
			require.NoError(t, err)
		}
		got, err := m.UserSessions(ctx, "alice")
		require.NoError(t, err)
		assert.Len(t, got, 50)
		assert.Zero(t, log.len())
	})
	t.Run("anonymous sessions are not limited", func(t *testing.T) {
		for _, policy := range []sessions.LimitPolicy{sessions.EvictOldest, sessions.RejectNew} {
			m, log := startManager(t, sessions.Config{MaxSessionsPerUser: 1, LimitPolicy: policy, DisableAutoCleanup: true})
			var made []string
			for range 10 {
				s, err := m.Create(ctx, "", nil)
				require.NoError(t, err)
				made = append(made, s.ID())
			}
			all, err := m.All(ctx)
			require.NoError(t, err)
			assert.Equal(t, sortedIDs(made...), ids(all))
			st := m.Stats()
			assert.Equal(t, 10, st.ActiveSessions)
			assert.Equal(t, 0, st.UniqueUsers)
			assert.Zero(t, log.len())
		}
	})
}

func TestLimitConcurrentCreates(t *testing.T) {
	const (
		callers = 64
		limit   = 5
	)
	for _, tc := range []struct {
		name     string
		policy   sessions.LimitPolicy
		managers int
	}{
		{"EvictOldest", sessions.EvictOldest, 1},
		{"RejectNew", sessions.RejectNew, 1},
		{"EvictOldest two managers", sessions.EvictOldest, 2},
		{"RejectNew two managers", sessions.RejectNew, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkNoLeaks(t)
			cfg := sessions.Config{MaxSessionsPerUser: limit, LimitPolicy: tc.policy, DisableAutoCleanup: true}
			st := sessions.NewMemoryStore()
			var ms []*sessions.Manager
			var logs []*eventLog
			for range tc.managers {
				m, log := startManager(t, cfg, sessions.WithStore(st))
				ms, logs = append(ms, m), append(logs, log)
			}

			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				created  []string
				rejected atomic.Int64
				start    = make(chan struct{})
			)
			for i := range callers {
				wg.Go(func() {
					<-start
					s, err := ms[i%len(ms)].Create(ctx, "alice", nil)
					if errors.Is(err, sessions.ErrLimitReached) {
						rejected.Add(1)
						return
					}
					if !assert.NoError(t, err) {
						return
					}
					mu.Lock()
					created = append(created, s.ID())
					mu.Unlock()
				})
			}
			close(start)
			wg.Wait()

			live, err := ms[0].UserSessions(ctx, "alice")
			require.NoError(t, err)
			require.Len(t, live, limit)
			assert.Equal(t, limit, ms[0].Stats().ActiveSessions)

			evicted := callers - limit
			if tc.policy == sessions.RejectNew {
				assert.Len(t, created, limit)
				assert.Equal(t, int64(callers-limit), rejected.Load())
				assert.Equal(t, sortedIDs(created...), ids(live))
				evicted = 0
			} else {
				assert.Len(t, created, callers)
				assert.Zero(t, rejected.Load())
			}

			// Every eviction has exactly one event, from one manager.
			allEvents := func() []sessions.Event {
				var out []sessions.Event
				for _, l := range logs {
					out = append(out, l.events()...)
				}
				return out
			}
			require.Eventually(t, func() bool { return len(allEvents()) >= evicted }, waitFor, poll)
			seen := make(map[string]int)
			for _, ev := range allEvents() {
				assert.Equal(t, sessions.ReasonEvicted, ev.Reason)
				seen[ev.SessionID]++
			}
			assert.Len(t, seen, evicted)
			for id, n := range seen {
				assert.Equal(t, 1, n, "events for %s", id)
			}
			// The evicted and the live are exactly the created.
			ended := slices.Collect(func(yield func(string) bool) {
				for id := range seen {
					if !yield(id) {
						return
					}
				}
			})
			assert.Equal(t, sortedIDs(created...), sortedIDs(append(ended, ids(live)...)...))
		})
	}
}

func TestHooksRunOnceForEveryEnding(t *testing.T) {
	checkNoLeaks(t)
	log := &eventLog{}
	want := make(map[string]sessions.Reason)
	newM := func(cfg sessions.Config) *sessions.Manager {
		cfg.DisableAutoCleanup = true
		cfg.Cookie.Insecure = true
		m, err := sessions.NewManager(cfg, quiet())
		require.NoError(t, err)
		m.OnTerminate(log.hook)
		t.Cleanup(func() { _ = m.Close() })
		return m
	}

	// idle and absolute, each on a manager of its own.
	const short = 60 * time.Millisecond
	idleM := newM(sessions.Config{IdleTimeout: short})
	absM := newM(sessions.Config{IdleTimeout: time.Hour, AbsoluteTimeout: short})
	si, err := idleM.Create(ctx, "u-idle", nil)
	require.NoError(t, err)
	sa, err := absM.Create(ctx, "u-abs", nil)
	require.NoError(t, err)
	want[si.ID()], want[sa.ID()] = sessions.ReasonIdle, sessions.ReasonAbsolute
	waitPast(t, sa.CreatedAt().Add(short))
	waitPast(t, si.LastActivity().Add(short))
	for _, m := range []*sessions.Manager{idleM, absM} {
		n, err := m.Cleanup(ctx)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
	}

	m := newM(sessions.Config{MaxSessionsPerUser: 1})
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/login":
			s, err := m.Start(w, r, r.URL.Query().Get("user"), nil)
			if assert.NoError(t, err) {
				fmt.Fprint(w, s.ID())
			}
		case "/logout":
			assert.NoError(t, m.End(w, r))
		}
	}))
	login := func(user string, cookies ...*http.Cookie) (*sessions.Session, *http.Cookie) {
		r := httptest.NewRequest(http.MethodPost, "/login?user="+user, nil)
		for _, c := range cookies {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		ck := sessionCookie(t, w.Result(), "session")
		require.NotEmpty(t, ck.Value)
		s, err := m.Get(ctx, w.Body.String())
		require.NoError(t, err)
		return s, ck
	}

	// logout
	sl, ck := login("u-logout")
	r := httptest.NewRequest(http.MethodPost, "/logout", nil)
	r.AddCookie(ck)
	h.ServeHTTP(httptest.NewRecorder(), r)
	want[sl.ID()] = sessions.ReasonLogout

	// renewed
	sr, ck := login("u-renew")
	sr2, _ := login("u-renew", ck)
	want[sr.ID()] = sessions.ReasonRenewed
	// evicted (limit 1)
	se, _ := login("u-renew")
	want[sr2.ID()] = sessions.ReasonEvicted
	// terminated, both ways
	st, err := m.Create(ctx, "u-term", nil)
	require.NoError(t, err)
	require.NoError(t, m.Terminate(ctx, st.ID()))
	want[st.ID()] = sessions.ReasonTerminated
	su, err := m.Create(ctx, "u-term-user", nil)
	require.NoError(t, err)
	n, err := m.TerminateUser(ctx, "u-term-user")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	want[su.ID()] = sessions.ReasonTerminated
	// shutdown: what is left at Close
	anon, err := m.Create(ctx, "", nil)
	require.NoError(t, err)
	want[se.ID()], want[anon.ID()] = sessions.ReasonShutdown, sessions.ReasonShutdown

	// Repeated endings end nothing more.
	assert.ErrorIs(t, m.Terminate(ctx, st.ID()), sessions.ErrNotFound)
	assert.ErrorIs(t, m.Terminate(ctx, sl.ID()), sessions.ErrNotFound)
	h.ServeHTTP(httptest.NewRecorder(), r) // the logout again, with the old cookie

	for _, m := range []*sessions.Manager{idleM, absM, m} {
		require.NoError(t, m.Close())
		require.NoError(t, m.Close())
	}
	got := make(map[string]sessions.Reason)
	for _, ev := range log.events() {
		_, dup := got[ev.SessionID]
		assert.False(t, dup, "a second event for a session ended by %v: %v", got[ev.SessionID], ev.Reason)
		got[ev.SessionID] = ev.Reason
	}
	assert.Equal(t, want, got)
	for r := sessions.ReasonLogout; r <= sessions.ReasonShutdown; r++ {
		assert.Contains(t, got, func() string {
			for id, wr := range want {
				if wr == r {
					return id
				}
			}
			return ""
		}(), "reason %v is covered", r)
	}
}

func TestReasonString(t *testing.T) {
	for r, s := range map[sessions.Reason]string{
		sessions.ReasonLogout: "logout", sessions.ReasonIdle: "idle", sessions.ReasonAbsolute: "absolute",
		sessions.ReasonEvicted: "evicted", sessions.ReasonRenewed: "renewed", sessions.ReasonTerminated: "terminated",
		sessions.ReasonShutdown: "shutdown",
	} {
		assert.Equal(t, s, r.String())
	}
	assert.NotEmpty(t, sessions.Reason(0).String())
	assert.NotEmpty(t, sessions.Reason(99).String())
}

func TestPanickingHook(t *testing.T) {
	checkNoLeaks(t)
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const idle = 50 * time.Millisecond
	m, err := sessions.NewManager(sessions.Config{IdleTimeout: idle, CleanupInterval: 10 * time.Millisecond},
		sessions.WithLogger(logger))
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })

	var panics atomic.Int64
	m.OnTerminate(func(sessions.Event) {
		panics.Add(1)
		panic("hook failure")
	})
	log := &eventLog{}
	m.OnTerminate(log.hook)
	m.OnTerminate(func(sessions.Event) { panic(errors.New("another hook failure")) })

	// Ended by the sweeper: the other hooks run, the panic is logged.
	s1, err := m.Create(ctx, "alice", nil)
	require.NoError(t, err)
	log.waitEvent(t, s1.ID(), sessions.ReasonIdle)
	require.Eventually(t, func() bool { return bytes.Contains([]byte(buf.String()), []byte("hook failure")) }, waitFor, poll)

	// The sweeper goes on.
	s2, err := m.Create(ctx, "bob", nil)
	require.NoError(t, err)
	log.waitEvent(t, s2.ID(), sessions.ReasonIdle)

	// So do hooks for other endings.
	s3, err := m.Create(ctx, "carol", nil)
	require.NoError(t, err)
	require.NoError(t, m.Terminate(ctx, s3.ID()))
	log.waitEvent(t, s3.ID(), sessions.ReasonTerminated)

	require.NoError(t, m.Close())
	assert.Equal(t, int64(3), panics.Load())
	out := buf.String()
	assert.Contains(t, out, "another hook failure")
	for _, s := range []*sessions.Session{s1, s2, s3} {
		assert.NotContains(t, out, s.ID(), "a raw session ID in the log")
	}
}

func TestSlowHookDelaysNothing(t *testing.T) {
	checkNoLeaks(t)
	m, _ := startManager(t, sessions.Config{Cookie: sessions.CookieConfig{Insecure: true}, DisableAutoCleanup: true})
	release := make(chan struct{})
	var entered, finished atomic.Int64
	m.OnTerminate(func(sessions.Event) {
		entered.Add(1)
		<-release
		finished.Add(1)
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})

	first, err := m.Create(ctx, "alice", nil)
	require.NoError(t, err)
	require.NoError(t, m.Terminate(ctx, first.ID()))
	require.Eventually(t, func() bool { return entered.Load() == 1 }, waitFor, poll, "the hook is running")

	srv := httptest.NewServer(m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/login":
			_, err := m.Start(w, r, "bob", nil)
			assert.NoError(t, err)
		case "/logout":
			assert.NoError(t, m.End(w, r))
		}
		_, ok := sessions.FromContext(r.Context())
		fmt.Fprint(w, ok)
	})))
	t.Cleanup(srv.Close)

	done := make(chan error, 1)
	go func() {
		done <- func() error {
			for range 5 {
				s, err := m.Create(ctx, "alice", nil)
				if err != nil {
					return err
				}
				if err := m.Terminate(ctx, s.ID()); err != nil {
					return err
				}
			}
			if _, err := m.TerminateUser(ctx, "alice"); err != nil {
				return err
			}
			c := newClient(t, srv)
			for _, path := range []string{"/login", "/login", "/", "/logout"} {
				resp, err := c.Post(srv.URL+path, "", nil)
				if err != nil {
					return err
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("%s: status %d", path, resp.StatusCode)
				}
			}
			return nil
		}()
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(waitFor):
		t.Fatal("requests and calls waited for a blocked hook")
	}
	assert.Equal(t, int64(1), entered.Load(), "the first hook call is still blocked")
	assert.Zero(t, finished.Load())

	close(release)
	require.NoError(t, m.Close())
	// first + 5 terminated + renewed + logout
	assert.Equal(t, int64(8), finished.Load(), "Close waits for every pending hook")
}

func TestCloseWaitsForPendingHooks(t *testing.T) {
	checkNoLeaks(t)
	m, err := sessions.NewManager(sessions.Config{}, quiet())
	require.NoError(t, err)
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	var ran atomic.Int64
	m.OnTerminate(func(sessions.Event) {
		<-release
		ran.Add(1)
	})
	for range 3 {
		_, err := m.Create(ctx, "alice", nil)
		require.NoError(t, err)
	}
	closed := make(chan struct{})
	go func() {
		assert.NoError(t, m.Close())
		close(closed)
	}()
	isClosed := func() bool {
		select {
		case <-closed:
			return true
		default:
			return false
		}
	}
	require.Never(t, isClosed, 100*time.Millisecond, 5*time.Millisecond, "Close returned while a hook was blocked")
	unblock()
	require.Eventually(t, isClosed, waitFor, poll)
	assert.Equal(t, int64(3), ran.Load(), "every shutdown hook ran before Close returned")
}

func TestClose(t *testing.T) {
	checkNoLeaks(t)
	m, log := startManager(t, sessions.Config{CleanupInterval: 10 * time.Millisecond, Cookie: sessions.CookieConfig{Insecure: true}})
	a, err := m.Create(ctx, "alice", map[string]any{"k": "v"})
	require.NoError(t, err)
	b, err := m.Create(ctx, "bob", nil)
	require.NoError(t, err)
	anon, err := m.Create(ctx, "", nil)
	require.NoError(t, err)
	gone, err := m.Create(ctx, "alice", nil)
	require.NoError(t, err)
	require.NoError(t, m.Terminate(ctx, gone.ID()))

	// A handler that holds a cookie from before Close.
	var ck *http.Cookie
	{
		w := httptest.NewRecorder()
		_, err := m.Start(w, httptest.NewRequest(http.MethodPost, "/", nil), "carol", nil)
		require.NoError(t, err)
		ck = sessionCookie(t, w.Result(), "session")
	}

	require.NoError(t, m.Close())
	for _, s := range []*sessions.Session{a, b, anon} {
		evs := log.of(s.ID())
		require.Len(t, evs, 1, "each live session ended once, before Close returned")
		assert.Equal(t, sessions.ReasonShutdown, evs[0].Reason)
		assert.False(t, s.Active())
	}
	assert.Equal(t, map[string]any{"k": "v"}, log.of(a.ID())[0].Data)
	assert.Equal(t, map[sessions.Reason]int{sessions.ReasonTerminated: 1, sessions.ReasonShutdown: 4}, log.reasons())

	require.NoError(t, m.Close(), "Close is idempotent")
	assert.Equal(t, 5, log.len())

	st := m.Stats()
	assert.False(t, st.AutoCleanup)
	assert.Zero(t, st.ActiveSessions)

	_, err = m.Create(ctx, "alice", nil)
	assert.ErrorIs(t, err, sessions.ErrClosed, "Create")
	_, err = m.Get(ctx, a.ID())
	assert.ErrorIs(t, err, sessions.ErrClosed, "Get")
	_, err = m.Get(ctx, "malformed")
	assert.ErrorIs(t, err, sessions.ErrClosed, "Get malformed")
	assert.ErrorIs(t, m.Touch(ctx, a.ID()), sessions.ErrClosed, "Touch")
	_, err = m.UserSessions(ctx, "alice")
	assert.ErrorIs(t, err, sessions.ErrClosed, "UserSessions")
	_, err = m.All(ctx)
	assert.ErrorIs(t, err, sessions.ErrClosed, "All")
	assert.ErrorIs(t, m.Terminate(ctx, a.ID()), sessions.ErrClosed, "Terminate")
	assert.ErrorIs(t, m.Terminate(ctx, "malformed"), sessions.ErrClosed, "Terminate malformed")
	_, err = m.TerminateUser(ctx, "alice")
	assert.ErrorIs(t, err, sessions.ErrClosed, "TerminateUser")
	_, err = m.Cleanup(ctx)
	assert.ErrorIs(t, err, sessions.ErrClosed, "Cleanup")
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	_, err = m.Start(w, r, "alice", nil)
	assert.ErrorIs(t, err, sessions.ErrClosed, "Start")
	r.AddCookie(ck)
	assert.ErrorIs(t, m.End(w, r), sessions.ErrClosed, "End")
	m.OnTerminate(func(sessions.Event) {}) // harmless
	assert.Equal(t, 5, log.len(), "nothing ends after Close")
}

func TestCloseSharedMemoryStore(t *testing.T) {
	checkNoLeaks(t)
	st := sessions.NewMemoryStore()
	cfg := sessions.Config{DisableAutoCleanup: true}
	m1, log1 := startManager(t, cfg, sessions.WithStore(st))
	m2, log2 := startManager(t, cfg, sessions.WithStore(st))

	a, err := m1.Create(ctx, "alice", nil)
	require.NoError(t, err)
	b, err := m2.Create(ctx, "bob", nil)
	require.NoError(t, err)
	// Each sees the other's sessions; Stats describe the whole store.
	_, err = m2.Get(ctx, a.ID())
	require.NoError(t, err)
	for _, m := range []*sessions.Manager{m1, m2} {
		s := m.Stats()
		assert.Equal(t, 2, s.ActiveSessions)
		assert.Equal(t, 2, s.UniqueUsers)
	}
	// A session ended by one is gone for both, with one event.
	c, err := m1.Create(ctx, "carol", nil)
	require.NoError(t, err)
	require.NoError(t, m2.Terminate(ctx, c.ID()))
	_, err = m1.Get(ctx, c.ID())
	assert.ErrorIs(t, err, sessions.ErrNotFound)
	log2.waitEvent(t, c.ID(), sessions.ReasonTerminated)

	require.NoError(t, m1.Close())
	assert.Zero(t, log1.len(), "Close of one manager ends nothing")
	for _, s := range []*sessions.Session{a, b} {
		got, err := m2.Get(ctx, s.ID())
		require.NoError(t, err)
		assert.True(t, got.Active())
	}
	assert.Equal(t, 2, m2.Stats().ActiveSessions)

	require.NoError(t, m2.Close())
	assert.Zero(t, log1.len())
	log2.waitEvent(t, a.ID(), sessions.ReasonShutdown)
	log2.waitEvent(t, b.ID(), sessions.ReasonShutdown)
	assert.Equal(t, 3, log2.len())

	// A new manager on the store finds it empty.
	m3, _ := startManager(t, cfg, sessions.WithStore(st))
	assert.Zero(t, m3.Stats().ActiveSessions)
}

func TestStats(t *testing.T) {
	checkNoLeaks(t)
	const idle = 80 * time.Millisecond
	m, _ := startManager(t, sessions.Config{IdleTimeout: idle, DisableAutoCleanup: true})
	st := m.Stats()
	assert.Zero(t, st.ActiveSessions)
	assert.Zero(t, st.UniqueUsers)
	assert.False(t, st.AutoCleanup)

	var made []*sessions.Session
	for _, u := range []string{"alice", "alice", "bob", "", ""} {
		s, err := m.Create(ctx, u, nil)
		require.NoError(t, err)
		made = append(made, s)
	}
	st = m.Stats()
	if time.Since(made[0].LastActivity()) < idle {
		assert.Equal(t, 5, st.ActiveSessions, "anonymous sessions are sessions")
		assert.Equal(t, 2, st.UniqueUsers, "but not users")
	}

	// Keep bob's session alive: touch it after the others' deadline.
	waitPast(t, made[3].LastActivity().Add(idle/2))
	require.NoError(t, m.Touch(ctx, made[2].ID()))
	bobActive := made[2].LastActivity()
	waitPast(t, made[4].LastActivity().Add(idle))
	st = m.Stats()
	if time.Since(bobActive) < idle {
		assert.Equal(t, 1, st.ActiveSessions, "expired, unswept sessions are not counted")
		assert.Equal(t, 1, st.UniqueUsers)
	}
	waitPast(t, bobActive.Add(idle))
	st = m.Stats()
	assert.Zero(t, st.ActiveSessions)
	assert.Zero(t, st.UniqueUsers)

	m2, _ := startManager(t, sessions.Config{})
	assert.True(t, m2.Stats().AutoCleanup)
}

// customValue is a user type stored in sessions.
type customValue struct {
	Name string
	N    int
}

func TestSessionData(t *testing.T) {
	checkNoLeaks(t)
	gob.Register(customValue{}) // every store keeps only registered types (see TestSetRefusesWhatNoStoreKeeps)
	m, _ := startManager(t, sessions.Config{DisableAutoCleanup: true})
	s, err := m.Create(ctx, "alice", map[string]any{"initial": true})
	require.NoError(t, err)

	when := time.Date(2025, 3, 1, 12, 30, 0, 123, time.UTC)
	raw := []byte{1, 2, 3}
	values := map[string]any{
		"string": "x", "bool": true, "int": 42, "int64": int64(-7), "float64": 3.5,
		"bytes": raw, "time": when, "custom": customValue{"n", 1},
		"nil": nil, "slice": []string{"a"},
	}
	for k, v := range values {
		s.Set(k, v)
	}
	raw[0] = 99 // Set keeps its own copy of a []byte
	values["bytes"] = []byte{1, 2, 3}
	for k, want := range values {
		got, ok := s.Get(k)
		require.True(t, ok, k)
		assert.IsType(t, want, got, k)
		assert.Equal(t, want, got, k)
	}
	got, err := m.Get(ctx, s.ID())
	require.NoError(t, err)
	for k, want := range values {
		v, ok := got.Get(k)
		require.True(t, ok, k)
		assert.Equal(t, want, v, "through Manager.Get: %s", k)
	}

	_, ok := s.Get("missing")
	assert.False(t, ok)
	s.Set("string", "y")
	v, _ := s.Get("string")
	assert.Equal(t, "y", v, "Set replaces")

	s.Delete("string")
	_, ok = s.Get("string")
	assert.False(t, ok)
	s.Delete("never-there") // harmless

	d := s.Data()
	assert.Len(t, d, len(values)) // "initial" in, "string" out
	assert.Equal(t, true, d["initial"])
	d["initial"] = false
	d["added"] = 1
	v, _ = s.Get("initial")
	assert.Equal(t, true, v, "Data is a copy")
	_, ok = s.Get("added")
	assert.False(t, ok, "Data is a copy")
}

func TestSessionConcurrentUse(t *testing.T) {
	checkNoLeaks(t)
	m, _ := startManager(t, sessions.Config{DisableAutoCleanup: true})
	s, err := m.Create(ctx, "alice", nil)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				key := fmt.Sprintf("k%d", g)
				s.Set(key, i)
				_, _ = s.Get(key)
				_ = s.Data()
				s.Touch()
				_ = s.IdleFor()
				_ = s.Active()
				_ = s.LastActivity()
				if i%50 == 0 {
					_, _ = json.Marshal(s)
					_ = m.Touch(ctx, s.ID())
					_, _ = m.Get(ctx, s.ID())
				}
			}
		})
	}
	wg.Wait()
	for g := range 8 {
		v, ok := s.Get(fmt.Sprintf("k%d", g))
		require.True(t, ok)
		assert.Equal(t, 199, v)
	}
}

func TestSessionActivity(t *testing.T) {
	checkNoLeaks(t)
	m, _ := startManager(t, sessions.Config{DisableAutoCleanup: true})
	s, err := m.Create(ctx, "alice", nil)
	require.NoError(t, err)
	waitPast(t, s.LastActivity().Add(20*time.Millisecond))
	idle := s.IdleFor()
	assert.GreaterOrEqual(t, idle, 20*time.Millisecond)
	assert.Less(t, idle, time.Hour)
	before := s.LastActivity()
	s.Touch()
	assert.True(t, s.LastActivity().After(before))
	assert.Less(t, s.IdleFor(), idle, "Touch resets IdleFor")
	assert.True(t, s.Active())
	require.NoError(t, s.Save(ctx), "Save is a no-op on the memory store")
	require.NoError(t, m.Terminate(ctx, s.ID()))
	assert.False(t, s.Active())
}

func TestSessionMarshalJSON(t *testing.T) {
	checkNoLeaks(t)
	m, _ := startManager(t, sessions.Config{DisableAutoCleanup: true})
	s, err := m.Create(ctx, "usuario_001", map[string]any{"rol": "admin", "saldo": 1000})
	require.NoError(t, err)

	b, err := json.Marshal(s)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(b, &got))
	assert.ElementsMatch(t, []string{"session_id", "user_id", "created_at", "last_activity", "is_active", "data"},
		slices.Collect(func(yield func(string) bool) {
			for k := range got {
				if !yield(k) {
					return
				}
			}
		}))
	assert.Equal(t, s.ID(), got["session_id"])
	assert.Equal(t, "usuario_001", got["user_id"])
	assert.Equal(t, true, got["is_active"])
	assert.Equal(t, map[string]any{"rol": "admin", "saldo": float64(1000)}, got["data"])
	for _, k := range []string{"created_at", "last_activity"} {
		str, ok := got[k].(string)
		require.True(t, ok, k)
		tm, err := time.Parse(time.RFC3339, str)
		require.NoError(t, err, "%s is RFC 3339: %q", k, str)
		assert.WithinDuration(t, s.CreatedAt(), tm, time.Second, k)
	}
	created, _ := time.Parse(time.RFC3339, got["created_at"].(string))
	assert.True(t, created.Equal(s.CreatedAt()), "no precision lost")

	require.NoError(t, m.Terminate(ctx, s.ID()))
	b, err = s.MarshalJSON()
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &got))
	assert.Equal(t, false, got["is_active"])
}
