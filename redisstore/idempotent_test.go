package redisstore

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// twice is a redis.Hook that sends chosen commands twice, as go-redis does
// when the connection fails after the server ran a command: the server
// runs it twice and the caller sees the second reply.
type twice struct {
	match func(redis.Cmder) bool
	n     atomic.Int64 // commands sent twice
}

func (h *twice) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *twice) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.match == nil || !h.match(cmd) {
			return next(ctx, cmd)
		}
		h.n.Add(1)
		_ = next(ctx, cmd)
		return next(ctx, cmd)
	}
}

func (h *twice) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// isScript matches the commands that run script s.
func isScript(s *redis.Script) func(redis.Cmder) bool {
	return func(cmd redis.Cmder) bool {
		args := cmd.Args()
		if len(args) < 2 {
			return false
		}
		switch cmd.Name() {
		case "evalsha":
			return args[1] == s.Hash()
		case "eval":
			src, _ := args[1].(string)
			sum := sha1.Sum([]byte(src))
			return hex.EncodeToString(sum[:]) == s.Hash()
		}
		return false
	}
}

// TestScriptsSafeToResend runs each script twice per call, as a client
// resending after a lost reply does, and checks that every call returns
// what one run returns.
func TestScriptsSafeToResend(t *testing.T) {
	c := newClient(t)
	h := &twice{}
	c.AddHook(h)
	s := newStore(t, c)
	ctx := t.Context()
	resend := func(sc *redis.Script) { h.match = isScript(sc) }

	// Create: no "already in use", no orphan; RejectNew still admits the
	// user's next login.
	resend(createScript)
	r1 := rec("rita", time.Hour)
	_, err := s.Create(ctx, r1, 2, sessions.RejectNew)
	require.NoError(t, err, "a resent Create")
	r2 := rec("rita", time.Hour)
	_, err = s.Create(ctx, r2, 2, sessions.RejectNew)
	require.NoError(t, err, "the user's second session under a limit of 2")
	_, err = s.Create(ctx, rec("rita", time.Hour), 2, sessions.RejectNew)
	require.ErrorIs(t, err, sessions.ErrLimitReached)
	list, err := s.UserSessions(ctx, "rita")
	require.NoError(t, err)
	assert.Len(t, list, 2)

	// A resent Create that evicted returns the evicted record, once.
	r3 := rec("rita", time.Hour)
	removed, err := s.Create(ctx, r3, 2, sessions.EvictOldest)
	require.NoError(t, err)
	require.Len(t, removed, 1, "the eviction of the first run")
	assert.Equal(t, r1.SealedID, removed[0].SealedID)

	// Delete returns the record, not ErrNotFound.
	resend(deleteScript)
	got, err := s.Delete(ctx, r2.ID)
	require.NoError(t, err, "a resent Delete")
	assert.Equal(t, r2.SealedID, got.SealedID)
	_, err = s.Load(ctx, r2.ID)
	require.ErrorIs(t, err, sessions.ErrNotFound)

	// DeleteUser returns every session it ended.
	resend(createScript)
	_, err = s.Create(ctx, rec("rita", time.Hour), 0, sessions.EvictOldest)
	require.NoError(t, err)
	resend(userScript)
	recs, err := s.DeleteUser(ctx, "rita")
	require.NoError(t, err, "a resent DeleteUser")
	assert.Len(t, recs, 2)
	recs, err = s.DeleteUser(ctx, "rita")
	require.NoError(t, err, "a second DeleteUser (a new call)")
	assert.Empty(t, recs)

	// Update and Activate are safe to run twice as they are.
	h.match = nil
	r4 := rec("sam", time.Hour)
	_, err = s.Create(ctx, r4, 0, sessions.EvictOldest)
	require.NoError(t, err)
	resend(updateScript)
	at := time.Now().Add(time.Minute)
	require.NoError(t, s.Update(ctx, r4.ID, at, map[string][]byte{"x": []byte("1")}, []string{"k"}))
	resend(activateScript)
	_, err = s.Activate(ctx, r4.ID, at.Add(10*time.Minute))
	require.NoError(t, err)
	h.match = nil
	got, err = s.Load(ctx, r4.ID)
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"x": []byte("1")}, got.Values)
	assert.WithinDuration(t, at.Add(10*time.Minute), got.LastActivity, time.Microsecond)

	n, users, err := s.Count(ctx, time.Now())
	require.NoError(t, err)
	assert.Equal(t, 1, n, "no orphan session")
	assert.Equal(t, 1, users)
	assert.Positive(t, h.n.Load())
}

