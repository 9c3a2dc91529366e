package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tokyopredictor/sessions"
)

// Lost replies. A Delete or DeleteUser whose connection drops after the
// server committed it removed sessions whose endings nobody was told of;
// called again it would find nothing, and their hooks would never run. So
// each of those calls carries an op token (random, unique to the call),
// and the statement keeps what it removed in <table>_replies under that
// token, for replyTTL. A call that got no answer from the server leaves its
// token with the Store, by what it acted on (the session's key, or the
// user); the next call on the same session or user from this Store — the
// Manager's retry — uses it again: it first waits for the earlier run
// (an advisory lock on the token, held by every run until it commits), then
// answers with what that run removed, if it committed, or does the work.
// Sweeps prune replies older than replyTTL.

// replyTTL is how long the replies of Delete and DeleteUser are kept.
const replyTTL = 2 * time.Minute

// maxUnanswered bounds the unanswered calls a Store remembers.
const maxUnanswered = 4096

// unansweredCall is the op token of a call that got no answer and when it
// was made.
type unansweredCall struct {
	op []byte
	at time.Time
}

// replyBook is a Store's memory of unanswered calls.
type replyBook struct {
	mu    sync.Mutex
	calls map[string]unansweredCall // what the call acted on → its token
}

// take returns the token of the last unanswered call on what, if the
// server still keeps its reply, or a fresh one. A call takes the token out
// while it runs, so two concurrent calls never share one.
func (b *replyBook) take(what string) []byte {
	b.mu.Lock()
	c, ok := b.calls[what]
	delete(b.calls, what)
	b.mu.Unlock()
	if ok && time.Since(c.at) < replyTTL-10*time.Second {
		return c.op
	}
	op := make([]byte, 16)
	_, _ = rand.Read(op) // crypto/rand.Read never fails
	return op
}

// settle records how the call that used op ended: unless err is an answer
// from the server (nil, or an error the server sent) or certainly never
// reached it, the token is kept for the next call on what.
func (b *replyBook) settle(what string, op []byte, err error) {
	if !unanswered(err) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.calls == nil || len(b.calls) >= maxUnanswered {
		b.calls = make(map[string]unansweredCall)
	}
	if _, ok := b.calls[what]; !ok {
		b.calls[what] = unansweredCall{op: op, at: time.Now()}
	}
}

// unanswered reports whether err may hide a call that ran on the server.
func unanswered(err error) bool {
	if err == nil || errors.Is(err, sessions.ErrNotFound) || pgconn.SafeToRetry(err) {
		return false
	}
	var pe *pgconn.PgError
	return !errors.As(err, &pe)
}

// opLock is the advisory lock key of an op token.
func opLock(op []byte) int64 { return int64(binary.BigEndian.Uint64(op[:8])) }

// pruneReplies deletes replies older than replyTTL at now, a bounded batch,
// skipping rows another call is pruning (no two sweepers wait for each
// other).
func (s *Store) pruneReplies(ctx context.Context, now time.Time) error {
	_, err := s.pool.Exec(ctx, s.q.pruneReplies, now.Add(-replyTTL))
	return err
}
