package pgstore

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docSchema returns the SQL the package documentation shows.
func docSchema(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("doc.go")
	require.NoError(t, err)
	var b strings.Builder
	in := false
	for _, line := range strings.Split(string(src), "\n") {
		switch {
		case strings.HasPrefix(line, "// # Schema"):
			in = true
		case in && strings.HasPrefix(line, "// A test (TestSchemaInDocs)"):
			return b.String()
		case in && strings.HasPrefix(line, "//\t"):
			b.WriteString(strings.TrimPrefix(line, "//\t"))
			b.WriteString("\n")
		}
	}
	t.Fatal("no schema section in doc.go")
	return ""
}

var spaces = regexp.MustCompile(`\s+`)

func normalize(q string) string { return strings.TrimSpace(spaces.ReplaceAllString(q, " ")) }

// TestSchemaInDocs: the SQL in the package documentation is, statement for
// statement, what Migrate runs for the default table.
func TestSchemaInDocs(t *testing.T) {
	want := []string{expand(createVersions, DefaultTable)}
	for v, m := range migrations {
		for _, q := range m {
			want = append(want, expand(q, DefaultTable))
		}
		want = append(want, strings.Replace(expand(recordVersion, DefaultTable), "$1", fmt.Sprint(v+1), 1))
	}
	var got []string
	for _, q := range strings.Split(docSchema(t), ";") {
		if strings.TrimSpace(q) != "" {
			got = append(got, normalize(q))
		}
	}
	for i := range want {
		// The quoted names of the code read unquoted in the docs.
		want[i] = normalize(strings.ReplaceAll(want[i], `"`, ""))
	}
	assert.Equal(t, want, got)
}

// TestDocSchemaWorks: a table made by the documented SQL (as a team running
// its own migrations would) serves the store, and Migrate then finds
// nothing to do.
func TestDocSchemaWorks(t *testing.T) {
	p := newPool(t)
	table := newTable(t, p)
	sql := regexp.MustCompile(`\bsessions\b`).ReplaceAllString(docSchema(t), table)
	sql = regexp.MustCompile(`\bsessions_(schema|user|due|lease|replies|replies_op|replies_made)\b`).ReplaceAllString(sql, table+"_$1")
	ctx := t.Context()
	conn, err := p.Acquire(ctx)
	require.NoError(t, err)
	_, err = conn.Conn().PgConn().Exec(ctx, sql).ReadAll() // the simple protocol: several statements
	conn.Release()
	require.NoError(t, err)

	s, err := New(p, WithTable(table))
	require.NoError(t, err)
	r := rec("ada", time.Hour)
	_, err = s.Create(ctx, r, 3, 0)
	require.NoError(t, err)
	got, err := s.Load(ctx, r.ID)
	require.NoError(t, err)
	assert.Equal(t, r.SealedID, got.SealedID)

	require.NoError(t, s.Migrate(ctx))
	assert.Equal(t, []int{1, 2}, versions(t, s))
}

func versions(t *testing.T, s *Store) []int {
	t.Helper()
	rows, err := s.pool.Query(t.Context(), "SELECT version FROM "+pgx.Identifier{s.table + "_schema"}.Sanitize()+" ORDER BY version")
	require.NoError(t, err)
	v, err := pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	return v
}

// TestMigrateConcurrent: 12 Migrate calls at once, over three pools (as
// three processes starting together), on a table that does not exist yet:
// every one succeeds, the version is recorded once, and the store works.
func TestMigrateConcurrent(t *testing.T) {
	p0 := newPool(t)
	table := newTable(t, p0)
	pools := []*pgxpool.Pool{p0, newPool(t), newPool(t)}
	start := make(chan struct{})
	errs := make([]error, 12)
	var wg sync.WaitGroup
	for i := range errs {
		s, err := New(pools[i%3], WithTable(table))
		require.NoError(t, err)
		wg.Go(func() {
			<-start
			errs[i] = s.Migrate(t.Context())
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "Migrate %d", i)
	}
	s, err := New(p0, WithTable(table))
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2}, versions(t, s))
	require.NoError(t, s.Migrate(t.Context()), "Migrate again")
	assert.Equal(t, []int{1, 2}, versions(t, s))
	r := rec("", time.Hour)
	_, err = s.Create(t.Context(), r, 0, 0)
	require.NoError(t, err)
}

// TestMigrateRefusesNewerSchema: a table a newer release migrated is left
// alone, with ErrSchemaTooNew.
func TestMigrateRefusesNewerSchema(t *testing.T) {
	p := newPool(t)
	s := newStore(t, p)
	_, err := p.Exec(t.Context(), expand(recordVersion, s.table), SchemaVersion+1)
	require.NoError(t, err)
	err = s.Migrate(t.Context())
	require.ErrorIs(t, err, ErrSchemaTooNew)
	assert.Equal(t, []int{1, 2, 3}, versions(t, s))
}

// TestNewRejects: bad options and a nil pool are errors; New does not
// contact the server.
func TestNewRejects(t *testing.T) {
	p := poolOn(t, "postgres://nobody@127.0.0.1:1/none", false)
	for _, name := range []string{"", "1abc", "a-b", `x"; DROP TABLE y; --`, "s.t", strings.Repeat("a", 49)} {
		_, err := New(p, WithTable(name))
		assert.Error(t, err, "table %q", name)
	}
	_, err := New(p, WithLease(time.Microsecond))
	assert.Error(t, err)
	_, err = New(nil)
	assert.Error(t, err)
	s, err := New(p, WithTable("Sessions_2"), WithLease(time.Second))
	require.NoError(t, err)
	assert.NotNil(t, s)
}

// TestMigrateUpgrades: a table at version 1 (as the first release left
// it, with a session in it) is brought to the current version, and the
// session survives.
func TestMigrateUpgrades(t *testing.T) {
	p := newPool(t)
	table := newTable(t, p)
	ctx := t.Context()
	for _, q := range append([]string{createVersions}, migrations[0]...) {
		_, err := p.Exec(ctx, expand(q, table))
		require.NoError(t, err)
	}
	_, err := p.Exec(ctx, expand(recordVersion, table), 1)
	require.NoError(t, err)
	s, err := New(p, WithTable(table))
	require.NoError(t, err)
	r := rec("una", time.Hour)
	_, err = s.Create(ctx, r, 0, 0)
	require.NoError(t, err)
	require.Equal(t, []int{1}, versions(t, s))

	require.NoError(t, s.Migrate(ctx))
	assert.Equal(t, []int{1, 2}, versions(t, s))
	got, err := s.Delete(ctx, r.ID) // uses the replies table of version 2
	require.NoError(t, err)
	assert.Equal(t, r.SealedID, got.SealedID)
}