// TestScriptsSafeToResendCluster checks the same on Cluster, where Create
// first writes the pointer with SET NX, and a resent SET NX finds it.
func TestScriptsSafeToResendCluster(t *testing.T) {
	cc := startCluster(t)
	h := &twice{}
	cc.AddHook(h)
	s := newStore(t, cc)
	ctx := t.Context()
	h.match = func(cmd redis.Cmder) bool {
		return cmd.Name() == "set" || isScript(createScript)(cmd) || isScript(deleteScript)(cmd)
	}
	r := rec("tom", time.Hour)
	_, err := s.Create(ctx, r, 1, sessions.RejectNew)
	require.NoError(t, err, "a Create whose SET NX and script were resent")
	// Another Store (no cached shard) finds it through the pointer.
	other, err := New(cc, WithPrefix(s.o.prefix))
	require.NoError(t, err)
	_, err = other.Load(ctx, r.ID)
	require.NoError(t, err)
	_, err = s.Create(ctx, rec("tom", time.Hour), 1, sessions.RejectNew)
	require.ErrorIs(t, err, sessions.ErrLimitReached)
	got, err := other.Delete(ctx, r.ID)
	require.NoError(t, err, "a resent Delete")
	assert.Equal(t, r.SealedID, got.SealedID)
	// An ID really in use is still refused.
	h.match = nil
	dup := rec("", time.Hour)
	_, err = s.Create(ctx, dup, 0, sessions.EvictOldest)
	require.NoError(t, err)
	_, err = s.Create(ctx, dup, 0, sessions.EvictOldest)
	require.ErrorContains(t, err, "already in use")
	assert.GreaterOrEqual(t, h.n.Load(), int64(4))
}

// lossy is a redis.Hook whose connections lose the reply to the next
// command that runs a chosen script once armed: the command reaches the
// server and runs, the reply is read off the socket and dropped, and the
// client sees io.EOF, on which go-redis resends the command on a new
// connection.
type lossy struct {
	sha     string
	armed   atomic.Bool
	dropped atomic.Int64
	dials   atomic.Int64
}

func (l *lossy) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		l.dials.Add(1)
		return &lossyConn{Conn: conn, l: l}, nil
	}
}

func (l *lossy) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (l *lossy) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

type lossyConn struct {
	net.Conn
	l    *lossy
	mu   sync.Mutex
	drop bool
}

func (c *lossyConn) Write(p []byte) (int, error) {
	if c.l.armed.Load() && bytes.Contains(p, []byte(c.l.sha)) && c.l.armed.CompareAndSwap(true, false) {
		c.mu.Lock()
		c.drop = true
		c.mu.Unlock()
	}
	return c.Conn.Write(p)
}

func (c *lossyConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	drop := c.drop
	c.drop = false
	c.mu.Unlock()
	if !drop {
		return c.Conn.Read(p)
	}
	// Wait for the reply (the server ran the script), then lose it.
	if _, err := c.Conn.Read(p); err != nil {
		return 0, err
	}
	c.l.dropped.Add(1)
	_ = c.Conn.Close()
	return 0, io.EOF
}

