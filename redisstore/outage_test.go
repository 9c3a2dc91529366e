package redisstore

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// redisProcess is a redis-server the test runs on a spare loopback port.
type redisProcess struct {
	addr string
	cmd  *exec.Cmd
}

// startRedis starts a redis-server without persistence on a free loopback
// port and stops it at the end of the test. Without the binary it fails in
// CI and skips elsewhere.
func startRedis(t *testing.T, args ...string) *redisProcess {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server not found: %v", err)
		}
		t.Skipf("redis-server not found (%v); install it (apt-get install -y redis-server) to run this test", err)
	}
	// A port taken between freePort and the server's bind (by another
	// test's server) makes the server exit, or worse, leaves another
	// server answering on it: start again on another port until the
	// server that answers is this one.
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		cmd := exec.Command(bin, append([]string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, args...)...)
		cmd.Dir = t.TempDir()
		require.NoError(t, cmd.Start())
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		p := &redisProcess{addr: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd}
		if ownServer(p.addr, cmd.Process.Pid, exited) {
			t.Cleanup(func() {
				_ = cmd.Process.Signal(syscall.SIGCONT)
				_ = cmd.Process.Kill()
				<-exited
			})
			return p
		}
		_ = cmd.Process.Kill()
		<-exited
		require.Less(t, attempt, 5, "redis-server did not start on a free port")
	}
}

// ownServer waits until the server on addr answers and is the process pid;
// false if that process exits or another answers for 10 s.
func ownServer(addr string, pid int, exited <-chan struct{}) bool {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		info, err := c.Info(ctx, "server").Result()
		cancel()
		if err == nil && strings.Contains(info, fmt.Sprintf("process_id:%d\r", pid)) {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// stop freezes the server (SIGSTOP): connections stay open but nothing is
// answered, as when a server hangs or the network drops packets.
func (p *redisProcess) stop() error { return p.cmd.Process.Signal(syscall.SIGSTOP) }

// cont lets a stopped server go on, with its data.
func (p *redisProcess) cont() error { return p.cmd.Process.Signal(syscall.SIGCONT) }

// startCluster starts a one-node Redis Cluster that serves every slot and
// returns a cluster client of it. One node is enough to check the scripts:
// they carry flags (see scripts.go) under which a cluster node refuses any
// key outside the slot of the script's first key.
func startCluster(t *testing.T) *redis.ClusterClient {
	t.Helper()
	p := startRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	ctx := t.Context()
	c := redis.NewClient(&redis.Options{Addr: p.addr})
	defer c.Close()
	require.NoError(t, c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err())
	require.Eventually(t, func() bool {
		info, err := c.ClusterInfo(ctx).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok")
	}, 10*time.Second, 10*time.Millisecond, "cluster did not come up")
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{p.addr}})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}
