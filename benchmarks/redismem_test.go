package benchmarks

// Redis memory per live session, ours (redisstore) beside scs (redisstore),
// for issue 12's target and sizing table:
//
//	SESSIONS_BENCH_REDIS_MEMORY=1 go test -run '^TestRedisMemory$' -v ./benchmarks
//
// It starts a Redis of its own (redis-server from PATH, on a free loopback
// port, no persistence), so that nothing else's keys or commands are
// counted, makes 20,000 sessions with the payload of the other benchmarks
// through each library in turn and reports the INFO memory used_memory
// delta per session, the keys per session, and MEMORY USAGE of a sample of
// each kind of key (hash fields listed with their sizes).

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	redigo "github.com/gomodule/redigo/redis"
	goredis "github.com/redis/go-redis/v9"

	"github.com/tokyopredictor/sessions"
	"github.com/tokyopredictor/sessions/internal/benchkit"
	oursredis "github.com/tokyopredictor/sessions/redisstore"

	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
)

// privateRedis starts redis-server on a free loopback port and returns its
// address; it is shut down when t ends.
func privateRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed (Debian: apt-get install -y redis-server): %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	_ = l.Close()
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir())
	cmd.Stdout, cmd.Stderr = nil, os.Stderr
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + port
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	defer c.Close()
	for i := 0; ; i++ {
		if c.Ping(context.Background()).Err() == nil {
			return addr
		}
		if i == 100 {
			t.Fatalf("redis-server on %s does not answer", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func usedMemory(c goredis.UniversalClient) (int64, error) {
	info, err := c.Info(context.Background(), "memory").Result()
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no used_memory in INFO memory")
}

// keyKind names the kind of a key: hex runs, digit runs and hash tags
// replaced.
var (
	tagRE = regexp.MustCompile(`\{[^}]*\}`)
	hexRE = regexp.MustCompile(`[A-Za-z0-9_-]{40,}|[0-9a-fA-F]{8,}`)
	numRE = regexp.MustCompile(`[0-9]+`)
)

func keyKind(prefix, key string) string {
	k := strings.TrimPrefix(key, prefix)
	k = tagRE.ReplaceAllString(k, "{…}")
	if before, _, ok := strings.Cut(k, "}:r:"); ok { // ours: a reply key, named by a counter
		return before + "}:r:…"
	}
	k = hexRE.ReplaceAllString(k, "…")
	return numRE.ReplaceAllString(k, "#")
}

// describeKeys prints, for each kind of key under prefix, how many there
// are and MEMORY USAGE of a sample, with the fields of a sample hash.
func describeKeys(t *testing.T, c goredis.UniversalClient, prefix string, sessions int) {
	ctx := context.Background()
	kinds := map[string][]string{}
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		k := keyKind(prefix, iter.Val())
		kinds[k] = append(kinds[k], iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range kinds {
			if !yield(k) {
				return
			}
		}
	})
	for _, kind := range names {
		keys := kinds[kind]
		var sum int64
		sample := keys[:min(len(keys), 200)]
		for _, k := range sample {
			n, err := c.MemoryUsage(ctx, k, 0).Result()
			if err != nil {
				t.Fatal(err)
			}
			sum += n
		}
		typ, _ := c.Type(ctx, sample[0]).Result()
		enc, _ := c.ObjectEncoding(ctx, sample[0]).Result()
		ttl, _ := c.PTTL(ctx, sample[0]).Result()
		fmt.Printf("  %-28s %6d keys (%.2f per session)  %s/%s  MEMORY USAGE mean %.0f B (over %d)  TTL %v\n",
			kind, len(keys), float64(len(keys))/float64(sessions), typ, enc, float64(sum)/float64(len(sample)), len(sample), ttl.Round(time.Second))
		switch typ {
		case "hash":
			m, _ := c.HGetAll(ctx, sample[0]).Result()
			fields := slices.Sorted(func(yield func(string) bool) {
				for f := range m {
					if !yield(f) {
						return
					}
				}
			})
			for _, f := range fields {
				fmt.Printf("      field %-12q %3d B value  %.40q\n", f, len(m[f]), m[f])
			}
		case "string":
			v, _ := c.Get(ctx, sample[0]).Result()
			fmt.Printf("      value %d B\n", len(v))
		case "zset":
			n, _ := c.ZCard(ctx, sample[0]).Result()
			fmt.Printf("      %d members\n", n)
		case "set":
			n, _ := c.SCard(ctx, sample[0]).Result()
			fmt.Printf("      %d members\n", n)
		}
	}
}

func TestRedisMemory(t *testing.T) {
	if os.Getenv("SESSIONS_BENCH_REDIS_MEMORY") != "1" {
		t.Skip("set SESSIONS_BENCH_REDIS_MEMORY=1 to measure Redis memory per session")
	}
	const n = 20_000
	addr := privateRedis(t)
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	defer c.Close()
	ctx := context.Background()
	fmt.Printf("# Redis memory per live session, %d sessions each, payload user_id + saldo; %s\n", n, redisVersion(c))

	// measure returns used_memory per session once the keys matching
	// transient (if any) are gone, as they are after their TTL.
	measure := func(name, prefix, transient string, create func(i int) error) float64 {
		if err := c.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		// Warm up: scripts loaded, the allocator's first pages taken.
		if err := create(-1); err != nil {
			t.Fatal(err)
		}
		before, err := usedMemory(c)
		if err != nil {
			t.Fatal(err)
		}
		keys0, _ := c.DBSize(ctx).Result()
		if err := fill(n, create); err != nil {
			t.Fatal(err)
		}
		after, err := usedMemory(c)
		if err != nil {
			t.Fatal(err)
		}
		keys1, _ := c.DBSize(ctx).Result()
		per := float64(after-before) / n
		fmt.Printf("%s: %.0f B per session (used_memory +%d B), %.2f keys per session\n",
			name, per, after-before, float64(keys1-keys0)/n)
		describeKeys(t, c, prefix, n+1)
		if transient == "" {
			return per
		}
		if err := deleteKeys(c, transient); err != nil {
			t.Fatal(err)
		}
		after, err = usedMemory(c)
		if err != nil {
			t.Fatal(err)
		}
		keys1, _ = c.DBSize(ctx).Result()
		per = float64(after-before) / n
		fmt.Printf("%s, once the keys %s* have expired: %.0f B per session (used_memory +%d B), %.2f keys per session\n",
			name, transient, per, after-before, float64(keys1-keys0)/n)
		return per
	}

	// Ours: Manager.Start, as a login does, on redisstore.
	oursClient := goredis.NewClient(&goredis.Options{Addr: addr})
	defer oursClient.Close()
	st, err := oursredis.New(oursClient, oursredis.WithPrefix("o:"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := sessions.NewManager(oursConfig(), sessions.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ours := measure("ours (redisstore)", "o:", "o:{*}:r:", func(i int) error {
		user := benchkit.UserName(i + 1)
		_, err := m.Start(benchkit.NewRecorder(), benchkit.NewRequest(""), user, payload(user))
		return err
	})

	// scs: Load, two Puts and Commit, as scsLogin does, on its redisstore.
	pool := &redigo.Pool{MaxIdle: 8, Dial: func() (redigo.Conn, error) { return redigo.Dial("tcp", addr) }}
	defer pool.Close()
	sm := scs.New()
	sm.Store = redisstore.NewWithPrefix(pool, "s:")
	sm.IdleTimeout = 30 * time.Minute
	theirs := measure("scs (redisstore)", "s:", "", func(i int) error {
		_, err := scsLogin(sm, benchkit.UserName(i+1))
		return err
	})
	fmt.Printf("ours / scs: %.2f×\n", ours/theirs)
}

func redisVersion(c goredis.UniversalClient) string {
	info, _ := c.Info(context.Background(), "server").Result()
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return "Redis " + v
		}
	}
	return "Redis"
}
