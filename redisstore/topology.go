package redisstore

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// reloadEvery is the shortest time between two reloads of a Cluster
// client's slot map that the store asks for.
const reloadEvery = 100 * time.Millisecond

// reloader makes a Cluster client reload its slot map (which masters
// serve which slots) when a command fails in a way that says the map may
// be stale: a node that refuses connections or does not answer (killed,
// or failed over), CLUSTERDOWN, MOVED, ASK, TRYAGAIN, READONLY. go-redis
// reloads the map on its own only on MOVED and READONLY, and otherwise
// every ClusterStateReloadInterval (60 s by default); a master killed
// without a reload leaves every command for its slots failing until then.
// With the reloader the store follows a failover as soon as the cluster
// has promoted a replica. Reloads are asked for at most every reloadEvery,
// whatever the rate of errors.
type reloader struct {
	cc      *redis.ClusterClient
	last    atomic.Int64 // Unix nanoseconds of the last reload asked for
	reloads atomic.Int64 // how many were asked for
}

// newReloader returns a reloader of cc and adds it to cc's hooks, so that
// it sees every command's error, the store's or not.
func newReloader(cc *redis.ClusterClient) *reloader {
	r := &reloader{cc: cc}
	cc.AddHook(r)
	return r
}

// note asks for a reload when err says that the slot map may be stale and
// no reload was asked for within reloadEvery.
func (r *reloader) note(err error) {
	if r == nil || !isTopologyError(err) {
		return
	}
	now := time.Now().UnixNano()
	last := r.last.Load()
	if now-last < int64(reloadEvery) || !r.last.CompareAndSwap(last, now) {
		return
	}
	r.reloads.Add(1)
	// ReloadState reloads in the background, one reload at a time.
	r.cc.ReloadState(context.Background())
}

// isTopologyError reports whether err may come from a stale slot map: a
// network error talking to a node, or a cluster redirection or state error.
func isTopologyError(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) {
		return false
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	for _, p := range topologyErrorPrefixes {
		if redis.HasErrorPrefix(err, p) || strings.HasPrefix(err.Error(), p+" ") {
			return true
		}
	}
	return false
}

// topologyErrorPrefixes start the replies of a cluster node that does not
// serve the slot, or not now.
var topologyErrorPrefixes = []string{"CLUSTERDOWN", "MOVED", "ASK", "TRYAGAIN", "READONLY", "MASTERDOWN", "LOADING"}

// DialHook implements redis.Hook.
func (r *reloader) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (r *reloader) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		r.note(err)
		return err
	}
}

// ProcessPipelineHook implements redis.Hook.
func (r *reloader) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		r.note(err)
		return err
	}
}
