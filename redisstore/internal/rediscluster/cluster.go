// Package rediscluster starts a real Redis Cluster for tests: one
// redis-server process per node on spare loopback ports, masters with
// evenly split slots and replicas attached to them, as redis-cli --cluster
// create lays them out. It can SIGKILL a node and wait for its replica to
// take over. Every process and temporary directory is removed when the test
// ends.
package rediscluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Slots is the number of hash slots of a Redis Cluster.
const Slots = 16384

// Options describe the cluster to start.
type Options struct {
	Masters     int           // default 3
	Replicas    int           // replicas per master; default 1
	NodeTimeout time.Duration // cluster-node-timeout; default 1s
	// Args are more redis-server arguments for every node.
	Args []string
}

// Cluster is a running Redis Cluster. Its methods are safe for concurrent
// use.
type Cluster struct {
	t           testing.TB
	NodeTimeout time.Duration
	nodes       []*Node
}

// Node is one redis-server process of the cluster.
type Node struct {
	Addr string
	ID   string // cluster node ID
	bus  int    // cluster bus port
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// Start starts the cluster and waits until every node reports
// cluster_state:ok and every replica is in sync. Without redis-server it
// fails the test when the CI environment variable is set and skips it
// otherwise. Everything it started is stopped when the test ends.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	if o.Masters == 0 {
		o.Masters = 3
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.NodeTimeout == 0 {
		o.NodeTimeout = time.Second
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("rediscluster: redis-server not found: %v (apt-get install -y redis-server)", err)
		}
		t.Skipf("rediscluster: redis-server not found (%v); install it (apt-get install -y redis-server) to run this test", err)
	}
	c := &Cluster{t: t, NodeTimeout: o.NodeTimeout}
	t.Cleanup(c.stopAll)
	n := o.Masters * (1 + o.Replicas)
	for range n {
		c.nodes = append(c.nodes, c.startNode(bin, o))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.create(ctx, o); err != nil {
		t.Fatalf("rediscluster: %v", err)
	}
	return c
}

// startNode starts one node and waits until it answers. A port taken
// between freePort and the server's bind (by another test's server) makes
// the server exit: it is started again on other ports, and a server that
// answers is checked to be this one (its process ID).
func (c *Cluster) startNode(bin string, o Options) *Node {
	c.t.Helper()
	for attempt := 1; ; attempt++ {
		nd, err := c.tryNode(bin, o)
		if err == nil {
			return nd
		}
		if attempt == 5 {
			c.t.Fatalf("rediscluster: %v", err)
		}
	}
}

// errExited is tryNode's error for a server that exited at start.
var errExited = errors.New("exited at start (port taken?)")

