package faultproxy

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// redisAddr is the Redis server the proxy is tested against.
const redisAddr = "127.0.0.1:6379"

// direct returns a client of the Redis server itself, bypassing any proxy.
// Without a server it fails the test in CI and skips it elsewhere.
func direct(t *testing.T) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: redisAddr})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		if os.Getenv("CI") != "" {
			t.Fatalf("redis at %s: %v", redisAddr, err)
		}
		t.Skipf("no Redis at %s (%v); start one with: redis-server --port 6379 --save \"\" --appendonly no --daemonize yes", redisAddr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// setup checks for goroutine leaks at the end of the test, and returns a
// client of Redis, a proxy in front of it (closed at the end) and a fresh
// key prefix whose keys are deleted at the end.
func setup(t *testing.T) (*redis.Client, *Proxy, string) {
	t.Helper()
	// Registered first, so it runs after every other cleanup.
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	d := direct(t)
	p, err := Start(redisAddr)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "faultproxy-" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		keys, _ := d.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			_ = d.Del(context.Background(), keys...).Err()
		}
	})
	return d, p, prefix
}

// client returns a go-redis client through the proxy, closed at the end.
func client(t *testing.T, p *Proxy, opt redis.Options) *redis.Client {
	opt.Addr = p.Addr()
	c := redis.NewClient(&opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestPassThrough: with no fault, commands of every reply shape, pipelines
// and large values go through unchanged, in RESP2 and RESP3.
func TestPassThrough(t *testing.T) {
	d, p, prefix := setup(t)
	ctx := t.Context()
	for _, protocol := range []int{2, 3} {
		c := client(t, p, redis.Options{Protocol: protocol})
		k := prefix + "h" + string(rune('0'+protocol))
		require.NoError(t, c.HSet(ctx, k, "a", "1", "b", "2").Err())
		require.Equal(t, map[string]string{"a": "1", "b": "2"}, c.HGetAll(ctx, k).Val()) // a map in RESP3
		_, err := c.Get(ctx, prefix+"missing").Result()
		require.ErrorIs(t, err, redis.Nil)
		v, err := c.Eval(ctx, "return {1, {'x', false}, 'y', redis.status_reply('OK')}", nil).Result()
		require.NoError(t, err)
		require.Equal(t, []any{int64(1), []any{"x", nil}, "y", "OK"}, v)
		big := strings.Repeat("0123456789", 200_000) // 2 MB
		require.NoError(t, c.Set(ctx, prefix+"big", big, 0).Err())
		require.Equal(t, big, c.Get(ctx, prefix+"big").Val())
		cmds, err := c.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for range 500 {
				pl.Incr(ctx, k+"n")
			}
			return nil
		})
		require.NoError(t, err)
		require.EqualValues(t, 500, cmds[499].(*redis.IntCmd).Val())
		require.Error(t, c.Do(ctx, "NOSUCHCOMMAND").Err())
		require.Equal(t, "PONG", c.Ping(ctx).Val(), "an error reply does not shift later replies")
	}
	require.Equal(t, "500", d.Get(ctx, prefix+"h3n").Val())
	require.Empty(t, p.Dropped())
}

// TestDropReplyRunsOnce: a dropped reply leaves the command run on the
// server while the client sees a lost connection; with go-redis's default
// retries the client sends it again and it runs twice.
func TestDropReplyRunsOnce(t *testing.T) {
	d, p, prefix := setup(t)
	ctx := t.Context()
	k := prefix + "n"

	noRetry := client(t, p, redis.Options{MaxRetries: -1})
	require.NoError(t, noRetry.Ping(ctx).Err())
	p.DropReply(Command("incr"))
	err := noRetry.Incr(ctx, k).Err()
	require.ErrorIs(t, err, io.EOF, "the client sees the connection close")
	require.Equal(t, "1", d.Get(ctx, k).Val(), "the server ran the command")
	require.Equal(t, []string{"incr"}, p.Dropped())
	require.EqualValues(t, 2, noRetry.Incr(ctx, k).Val(), "one drop only; the client reconnects")

	retrying := client(t, p, redis.Options{}) // go-redis default: 3 retries
	p.DropReply(Command("INCR"))
	n, err := retrying.Incr(ctx, k).Result()
	require.NoError(t, err)
	require.EqualValues(t, 4, n, "retried after the lost reply: the command ran twice")
	require.Equal(t, []string{"incr", "incr"}, p.Dropped())
}

