package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// testAddr is the Redis server the tests use.
const testAddr = "127.0.0.1:6379"

const startHint = `redis-server --port 6379 --save "" --appendonly no --daemonize yes`

// newClient returns a client of the test server, closed at the end of the
// test. Without a server it fails the test in CI (CI set) and skips it
// elsewhere.
func newClient(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: testAddr})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		if os.Getenv("CI") != "" {
			t.Fatalf("redis at %s: %v", testAddr, err)
		}
		t.Skipf("no Redis at %s (%v); start one with: %s", testAddr, err, startHint)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newPrefix returns a random key prefix and deletes every key under it at
// the end of the test.
func newPrefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "test-" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() { deleteKeys(t, c, prefix) })
	return prefix
}

// deleteKeys deletes every key starting with prefix, with SCAN and DEL
// (one key per DEL, pipelined, so that it works on Cluster too).
func deleteKeys(t testing.TB, c redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys := keysUnder(t, c, prefix)
	for len(keys) > 0 {
		batch := keys[:min(len(keys), 1000)]
		keys = keys[len(batch):]
		_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range batch {
				p.Del(ctx, k)
			}
			return nil
		})
		require.NoError(t, err)
	}
}

// keysUnder returns the keys starting with prefix, except the reply keys
// of calls (P{k}:r:<token>, retry.go), which outlive the call on purpose
// and expire by themselves within replyTTL.
func keysUnder(t testing.TB, c redis.UniversalClient, prefix string) []string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if !strings.Contains(iter.Val(), "}:r:") {
			keys = append(keys, iter.Val())
		}
	}
	require.NoError(t, iter.Err())
	return keys
}

// newStore returns a Store on c under a fresh prefix.
func newStore(t testing.TB, c redis.UniversalClient, opts ...Option) *Store {
	t.Helper()
	s, err := New(c, append([]Option{WithPrefix(newPrefix(t, c))}, opts...)...)
	require.NoError(t, err)
	return s
}

// counter is a redis.Hook that counts round trips: each command sent alone
// and each pipeline counts one.
type counter struct{ n atomic.Int64 }

func (h *counter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// rec returns a live record for user with a fresh random ID, placed for
// user as PlaceID places it, whatever the number of shards (see placed).
func rec(user string, idle time.Duration) sessions.Record {
	now := time.Now()
	sealed := make([]byte, 40)
	_, _ = rand.Read(sealed)
	return sessions.Record{
		ID:           placed(newID(), user),
		SealedID:     sealed,
		UserID:       user,
		CreatedAt:    now,
		LastActivity: now,
		IdleTimeout:  idle,
		Values:       map[string][]byte{"k": []byte("v")},
	}
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// placed returns id with its first 16 bits (4 hex digits) those of user's
// hash: congruent to them modulo any number of shards, as PlaceID makes
// them modulo the store's.
func placed(id, user string) string {
	if user == "" {
		return id
	}
	return hashUser(user)[:4] + id[4:]
}

// freePort returns a loopback TCP port nobody listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}
