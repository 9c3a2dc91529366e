package pgstore

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// sweepCount is how many sessions TestSweepUnderLoad lets expire: 3,000,
// or PGSTORE_SWEEP_N (the figure is 10,000, which takes about 25 s
// on a busy 2-core machine, mostly creating them).
func sweepCount(t *testing.T) int {
	v := os.Getenv("PGSTORE_SWEEP_N")
	if v == "" {
		return 3000
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "PGSTORE_SWEEP_N")
	require.Positive(t, n, "PGSTORE_SWEEP_N")
	return n
}

// TestSweepUnderLoad: three managers, each on its own pool (as three
// processes), sweep sweepCount expiries every 20 ms while logins, reads,
// writes and logouts go on through all three. Every ending runs its hooks
// exactly once, on one manager, with the right reason; the server answered
// no deadlock (40P01), serialization failure (40001) or any other error,
// and no manager saw a store error.
func TestSweepUnderLoad(t *testing.T) {
	const idle = 1500 * time.Millisecond
	sweepN := sweepCount(t)
	start := time.Now()
	c := newCluster(t, 3, sessions.Config{
		IdleTimeout: idle, CleanupInterval: 20 * time.Millisecond, MaxSessionsPerUser: 3,
		Cookie: sessions.CookieConfig{Insecure: true},
	})
	apps := []*app{newApp(t, c.ms[0]), newApp(t, c.ms[1]), newApp(t, c.ms[2])}
	ctx := t.Context()

	// Traffic: each worker logs in on one process, reads, writes and
	// reads on the others, and logs out on another.
	stop := make(chan struct{})
	var traffic sync.WaitGroup
	var logins, logouts atomic.Int64
	for w := range 4 {
		traffic.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				user := fmt.Sprintf("web%d", w)
				res, err := apps[i%3].try(t, "/login?user="+user, nil)
				if !assert.NoError(t, err) || !assert.Equal(t, http.StatusOK, res.code, res.body) {
					return
				}
				logins.Add(1)
				cookie := res.cookie(t)
				for j, path := range []string{"/read", "/set?k=n&v=1", "/read"} {
					res, err := apps[(i+j+1)%3].try(t, path, cookie)
					if !assert.NoError(t, err) || !assert.Equal(t, http.StatusOK, res.code, res.body) {
						return
					}
				}
				res, err = apps[(i+2)%3].try(t, "/logout", cookie)
				if !assert.NoError(t, err) || !assert.Equal(t, http.StatusOK, res.code, res.body) {
					return
				}
				logouts.Add(1)
			}
		})
	}

	// The sessions that expire: users cycling over 4,000 (two sessions
	// each, under the limit of 3), every fifth anonymous, created while the
	// three managers already sweep, by a fourth without a sweeper whose
	// pool does not wait for the WAL flush of each commit (this machine's
	// disk would make the creation take most of the test).
	seedPool := newPool(t, func(cfg *pgxpool.Config) { cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off" })
	seeder, err := sessions.NewManager(sessions.Config{
		Keys: testKeys, IdleTimeout: idle, MaxSessionsPerUser: 3, DisableAutoCleanup: true,
	}, sessions.WithStore(storeOn(t, seedPool, c.table)))
	require.NoError(t, err)
	seeder.OnTerminate(c.log.hook(3)) // its Creates end the user's sessions that expired meanwhile
	t.Cleanup(func() { _ = seeder.Close() })
	ids := make([]string, sweepN)
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := w; i < sweepN; i += 6 {
				user := ""
				if i%5 != 0 {
					user = fmt.Sprint("user", i%4000)
				}
				s, err := seeder.Create(ctx, user, map[string]any{"i": i})
				if !assert.NoError(t, err) {
					return
				}
				ids[i] = s.ID()
			}
		})
	}
	wg.Wait()
	created := time.Since(start)
	require.False(t, t.Failed())

	expired := func() int {
		c.log.mu.Lock()
		defer c.log.mu.Unlock()
		n := 0
		for _, id := range ids {
			if len(c.log.events[id]) > 0 {
				n++
			}
		}
		return n
	}
	ok := assert.Eventually(t, func() bool { return expired() == sweepN }, 60*time.Second, 20*time.Millisecond,
		"hooks ran for only some sessions")
	close(stop)
	traffic.Wait()
	require.NoError(t, seeder.Close())
	c.close()
	require.True(t, ok, "%d of %d endings handled", expired(), sweepN)

	c.log.requireOnce(t)
	byManager := map[int]int{}
	byReason := map[sessions.Reason]int{}
	for _, id := range ids {
		ev := c.log.events[id][0]
		byManager[c.log.by[id][0]]++
		assert.Contains(t, []sessions.Reason{sessions.ReasonIdle, sessions.ReasonEvicted}, ev.Reason)
	}
	for _, evs := range c.log.events {
		byReason[evs[0].Reason]++
	}
	t.Logf("%d expiries created in %v, all handled after %v; %d logins, %d logouts during the sweep; expiries by manager %v; all endings by reason %v",
		sweepN, created.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), logins.Load(), logouts.Load(), byManager, byReason)
	assert.Empty(t, c.tr.errorCodes(), "the server answered errors (40P01 deadlock, 40001 serialization...)")
	assert.Zero(t, c.storeErrors(), "store errors")
	assert.Positive(t, logins.Load())
	for i := range c.ms {
		assert.Positive(t, byManager[i], "manager %d swept none", i)
	}
	n, _, err := c.stores[0].Count(context.Background(), time.Now())
	require.NoError(t, err)
	assert.Zero(t, n, "sessions left live")
	var rows int
	require.NoError(t, c.pools[0].QueryRow(context.Background(), "SELECT count(*) FROM "+pgx.Identifier{c.table}.Sanitize()).Scan(&rows))
	assert.Zero(t, rows, "rows left (claims never acknowledged?)")
}