// TestDropReplyFilter: the drop hits only the selected command; others,
// before and after it on the same connection, pass.
func TestDropReplyFilter(t *testing.T) {
	d, p, prefix := setup(t)
	ctx := t.Context()
	c := client(t, p, redis.Options{MaxRetries: -1, PoolSize: 1})
	p.DropReply(Command("SET").And(ArgContains(prefix + "target")))
	require.NoError(t, c.Set(ctx, prefix+"other", "1", 0).Err())
	require.NoError(t, c.Incr(ctx, prefix+"target").Err(), "INCR is not SET")
	err := c.Set(ctx, prefix+"target", "x", 0).Err()
	require.Error(t, err)
	require.Equal(t, "x", d.Get(ctx, prefix+"target").Val())
	require.NoError(t, c.Set(ctx, prefix+"target", "y", 0).Err(), "one drop only")
	require.Equal(t, []string{"set"}, p.Dropped())

	// In a pipeline, the connection closes at the dropped reply: the
	// client sees the pipeline fail, and the server ran everything up to
	// the dropped command (what follows it may or may not have run when
	// the connection closed).
	p.DropReply(ArgContains(prefix + "p5"))
	_, err = c.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for i := range 10 {
			pl.Set(ctx, prefix+"p"+string(rune('0'+i)), i, 0)
		}
		return nil
	})
	require.Error(t, err)
	require.EqualValues(t, 6, d.Exists(ctx, func() []string {
		var ks []string
		for i := range 6 {
			ks = append(ks, prefix+"p"+string(rune('0'+i)))
		}
		return ks
	}()...).Val(), "the server ran the pipeline up to the dropped command")
}

// TestDropReplySkipsErrors: a script run as EVALSHA that the server does
// not know answers NOSCRIPT, which passes; the EVAL go-redis sends next is
// the command whose reply is dropped, after the script ran once.
func TestDropReplySkipsErrors(t *testing.T) {
	d, p, prefix := setup(t)
	ctx := t.Context()
	c := client(t, p, redis.Options{MaxRetries: -1})
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	// A script the server has never seen: a unique comment.
	script := redis.NewScript("-- " + hex.EncodeToString(b) + "\nreturn redis.call('INCR', KEYS[1])")
	p.DropReply(Scripts())
	err := script.Run(ctx, c, []string{prefix + "s"}).Err()
	require.Error(t, err)
	require.Equal(t, "1", d.Get(ctx, prefix+"s").Val())
	require.Equal(t, []string{"eval"}, p.Dropped(), "EVALSHA's NOSCRIPT passed, EVAL's reply was dropped")

	// The script is cached now: EVALSHA runs it and is the one dropped.
	p.DropReply(Scripts().And(ArgContains(script.Hash())))
	require.Error(t, script.Run(ctx, c, []string{prefix + "s"}).Err())
	require.Equal(t, "2", d.Get(ctx, prefix+"s").Val())
	require.Equal(t, []string{"eval", "evalsha"}, p.Dropped())
}

// TestStall: a stalled proxy answers nothing, so a client times out;
// after Release (or the StallFor duration) traffic flows again, and bytes
// held during the stall are delivered, not lost.
func TestStall(t *testing.T) {
	d, p, prefix := setup(t)
	ctx := t.Context()
	c := client(t, p, redis.Options{ReadTimeout: 100 * time.Millisecond, MaxRetries: -1})
	require.NoError(t, c.Ping(ctx).Err())

	p.Stall()
	start := time.Now()
	err := c.Set(ctx, prefix+"held", "1", 0).Err()
	var ne interface{ Timeout() bool }
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "want a timeout, got %v", err)
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
	require.Zero(t, d.Exists(ctx, prefix+"held").Val(), "nothing reached the server during the stall")
	p.Release()
	// The SET read before the stall began is delivered now (the client has
	// given up on that connection).
	require.Eventually(t, func() bool { return d.Exists(ctx, prefix+"held").Val() == 1 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, client(t, p, redis.Options{}).Ping(ctx).Err())

	slow := client(t, p, redis.Options{ReadTimeout: 5 * time.Second})
	require.NoError(t, slow.Ping(ctx).Err())
	p.StallFor(200 * time.Millisecond)
	start = time.Now()
	require.NoError(t, slow.Ping(ctx).Err())
	require.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "held until the stall ended")
}