func (c *Cluster) tryNode(bin string, o Options) (*Node, error) {
	port, bus := freePort(c.t), freePort(c.t)
	args := append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
		"--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", strconv.FormatInt(o.NodeTimeout.Milliseconds(), 10),
		"--save", "", "--appendonly", "no", "--loglevel", "warning",
		"--repl-diskless-sync-delay", "0",
	}, o.Args...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = c.t.TempDir()
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("rediscluster: start redis-server: %v", err)
	}
	nd := &Node{Addr: "127.0.0.1:" + strconv.Itoa(port), bus: bus, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(nd.done) }()
	cl := redis.NewClient(&redis.Options{Addr: nd.Addr, DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer cl.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		id, err := cl.Do(ctx, "CLUSTER", "MYID").Text()
		pid := -1
		if err == nil {
			pid, err = serverPID(ctx, cl)
		}
		cancel()
		select {
		case <-nd.done:
			return nil, fmt.Errorf("redis-server on %s %w", nd.Addr, errExited)
		default:
		}
		if err == nil && pid == cmd.Process.Pid {
			nd.ID = id
			return nd, nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-nd.done
			return nil, fmt.Errorf("redis-server on %s did not answer as itself: %v", nd.Addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serverPID returns the process ID of the server cl talks to.
func serverPID(ctx context.Context, cl *redis.Client) (int, error) {
	info, err := cl.Info(ctx, "server").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("no process_id in INFO server")
}

// create assigns slots, joins the nodes and attaches the replicas: the
// first Masters nodes are masters, the next ones replicas of master i mod
// Masters.
func (c *Cluster) create(ctx context.Context, o Options) error {
	clients := make([]*redis.Client, len(c.nodes))
	for i, nd := range c.nodes {
		clients[i] = redis.NewClient(&redis.Options{Addr: nd.Addr})
		defer clients[i].Close()
	}
	for i := range o.Masters {
		first, last := SlotRange(i, o.Masters)
		if err := clients[i].Do(ctx, "CLUSTER", "ADDSLOTSRANGE", first, last).Err(); err != nil {
			return fmt.Errorf("addslots on %s: %w", c.nodes[i].Addr, err)
		}
	}
	for i, cl := range clients {
		if err := cl.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			return fmt.Errorf("set-config-epoch on %s: %w", c.nodes[i].Addr, err)
		}
	}
	host, port0, _ := net.SplitHostPort(c.nodes[0].Addr)
	for _, cl := range clients[1:] {
		if err := cl.Do(ctx, "CLUSTER", "MEET", host, port0, c.nodes[0].bus).Err(); err != nil {
			return fmt.Errorf("meet: %w", err)
		}
	}
	// Every node must know every other before a replica can name its master.
	if err := poll(ctx, func() error {
		for i, cl := range clients {
			s, err := cl.ClusterNodes(ctx).Result()
			if err != nil {
				return err
			}
			if n := strings.Count(strings.TrimSpace(s), "\n") + 1; n != len(clients) || strings.Contains(s, "handshake") {
				return fmt.Errorf("%s knows %d of %d nodes", c.nodes[i].Addr, n, len(clients))
			}
		}
		return nil
	}); err != nil {
		return err
	}
	for i := o.Masters; i < len(clients); i++ {
		if err := clients[i].ClusterReplicate(ctx, c.nodes[i%o.Masters].ID).Err(); err != nil {
			return fmt.Errorf("replicate on %s: %w", c.nodes[i].Addr, err)
		}
	}
	return c.WaitHealthy(ctx)
}

// WaitHealthy waits until every live node reports cluster_state:ok and
// agrees on the masters, and every live replica's link to its master is
// up.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	return poll(ctx, func() error {
		var masters string
		for _, nd := range c.Live() {
			cl := redis.NewClient(&redis.Options{Addr: nd.Addr, MaxRetries: -1})
			info, err := cl.ClusterInfo(ctx).Result()
			if err == nil && !strings.Contains(info, "cluster_state:ok") {
				err = errors.New("cluster_state not ok")
			}
			var repl string
			if err == nil {
				repl, err = cl.Info(ctx, "replication").Result()
			}
			var view string
			if err == nil {
				view, err = masterView(ctx, cl)
			}
			_ = cl.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", nd.Addr, err)
			}
			if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
				return fmt.Errorf("%s: replica not in sync", nd.Addr)
			}
			// A master counts a replica for WAIT once it is online (it
			// has sent its first acknowledgement).
			for _, line := range strings.Split(repl, "\n") {
				if strings.HasPrefix(line, "slave") && strings.Contains(line, "ip=") && !strings.Contains(line, "state=online") {
					return fmt.Errorf("%s: replica not online: %s", nd.Addr, strings.TrimSpace(line))
				}
			}
			if masters != "" && view != masters {
				return fmt.Errorf("nodes disagree on masters: %s / %s", masters, view)
			}
			masters = view
		}
		return nil
	})
}

// masterView returns the addresses of the masters that serve slots and are
// not failed, as the node cl sees them, sorted by their first slot.
func masterView(ctx context.Context, cl *redis.Client) (string, error) {
	slots, err := cl.ClusterSlots(ctx).Result()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, s := range slots {
		if len(s.Nodes) > 0 {
			fmt.Fprintf(&b, "%d-%d:%s ", s.Start, s.End, s.Nodes[0].Addr)
		}
	}
	return b.String(), nil
}

// SlotRange returns the slots master i of n serves, as redis-cli --cluster
// create assigns them.
func SlotRange(i, n int) (first, last int) {
	per := float64(Slots) / float64(n)
	cursor := 0.0
	for j := 0; j <= i; j++ {
		if j > 0 {
			first = last + 1
		}
		last = int(math.Round(cursor + per - 1))
		if last > Slots-1 || j == n-1 {
			last = Slots - 1
		}
		last = max(last, first)
		cursor += per
	}
	return first, last
}

// Addrs returns the addresses of every node started, live or not.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, nd := range c.nodes {
		out[i] = nd.Addr
	}
	return out
}

// Live returns the nodes whose process still runs.
func (c *Cluster) Live() []*Node {
	var out []*Node
	for _, nd := range c.nodes {
		select {
		case <-nd.done:
		default:
			out = append(out, nd)
		}
	}
	return out
}

