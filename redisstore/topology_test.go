package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
)

// redisErr is a reply error as go-redis returns them.
type redisErr string

func (e redisErr) Error() string { return string(e) }
func (redisErr) RedisError()     {}

func TestIsTopologyError(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, err := range []error{
		refused,
		fmt.Errorf("wrapped: %w", refused),
		context.DeadlineExceeded,
		io.EOF,
		syscall.ECONNRESET,
		redisErr("CLUSTERDOWN The cluster is down"),
		redisErr("MOVED 3999 127.0.0.1:6381"),
		redisErr("ASK 3999 127.0.0.1:6381"),
		redisErr("TRYAGAIN Multiple keys request during rehashing of slot"),
		redisErr("READONLY You can't write against a read only replica."),
		redisErr("LOADING Redis is loading the dataset in memory"),
	} {
		assert.True(t, isTopologyError(err), "%v", err)
	}
	for _, err := range []error{
		nil,
		redis.Nil,
		context.Canceled,
		redisErr("ERR redisstore: session ID already in use"),
		redisErr("NOSCRIPT No matching script"),
		errors.New("redisstore: create: record without SealedID"),
	} {
		assert.False(t, isTopologyError(err), "%v", err)
	}
}

// TestReloaderThrottled checks that a burst of topology errors asks for
// one reload per reloadEvery, and that other errors ask for none.
func TestReloaderThrottled(t *testing.T) {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, DialTimeout: 50 * time.Millisecond})
	defer cc.Close()
	r := newReloader(cc)
	r.note(redisErr("ERR something else"))
	assert.Zero(t, r.reloads.Load())
	start := time.Now()
	for time.Since(start) < reloadEvery/2 {
		r.note(redisErr("CLUSTERDOWN The cluster is down"))
	}
	assert.EqualValues(t, 1, r.reloads.Load(), "one reload for a burst")
	time.Sleep(reloadEvery - time.Since(start) + 10*time.Millisecond)
	r.note(syscall.ECONNREFUSED)
	assert.EqualValues(t, 2, r.reloads.Load(), "a reload once reloadEvery has passed")
	// The hook sees the client's own errors.
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	time.Sleep(reloadEvery)
	_ = cc.Get(ctx, "k").Err()
	assert.EqualValues(t, 3, r.reloads.Load(), "the client's dial error asked for a reload")
}