// TestStallOn: a stall armed on a command lets the commands before it
// through and holds that one, and everything after, until Release.
func TestStallOn(t *testing.T) {
	d, p, prefix := setup(t)
	ctx := t.Context()
	c := client(t, p, redis.Options{ReadTimeout: 100 * time.Millisecond, MaxRetries: -1})
	p.StallOn(Command("DEL"))
	require.NoError(t, c.Set(ctx, prefix+"a", "1", 0).Err())
	require.NoError(t, c.Set(ctx, prefix+"b", "1", 0).Err())
	require.Error(t, c.Del(ctx, prefix+"a").Err(), "DEL is held")
	require.Error(t, c.Set(ctx, prefix+"c", "1", 0).Err(), "and what follows it")
	require.EqualValues(t, 2, d.Exists(ctx, prefix+"a", prefix+"b", prefix+"c").Val())
	p.Reset()
	p.Release()
	require.NoError(t, client(t, p, redis.Options{}).Del(ctx, prefix+"b").Err(), "the stall was armed once")
	require.EqualValues(t, 1, d.Exists(ctx, prefix+"a", prefix+"b", prefix+"c").Val(), "the held DEL and SET were dropped by Reset")
}

// TestResetDropsHeld: Reset during a stall closes every connection and
// drops what the proxy held: the command never reaches the server.
func TestResetDropsHeld(t *testing.T) {
	d, p, prefix := setup(t)
	ctx := t.Context()
	c := client(t, p, redis.Options{ReadTimeout: 100 * time.Millisecond, MaxRetries: -1, PoolSize: 1})
	require.NoError(t, c.Ping(ctx).Err())
	require.Equal(t, 1, p.Conns())

	p.Stall()
	require.Error(t, c.Set(ctx, prefix+"lost", "1", 0).Err())
	require.GreaterOrEqual(t, p.Reset(), 1)
	p.Release()
	require.NoError(t, client(t, p, redis.Options{}).Ping(ctx).Err(), "a new connection works")
	require.Zero(t, d.Exists(ctx, prefix+"lost").Val(), "a reset drops what was held")

	// A reset cuts a connection at once: its next read fails.
	conn, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("PING\r\n"))
	require.NoError(t, err)
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "+PONG\r\n", line)
	require.GreaterOrEqual(t, p.Reset(), 1)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = r.ReadString('\n')
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "want the connection closed, got %v", err)
	require.Error(t, err)
	require.Eventually(t, func() bool { return p.Conns() == 0 }, time.Second, time.Millisecond)
	require.NoError(t, client(t, p, redis.Options{}).Ping(ctx).Err(), "the client reconnects")
}

// TestCloseUnderLoad: Close during a stall with clients blocked in flight
// returns, stops every goroutine (checked by setup) and frees the clients.
func TestCloseUnderLoad(t *testing.T) {
	_, p, prefix := setup(t)
	ctx := t.Context()
	c := client(t, p, redis.Options{ReadTimeout: 2 * time.Second, MaxRetries: -1, PoolSize: 8})
	require.NoError(t, c.Ping(ctx).Err())
	p.Stall()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() { errs <- c.Incr(ctx, prefix+string(rune('a'+i))).Err() })
	}
	require.Eventually(t, func() bool { return p.Conns() == 8 }, 5*time.Second, time.Millisecond)
	start := time.Now()
	require.NoError(t, p.Close())
	wg.Wait()
	close(errs)
	require.Less(t, time.Since(start), time.Second, "blocked clients were freed by Close, not by their timeout")
	for err := range errs {
		require.Error(t, err)
	}
	require.NoError(t, p.Close(), "Close is idempotent")
	late := client(t, p, redis.Options{MaxRetries: -1})
	require.Error(t, late.Ping(ctx).Err(), "the proxy no longer listens")
}