// Client returns a cluster client of every node, closed when the test
// ends. o may be nil; its Addrs are replaced.
func (c *Cluster) Client(o *redis.ClusterOptions) *redis.ClusterClient {
	if o == nil {
		o = &redis.ClusterOptions{}
	}
	o.Addrs = c.Addrs()
	cc := redis.NewClusterClient(o)
	c.t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// MasterOf returns the address of the master serving slot, as the live
// node at index 0 of Live sees it.
func (c *Cluster) MasterOf(ctx context.Context, slot int) (string, error) {
	for _, nd := range c.Live() {
		cl := redis.NewClient(&redis.Options{Addr: nd.Addr, MaxRetries: -1})
		slots, err := cl.ClusterSlots(ctx).Result()
		_ = cl.Close()
		if err != nil {
			continue
		}
		for _, s := range slots {
			if s.Start <= slot && slot <= s.End && len(s.Nodes) > 0 {
				return s.Nodes[0].Addr, nil
			}
		}
		return "", fmt.Errorf("slot %d not served", slot)
	}
	return "", errors.New("no live node answers")
}

// Masters returns the addresses of the masters serving slots.
func (c *Cluster) Masters(ctx context.Context) ([]string, error) {
	var out []string
	for _, nd := range c.Live() {
		cl := redis.NewClient(&redis.Options{Addr: nd.Addr, MaxRetries: -1})
		slots, err := cl.ClusterSlots(ctx).Result()
		_ = cl.Close()
		if err != nil {
			continue
		}
		seen := map[string]bool{}
		for _, s := range slots {
			if len(s.Nodes) > 0 && !seen[s.Nodes[0].Addr] {
				seen[s.Nodes[0].Addr] = true
				out = append(out, s.Nodes[0].Addr)
			}
		}
		return out, nil
	}
	return nil, errors.New("no live node answers")
}

// Kill sends SIGKILL to the node at addr and waits for the process to exit.
func (c *Cluster) Kill(addr string) error {
	for _, nd := range c.nodes {
		if nd.Addr == addr {
			if err := nd.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				return fmt.Errorf("kill %s: %w", addr, err)
			}
			<-nd.done
			return nil
		}
	}
	return fmt.Errorf("no node %s", addr)
}

// Stop sends SIGSTOP to the node at addr (it keeps its connections open
// and answers nothing); Cont resumes it.
func (c *Cluster) Stop(addr string) error { return c.signal(addr, syscall.SIGSTOP) }

// Cont resumes a node stopped by Stop.
func (c *Cluster) Cont(addr string) error { return c.signal(addr, syscall.SIGCONT) }

func (c *Cluster) signal(addr string, sig syscall.Signal) error {
	for _, nd := range c.nodes {
		if nd.Addr == addr {
			return nd.cmd.Process.Signal(sig)
		}
	}
	return fmt.Errorf("no node %s", addr)
}

// ReplicaOf returns the address of a live replica of the master at addr.
func (c *Cluster) ReplicaOf(ctx context.Context, addr string) (string, error) {
	cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer cl.Close()
	info, err := cl.Info(ctx, "replication").Result()
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(info, "\n") {
		// slave0:ip=127.0.0.1,port=6380,state=online,offset=..,lag=0
		if !strings.HasPrefix(line, "slave") || !strings.Contains(line, "ip=") {
			continue
		}
		var ip, port string
		for _, kv := range strings.Split(strings.TrimSpace(line[strings.Index(line, ":")+1:]), ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "ip":
				ip = v
			case "port":
				port = v
			}
		}
		return net.JoinHostPort(ip, port), nil
	}
	return "", fmt.Errorf("%s has no replica", addr)
}

// CutReplica cuts the replication link of the replica at addr and keeps
// it cut: the replica gets a wrong masterauth, so that it cannot
// reconnect, and its link to the master is killed. Writes to its master
// from then on never reach it, as when a replica lags; it can still be
// promoted when its master fails (its data is then older than the
// master's). It returns once the master has dropped the replica.
func (c *Cluster) CutReplica(ctx context.Context, addr string) error {
	cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer cl.Close()
	if err := cl.ConfigSet(ctx, "masterauth", "rediscluster-cut").Err(); err != nil {
		return fmt.Errorf("cut %s: %w", addr, err)
	}
	return poll(ctx, func() error {
		if err := cl.Do(ctx, "CLIENT", "KILL", "TYPE", "master").Err(); err != nil {
			return err
		}
		info, err := cl.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "master_link_status:down") {
			return errors.New("link still up")
		}
		return nil
	})
}

// stopAll kills every process; their directories are the test's TempDirs.
func (c *Cluster) stopAll() {
	for _, nd := range c.nodes {
		_ = nd.cmd.Process.Signal(syscall.SIGCONT)
		_ = nd.cmd.Process.Kill()
		<-nd.done
	}
}

// poll calls f every 20 ms until it returns nil or ctx ends, and returns
// f's last error then.
func poll(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// freePort returns a loopback TCP port nobody listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("rediscluster: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
