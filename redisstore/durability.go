package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotDurable is wrapped by the error a store with WithDurability returns
// when a change was made on the master but fewer replicas than asked for
// acknowledged it in time. The change is in effect on the master; it is
// lost if the master fails over to a replica that had not received it.
var ErrNotDurable = errors.New("redisstore: change not acknowledged by enough replicas")

// waitOption is what WithDurability sets.
type waitOption struct {
	replicas int
	timeout  time.Duration
}

// WithDurability makes every call that creates or ends sessions — Create
// (and the evictions it makes), Delete, DeleteUser, the claims of Expired,
// Ack and Extend — wait until at least replicas replicas of the master that
// made the change have acknowledged it (Redis WAIT, on the connection that
// made it) before returning success. A change acknowledged so survives a
// failover to any of those replicas: a logout is not undone, a login is not
// lost, an expiry is not handed out twice.
//
// When fewer replicas acknowledge within timeout, the call returns an error
// wrapping ErrNotDurable; the change has then been made on the master and
// may or may not survive a failover. Set replicas to at most the number of
// replicas each master has (more is never reached, and every such call
// fails after timeout), and timeout (1 ms or more) well below the client's
// ReadTimeout. Without this option Redis replicates asynchronously: a
// failover may lose the changes of the last moments before it.
//
// It costs every such call the time the slowest of the replicas counted
// takes to acknowledge (on a local network, a fraction of a millisecond).
// On Cluster, the changes are sent to the master of their slot as the
// client's slot map names it, in a pipeline with WAIT on one connection.
// It needs a client that sends a pipeline on one connection: a standalone,
// Sentinel (failover) or Cluster client, not a Ring.
func WithDurability(replicas int, timeout time.Duration) Option {
	return func(o *options) { o.wait = waitOption{replicas: replicas, timeout: timeout} }
}

// check validates WithDurability's arguments.
func (w waitOption) check() error {
	if w.replicas < 0 || (w.replicas > 0 && w.timeout < time.Millisecond) {
		return fmt.Errorf("redisstore: durability: %d replicas within %v", w.replicas, w.timeout)
	}
	return nil
}

// run runs script as script.Run does. When durable is true and the store
// has WithDurability, the script is followed, on the same connection to the
// master of keys[0], by WAIT; when too few replicas acknowledge, the
// returned command carries an error wrapping ErrNotDurable. Every store
// method that creates or ends sessions runs its script with durable true.
func (s *Store) run(ctx context.Context, durable bool, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	if !durable || s.o.wait.replicas == 0 {
		return script.Run(ctx, s.c, keys, args...)
	}
	var cmd *redis.Cmd
	err := s.durably(ctx, keys[0], func(p redis.Pipeliner) redis.Cmder {
		cmd = script.EvalSha(ctx, p, keys, args...)
		return cmd
	}, func(c redis.Scripter) error { return script.Load(ctx, c).Err() })
	if err != nil && (cmd == nil || cmd.Err() == nil) {
		if cmd == nil {
			cmd = redis.NewCmd(ctx)
		}
		cmd.SetErr(err)
	}
	return cmd
}

// maxRedirects bounds how often a durable change follows a MOVED reply.
const maxRedirects = 3

// durably sends the command queue adds to a pipeline, then WAIT, on one
// connection to the master of key. It follows MOVED and ASK (the command
// did not run) after the slot map is reloaded, loads the script with load
// on NOSCRIPT, and returns nil, the command's own error (a Redis error is
// returned as the command's, not here) or an error wrapping ErrNotDurable.
func (s *Store) durably(ctx context.Context, key string, queue func(p redis.Pipeliner) redis.Cmder, load func(c redis.Scripter) error) error {
	cc, cluster := s.c.(*redis.ClusterClient)
	var target interface {
		redis.Scripter
		Pipeline() redis.Pipeliner
	} = s.c
	loaded := false
	for attempt := 0; ; attempt++ {
		if cluster {
			node, err := cc.MasterForKey(ctx, key)
			if err != nil {
				s.topo.note(err)
				return err
			}
			target = node
		}
		p := target.Pipeline()
		cmd := queue(p)
		wait := redis.NewIntCmd(ctx, "wait", s.o.wait.replicas, s.o.wait.timeout.Milliseconds())
		_ = p.Process(ctx, wait)
		_, _ = p.Exec(ctx)
		err := cmd.Err()
		s.topo.note(err)
		switch {
		case err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") && load != nil && !loaded:
			loaded = true
			if err := load(target); err != nil {
				return fmt.Errorf("load script: %w", err)
			}
			continue
		case err != nil && cluster && attempt < maxRedirects && isRedirect(err):
			if err := s.followRedirect(ctx, cc, key, err); err != nil {
				return err
			}
			continue
		case err != nil && !errors.Is(err, redis.Nil) && !isRedisError(err):
			// The connection failed: the change may or may not have been
			// made, and is not known to be replicated.
			return fmt.Errorf("%w: %w", ErrNotDurable, err)
		}
		got, werr := wait.Result()
		if werr != nil {
			s.topo.note(werr)
			return fmt.Errorf("%w: WAIT: %w", ErrNotDurable, werr)
		}
		if got < int64(s.o.wait.replicas) {
			return fmt.Errorf("%w: %d of %d replicas acknowledged within %v; the change is made on the master and may be lost if it fails over",
				ErrNotDurable, got, s.o.wait.replicas, s.o.wait.timeout)
		}
		return nil
	}
}

// isRedirect reports whether err is a cluster node's answer that another
// node serves the slot: the command did not run.
func isRedirect(err error) bool {
	return redis.HasErrorPrefix(err, "MOVED") || redis.HasErrorPrefix(err, "ASK")
}

// isRedisError reports whether err is a reply of the server (the command
// reached it and was answered).
func isRedisError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

// followRedirect reloads the slot map after a MOVED or ASK reply and waits
// (briefly) until the map names the node the reply named as the master of
// key.
func (s *Store) followRedirect(ctx context.Context, cc *redis.ClusterClient, key string, redirect error) error {
	// "MOVED 3999 127.0.0.1:6381"
	f := strings.Fields(redirect.Error())
	if len(f) < 3 {
		return redirect
	}
	addr := f[2]
	deadline := time.Now().Add(time.Second)
	for {
		cc.ReloadState(ctx)
		node, err := cc.MasterForKey(ctx, key)
		if err == nil && node.Options().Addr == addr {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("slot map still stale after %w", redirect)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
