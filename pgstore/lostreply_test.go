package pgstore

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// events collects the endings a manager's hooks see.
type events struct {
	mu  sync.Mutex
	got []sessions.Event
}

func (e *events) hook(ev sessions.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, ev)
}

func (e *events) len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.got)
}

// lostReply makes the reply of the next removal of the rows matching
// where ($1 = arg) go unanswered after the server committed it: another
// transaction holds those rows, so the statement waits on the server until
// call's context ends and the client gives up (pgx closes the connection;
// the server is not told), then the rows are released and the waiting
// statement commits with nobody to answer.
func lostReply(t *testing.T, s *Store, where string, arg any, call func(ctx context.Context) error) {
	t.Helper()
	ctx := t.Context()
	locker, err := s.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = locker.Rollback(context.Background()) }()
	table := pgx.Identifier{s.table}.Sanitize()
	tag, err := locker.Exec(ctx, "SELECT 1 FROM "+table+" WHERE "+where+" FOR UPDATE", arg)
	require.NoError(t, err)
	require.Positive(t, tag.RowsAffected())

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = call(short)
	cancel()
	require.Error(t, err, "the call should time out waiting for the rows")
	require.NotErrorIs(t, err, sessions.ErrNotFound)
	require.NoError(t, locker.Rollback(ctx))
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, s.pool.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE "+where, arg).Scan(&n))
		return n == 0
	}, 10*time.Second, 5*time.Millisecond, "the unanswered statement never committed")
}

func quietManager(t *testing.T, s *Store, ev *events) *sessions.Manager {
	t.Helper()
	m, err := sessions.NewManager(sessions.Config{Keys: testKeys, IdleTimeout: time.Hour, DisableAutoCleanup: true},
		sessions.WithStore(s), sessions.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	m.OnTerminate(ev.hook)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// TestLostReplyTerminate: Terminate's DELETE commits on the server but its
// reply is lost. The Manager retries; the Store reuses the call's op token,
// and the retry answers with the first run's ending: the hooks run once,
// with the session's data.
func TestLostReplyTerminate(t *testing.T) {
	s := newStore(t, newPool(t))
	ev := &events{}
	m := quietManager(t, s, ev)
	sess, err := m.Create(t.Context(), "lou", map[string]any{"cart": 2})
	require.NoError(t, err)

	lostReply(t, s, "key = $1", hashID(sess.ID()), func(ctx context.Context) error { return m.Terminate(ctx, sess.ID()) })
	require.Eventually(t, func() bool { return ev.len() > 0 }, 10*time.Second, 5*time.Millisecond,
		"the ending whose reply was lost never ran its hooks")
	require.NoError(t, m.Close())
	require.Len(t, ev.got, 1)
	assert.Equal(t, sess.ID(), ev.got[0].SessionID)
	assert.Equal(t, sessions.ReasonTerminated, ev.got[0].Reason)
	assert.Equal(t, map[string]any{"cart": 2}, ev.got[0].Data)
}

// TestLostReplyTerminateUser: the same with TerminateUser and two
// sessions, retried by its caller (the Manager retries single endings
// only): the retry reports the first run's two endings.
func TestLostReplyTerminateUser(t *testing.T) {
	s := newStore(t, newPool(t))
	ev := &events{}
	m := quietManager(t, s, ev)
	var ids []string
	for range 2 {
		sess, err := m.Create(t.Context(), "mo", nil)
		require.NoError(t, err)
		ids = append(ids, sess.ID())
	}

	lostReply(t, s, "user_id = $1", []byte("mo"), func(ctx context.Context) error {
		_, err := m.TerminateUser(ctx, "mo")
		return err
	})
	n, err := m.TerminateUser(t.Context(), "mo")
	require.NoError(t, err)
	assert.Equal(t, 2, n, "the retry reports the first run's endings")
	require.NoError(t, m.Close())
	require.Len(t, ev.got, 2)
	assert.ElementsMatch(t, ids, []string{ev.got[0].SessionID, ev.got[1].SessionID})
}

// TestRepliesPruned: a sweep deletes the replies older than replyTTL and
// keeps the newer ones.
func TestRepliesPruned(t *testing.T) {
	s := newStore(t, newPool(t))
	ctx := t.Context()
	for range 3 {
		r := rec("nia", time.Hour)
		_, err := s.Create(ctx, r, 0, sessions.EvictOldest)
		require.NoError(t, err)
		_, err = s.Delete(ctx, r.ID)
		require.NoError(t, err)
	}
	replies := func() int {
		var n int
		require.NoError(t, s.pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{s.table + "_replies"}.Sanitize()).Scan(&n))
		return n
	}
	require.Equal(t, 3, replies())
	_, err := s.Expired(ctx, time.Now().Add(replyTTL-time.Second), 10)
	require.NoError(t, err)
	assert.Equal(t, 3, replies(), "replies younger than replyTTL pruned")
	_, err = s.Expired(ctx, time.Now().Add(replyTTL+time.Second), 10)
	require.NoError(t, err)
	assert.Zero(t, replies(), "replies older than replyTTL kept")
}