// TestLostReplyRetriedByClient loses the reply of Create, Delete and
// DeleteUser once each and lets go-redis resend them (its default
// MaxRetries): each call returns what the first run did.
func TestLostReplyRetriedByClient(t *testing.T) {
	newClient(t) // skips or fails without a server
	l := &lossy{}
	c := redis.NewClient(&redis.Options{Addr: testAddr})
	c.AddHook(l)
	t.Cleanup(func() { _ = c.Close() })
	s := newStore(t, c)
	ctx := t.Context()
	// Load the scripts into the server's cache first (a NOSCRIPT reply
	// would be lost instead).
	warm := rec("", time.Hour)
	_, err := s.Create(ctx, warm, 0, sessions.EvictOldest)
	require.NoError(t, err)
	_, err = s.Delete(ctx, warm.ID)
	require.NoError(t, err)
	_, err = s.DeleteUser(ctx, "nobody")
	require.NoError(t, err)
	lose := func(sc *redis.Script) {
		l.sha = sc.Hash()
		l.armed.Store(true)
	}

	lose(createScript)
	r1 := rec("uma", time.Hour)
	_, err = s.Create(ctx, r1, 1, sessions.RejectNew)
	require.NoError(t, err, "Create whose reply was lost")
	require.EqualValues(t, 1, l.dropped.Load(), "the reply was dropped")
	_, err = s.Load(ctx, r1.ID)
	require.NoError(t, err)

	lose(deleteScript)
	got, err := s.Delete(ctx, r1.ID)
	require.NoError(t, err, "Delete whose reply was lost")
	assert.Equal(t, r1.SealedID, got.SealedID)
	require.EqualValues(t, 2, l.dropped.Load())

	for range 2 {
		_, err = s.Create(ctx, rec("uma", time.Hour), 0, sessions.EvictOldest)
		require.NoError(t, err)
	}
	lose(userScript)
	recs, err := s.DeleteUser(ctx, "uma")
	require.NoError(t, err, "DeleteUser whose reply was lost")
	assert.Len(t, recs, 2)
	require.EqualValues(t, 3, l.dropped.Load())
	assert.GreaterOrEqual(t, l.dials.Load(), int64(4), "each lost reply cost a connection")

	n, _, err := s.Count(ctx, time.Now())
	require.NoError(t, err)
	assert.Zero(t, n)
}

// TestLostReplyTerminateRunsHooks: a Manager's Terminate and
// TerminateUser whose replies are lost still end their sessions with one
// hook run each.
func TestLostReplyTerminateRunsHooks(t *testing.T) {
	newClient(t)
	l := &lossy{}
	c := redis.NewClient(&redis.Options{Addr: testAddr})
	c.AddHook(l)
	t.Cleanup(func() { _ = c.Close() })
	s := newStore(t, c)
	m, err := sessions.NewManager(sessions.Config{Keys: testKeys, DisableAutoCleanup: true}, sessions.WithStore(s))
	require.NoError(t, err)
	var mu sync.Mutex
	ended := map[string]int{}
	m.OnTerminate(func(ev sessions.Event) {
		mu.Lock()
		ended[ev.SessionID]++
		mu.Unlock()
	})
	ctx := t.Context()
	var ids []string
	for range 3 {
		sess, err := m.Create(ctx, "vera", nil)
		require.NoError(t, err)
		ids = append(ids, sess.ID())
	}
	l.sha = deleteScript.Hash()
	l.armed.Store(true)
	require.NoError(t, m.Terminate(ctx, ids[0]), "Terminate whose reply was lost")
	l.sha = userScript.Hash()
	l.armed.Store(true)
	n, err := m.TerminateUser(ctx, "vera")
	require.NoError(t, err)
	assert.Equal(t, 2, n, "TerminateUser whose reply was lost")
	require.EqualValues(t, 2, l.dropped.Load())
	require.NoError(t, m.Close()) // waits for the hooks
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		assert.Equal(t, 1, ended[id], "hooks of %s", id)
	}
}

// TestReplyKeysHoldNoRawIDs: what a call leaves for its retries has a TTL
// and no session ID.
func TestReplyKeysHoldNoRawIDs(t *testing.T) {
	c := newClient(t)
	s := newStore(t, c)
	ctx := t.Context()
	r := rec("will", time.Hour)
	_, err := s.Create(ctx, r, 1, sessions.EvictOldest)
	require.NoError(t, err)
	r2 := rec("will", time.Hour)
	_, err = s.Create(ctx, r2, 1, sessions.EvictOldest) // evicts r
	require.NoError(t, err)
	_, err = s.Delete(ctx, r2.ID)
	require.NoError(t, err)
	var replies int
	iter := c.Scan(ctx, 0, s.o.prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		if !strings.Contains(key, "}:r:") {
			continue
		}
		replies++
		ttl := c.PTTL(ctx, key).Val()
		assert.True(t, ttl > 0 && ttl <= replyTTL, "reply key %s TTL %v", key, ttl)
		dump := c.Dump(ctx, key).Val()
		assert.NotContains(t, key+dump, r.ID)
		assert.NotContains(t, key+dump, r2.ID)
	}
	require.NoError(t, iter.Err())
	assert.Equal(t, 3, replies, "two Creates and a Delete")
}
