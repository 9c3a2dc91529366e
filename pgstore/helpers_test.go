package pgstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// testURL is the PostgreSQL the tests use; PGSTORE_TEST_URL overrides it.
func testURL() string {
	if u := os.Getenv("PGSTORE_TEST_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test"
}

// testKeys are the signing keys every manager of a test shares.
var testKeys = [][]byte{bytes.Repeat([]byte{7}, 32)}

// newPool returns a pool on the test server, closed at the end of the
// test. Without a server it fails the test in CI (CI set) and skips it
// elsewhere.
func newPool(t testing.TB, configure ...func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	return poolOn(t, testURL(), true, configure...)
}

// poolOn returns a pool on url, closed at the end of the test; with ping,
// it first checks that the server answers.
func poolOn(t testing.TB, url string, ping bool, configure ...func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	for _, c := range configure {
		c(cfg)
	}
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	if ping {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Ping(ctx); err != nil {
			p.Close()
			if os.Getenv("CI") != "" {
				t.Fatalf("PostgreSQL at %s: %v", url, err)
			}
			t.Skipf("no PostgreSQL at %s (%v); start one (apt-get install -y postgresql) or set PGSTORE_TEST_URL", url, err)
		}
	}
	t.Cleanup(p.Close)
	return p
}

// newTable returns a fresh table name and drops the table (and its schema
// table) at the end of the test.
func newTable(t testing.TB, p *pgxpool.Pool) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "pgstore_test_" + hex.EncodeToString(b)
	t.Cleanup(func() { dropTable(t, p, name) })
	return name
}

func dropTable(t testing.TB, p *pgxpool.Pool, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range []string{name, name + "_schema", name + "_replies"} {
		_, err := p.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{n}.Sanitize())
		require.NoError(t, err)
	}
}

// newStore returns a migrated Store on p over a fresh table.
func newStore(t testing.TB, p *pgxpool.Pool, opts ...Option) *Store {
	t.Helper()
	return storeOn(t, p, newTable(t, p), opts...)
}

// storeOn returns a migrated Store on p over table.
func storeOn(t testing.TB, p *pgxpool.Pool, table string, opts ...Option) *Store {
	t.Helper()
	s, err := New(p, append([]Option{WithTable(table)}, opts...)...)
	require.NoError(t, err)
	require.NoError(t, s.Migrate(context.Background()))
	return s
}

// rec returns a live record for user with a fresh random ID.
func rec(user string, idle time.Duration) sessions.Record {
	now := time.Now()
	sealed := make([]byte, 40)
	_, _ = rand.Read(sealed)
	return sessions.Record{
		ID:           newID(),
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
