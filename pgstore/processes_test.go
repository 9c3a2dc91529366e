package pgstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// The test in this file runs sweepers as separate OS processes (this test
// binary started again with sweeperEnv set), all on one table, each a
// Manager with a pgstore whose claims and termination hooks are appended
// to one shared file:
//
//	ready <pid>
//	claim <key hex> <pid> <unix ns>      a record Expired returned to pid, with its lease end
//	hook <session ID> <reason> <pid> <unix ns>
//
// A process can then be killed with SIGKILL mid-sweep, as a crash or an
// OOM kill would, and the file tells which process claimed and handled
// which ending, when, and how often.

// sweeperEnv, when set, makes the test binary a sweeper process: its value
// is "url|table|log file|lease|hook time".
const sweeperEnv = "PGSTORE_SWEEPER_PROCESS"

func init() {
	if cfg := os.Getenv(sweeperEnv); cfg != "" {
		os.Exit(runSweeperProcess(cfg))
	}
}

// claimLogger is a Store that logs the records Expired hands out.
type claimLogger struct {
	*Store
	out *os.File
	pid int
}

func (c claimLogger) Expired(ctx context.Context, now time.Time, max int) ([]sessions.Record, error) {
	recs, err := c.Store.Expired(ctx, now, max)
	if len(recs) > 0 {
		var b strings.Builder
		for _, r := range recs {
			key, _, _ := strings.Cut(r.Claim, ".")
			fmt.Fprintf(&b, "claim %s %d %d\n", key, c.pid, r.LeaseEnd.UnixNano())
		}
		_, _ = c.out.WriteString(b.String()) // one write: lines of processes never mix
	}
	return recs, err
}

// runSweeperProcess is a sweeper process's main: it sweeps until SIGTERM
// (or two minutes), then closes its manager, which waits for pending hooks.
func runSweeperProcess(cfg string) int {
	f := strings.Split(cfg, "|")
	if len(f) != 5 {
		fmt.Fprintf(os.Stderr, "sweeper: bad %s %q\n", sweeperEnv, cfg)
		return 2
	}
	url, table, logPath := f[0], f[1], f[2]
	lease, err1 := time.ParseDuration(f[3])
	hookTime, err2 := time.ParseDuration(f[4])
	if err1 != nil || err2 != nil {
		fmt.Fprintf(os.Stderr, "sweeper: bad durations in %q\n", cfg)
		return 2
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	out, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sweeper:", err)
		return 1
	}
	defer out.Close()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sweeper:", err)
		return 1
	}
	defer pool.Close()
	s, err := New(pool, WithTable(table), WithLease(lease))
	if err != nil {
		fmt.Fprintln(os.Stderr, "sweeper:", err)
		return 1
	}
	pid := os.Getpid()
	m, err := sessions.NewManager(sessions.Config{
		Keys: testKeys, CleanupInterval: 20 * time.Millisecond, MaxSessionsPerUser: sessions.Unlimited,
	}, sessions.WithStore(claimLogger{Store: s, out: out, pid: pid}))
	if err != nil {
		fmt.Fprintln(os.Stderr, "sweeper:", err)
		return 1
	}
	m.OnTerminate(func(ev sessions.Event) {
		time.Sleep(hookTime) // a hook that does some work
		if _, err := fmt.Fprintf(out, "hook %s %s %d %d\n", ev.SessionID, ev.Reason, pid, time.Now().UnixNano()); err != nil {
			fmt.Fprintln(os.Stderr, "sweeper: log:", err)
		}
	})
	fmt.Fprintf(out, "ready %d\n", pid)
	select {
	case <-term:
	case <-time.After(2 * time.Minute):
		fmt.Fprintln(os.Stderr, "sweeper: never told to stop")
	}
	_ = m.Close()
	return 0
}

// sweeperProcess is a running sweeper process.
type sweeperProcess struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{} // closed when it has exited
	err    error         // its exit status, once done
}

// startSweepers starts n sweeper processes on table, logging to logPath,
// and waits until each is ready. At the end of the test every one still
// running is killed.
func startSweepers(t *testing.T, n int, table, logPath string, lease, hookTime time.Duration) []*sweeperProcess {
	t.Helper()
	cfg := strings.Join([]string{testURL(), table, logPath, lease.String(), hookTime.String()}, "|")
	ps := make([]*sweeperProcess, n)
	for i := range ps {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), sweeperEnv+"="+cfg)
		p := &sweeperProcess{cmd: cmd, stderr: &lockedBuffer{}, done: make(chan struct{})}
		cmd.Stderr = p.stderr
		require.NoError(t, cmd.Start())
		go func() {
			p.err = cmd.Wait()
			close(p.done)
		}()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-p.done
			if t.Failed() {
				t.Logf("sweeper %d stderr:\n%s", cmd.Process.Pid, p.stderr.String())
			}
		})
		ps[i] = p
	}
	require.Eventually(t, func() bool { return len(readSweepLog(t, logPath).ready) == n }, 30*time.Second, 10*time.Millisecond,
		"sweeper processes did not start")
	return ps
}

// stop asks p to stop (SIGTERM), which waits for its pending hooks, and
// waits until it exits.
func (p *sweeperProcess) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
		require.NoError(t, p.err, "sweeper %d: %s", p.cmd.Process.Pid, p.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("sweeper %d did not stop within 30 s of SIGTERM", p.cmd.Process.Pid)
	}
}

// lockedBuffer keeps the first 64 KiB written to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 64<<10 {
		l.b.Write(b)
	}
	return len(b), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// stamped is a process and a time.
type stamped struct {
	pid int
	at  time.Time
}

// sweepLog is what the sweeper processes logged.
type sweepLog struct {
	ready  []int
	claims map[string][]stamped // key hex → each claim, with its lease end
	hooks  map[string][]stamped // session ID → each run of its hooks
	reason map[string]string    // session ID → reason of its first run
	by     map[int]int          // pid → hook runs
}

// readSweepLog parses the shared log; a last line cut short (a process
// killed mid-write) is ignored.
func readSweepLog(t *testing.T, path string) sweepLog {
	t.Helper()
	l := sweepLog{claims: map[string][]stamped{}, hooks: map[string][]stamped{}, reason: map[string]string{}, by: map[int]int{}}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return l
	}
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		w := strings.Fields(sc.Text())
		num := func(i int) int64 {
			if i >= len(w) {
				return -1
			}
			n, err := strconv.ParseInt(w[i], 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
		switch {
		case len(w) == 2 && w[0] == "ready" && num(1) > 0:
			l.ready = append(l.ready, int(num(1)))
		case len(w) == 4 && w[0] == "claim" && num(2) > 0 && num(3) > 0:
			l.claims[w[1]] = append(l.claims[w[1]], stamped{int(num(2)), time.Unix(0, num(3))})
		case len(w) == 5 && w[0] == "hook" && num(3) > 0 && num(4) > 0:
			pid := int(num(3))
			l.hooks[w[1]] = append(l.hooks[w[1]], stamped{pid, time.Unix(0, num(4))})
			if _, ok := l.reason[w[1]]; !ok {
				l.reason[w[1]] = w[2]
			}
			l.by[pid]++
		}
	}
	require.NoError(t, sc.Err())
	return l
}

// createExpiring creates n sessions (one per user, every fifth anonymous)
// in table with the given idle timeout, from 6 goroutines,
// through a manager with no sweeper, and returns their IDs. Its Creates
// also end the user's sessions that expired meanwhile: it logs their
// hooks to logPath, as this process's.
func createExpiring(t *testing.T, table, logPath string, n int, idle time.Duration) []string {
	t.Helper()
	p := newPool(t, func(cfg *pgxpool.Config) { cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off" })
	m, err := sessions.NewManager(sessions.Config{
		Keys: testKeys, IdleTimeout: idle, DisableAutoCleanup: true, MaxSessionsPerUser: sessions.Unlimited,
	}, sessions.WithStore(storeOn(t, p, table)))
	require.NoError(t, err)
	out, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer out.Close()
	defer m.Close() // before out is closed: it waits for the hooks
	pid := os.Getpid()
	m.OnTerminate(func(ev sessions.Event) {
		_, err := fmt.Fprintf(out, "hook %s %s %d %d\n", ev.SessionID, ev.Reason, pid, time.Now().UnixNano())
		assert.NoError(t, err)
	})
	ids := make([]string, n)
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := w; i < n; i += 6 {
				user := ""
				if i%5 != 0 {
					user = fmt.Sprint("user", i)
				}
				s, err := m.Create(context.Background(), user, map[string]any{"i": i})
				if !assert.NoError(t, err) {
					return
				}
				ids[i] = s.ID()
			}
		})
	}
	wg.Wait()
	require.False(t, t.Failed())
	return ids
}

// TestSweeperProcessesOneKilled: three sweeper processes with a 3 s
// lease and hooks of ~1.5 ms share a backlog of 2,000 expired sessions;
// one is killed with SIGKILL mid-sweep while it holds claims. Every ending runs
// its hooks; exactly once, except endings whose hooks the killed process
// ran but had not acknowledged (run again by a survivor, the documented
// crash window). The claims the killed process held and had not handled
// are taken over by the survivors, and not before their lease ran out.
func TestSweeperProcessesOneKilled(t *testing.T) {
	const n, lease, hookTime, idle = 2000, 3 * time.Second, 1500 * time.Microsecond, 50 * time.Millisecond
	start := time.Now()
	p := newPool(t)
	table := newTable(t, p)
	storeOn(t, p, table) // migrated before the processes start
	logPath := filepath.Join(t.TempDir(), "sweep.log")
	// A backlog: every session due before the sweepers start, so that each
	// claims a batch far larger than it handles in a moment.
	ids := createExpiring(t, table, logPath, n, idle)
	created := time.Now()
	require.Eventually(t, func() bool { return time.Since(created) > idle }, time.Second, time.Millisecond)
	ps := startSweepers(t, 3, table, logPath, lease, hookTime)

	// Kill a process once it has run the hooks of some endings, while it
	// still holds claims it has not handled: freeze it, read what it did,
	// kill it.
	var victimProc *sweeperProcess
	require.Eventually(t, func() bool {
		l := readSweepLog(t, logPath)
		for _, sp := range ps {
			if pid := sp.cmd.Process.Pid; l.by[pid] >= 100 && len(unhandled(l, pid)) >= 20 {
				victimProc = sp
				return true
			}
		}
		return false
	}, 30*time.Second, 2*time.Millisecond, "no process ran 100 hooks while holding 20 more claims")
	victim := victimProc.cmd.Process.Pid
	require.NoError(t, victimProc.cmd.Process.Signal(syscall.SIGSTOP))
	atKill := readSweepLog(t, logPath)
	require.NoError(t, victimProc.cmd.Process.Kill())
	<-victimProc.done
	killedAt := time.Now()
	var claimedRows int
	require.NoError(t, p.QueryRow(t.Context(), "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()+" WHERE claim IS NOT NULL").Scan(&claimedRows))
	t.Logf("killed %d %v after the sessions were created, having run %d hooks; %d claimed rows outstanding",
		victim, killedAt.Sub(created).Round(time.Millisecond), atKill.by[victim], claimedRows)

	var l sweepLog
	ok := assert.Eventually(t, func() bool {
		l = readSweepLog(t, logPath)
		return len(l.hooks) >= n
	}, 45*time.Second, 20*time.Millisecond)
	settle := time.Now().Add(lease) // in case some claim comes back
	require.Eventually(t, func() bool { return time.Now().After(settle) }, 10*time.Second, 10*time.Millisecond)
	for _, sp := range ps {
		if sp != victimProc {
			sp.stop(t)
		}
	}
	l = readSweepLog(t, logPath)
	if !ok {
		logRows(t, p, table)
	}
	require.True(t, ok, "endings never handled: %d of %d", len(l.hooks), n)

	idSet := make(map[string]bool, n)
	for _, id := range ids {
		idSet[id] = true
	}
	var lost, doubled, crashWindow, takenOver int
	for _, id := range ids {
		runs := l.hooks[id]
		if len(runs) == 0 {
			lost++
			continue
		}
		if runs[0].pid == os.Getpid() {
			// Ended by a Create of the seeding manager, which classifies
			// what Create removed with the time it read before the call:
			// a session that expired during the call reads as evicted.
			assert.Contains(t, []string{"idle", "evicted"}, l.reason[id], "session %s", id)
		} else {
			assert.Equal(t, "idle", l.reason[id], "session %s", id)
		}
		byVictim := 0
		for _, r := range runs {
			if r.pid == victim {
				byVictim++
			}
		}
		switch {
		case len(runs) == 2 && byVictim == 1:
			crashWindow++
		case len(runs) > 1:
			doubled++
		}
	}
	for id := range l.hooks {
		assert.True(t, idSet[id], "hooks for a session never created: %s", id)
	}
	// The victim's claims it had not handled: each handled by a survivor,
	// not before the lease of the victim's claim ran out (the lease end
	// Expired gave; the victim may have extended it since).
	for key, claim := range unhandledAt(l, atKill, victim) {
		id := idOfKey(ids, key)
		require.NotEmpty(t, id, "claim of an unknown key %s", key)
		runs := l.hooks[id]
		require.NotEmpty(t, runs, "the victim's claim of %s was never taken over", id)
		for _, r := range runs {
			if r.pid != victim {
				assert.False(t, r.at.Before(claim.at), "taken over %v before the victim's claim's lease ended",
					claim.at.Sub(r.at))
				takenOver++
				break
			}
		}
	}
	t.Logf("%d sessions: %d lost, %d doubled, %d in the crash window, %d claims of the victim taken over; hook runs by process %v; %v in all",
		n, lost, doubled, crashWindow, takenOver, l.by, time.Since(start).Round(time.Millisecond))
	assert.Zero(t, lost, "endings lost")
	assert.Zero(t, doubled, "endings whose hooks ran twice outside the crash window")
	assert.Positive(t, takenOver, "no claim of the victim was taken over")
	var rows int
	require.NoError(t, p.QueryRow(t.Context(), "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&rows))
	assert.Zero(t, rows, "rows left: claims never acknowledged or sessions never swept")
}

// unhandled returns the keys the victim claimed (last claim by it) whose
// hooks it had not run, as of l.
func unhandled(l sweepLog, victim int) map[string]stamped {
	return unhandledAt(l, l, victim)
}

// unhandledAt returns the keys whose last claim in atKill was the
// victim's, and whose hooks the victim had not run by then (in atKill).
func unhandledAt(_ sweepLog, atKill sweepLog, victim int) map[string]stamped {
	ran := map[string]bool{}
	for id, runs := range atKill.hooks {
		for _, r := range runs {
			if r.pid == victim {
				ran[hex.EncodeToString(hashID(id))] = true
			}
		}
	}
	out := map[string]stamped{}
	for key, claims := range atKill.claims {
		last := claims[len(claims)-1]
		if last.pid == victim && !ran[key] {
			out[key] = last
		}
	}
	return out
}

// idOfKey returns the ID among ids whose key has the given hex.
func idOfKey(ids []string, key string) string {
	for _, id := range ids {
		if hex.EncodeToString(hashID(id)) == key {
			return id
		}
	}
	return ""
}

// logRows logs the rows left in table (on failure).
func logRows(t *testing.T, p *pgxpool.Pool, table string) {
	rows, err := p.Query(context.Background(), "SELECT encode(key, 'hex'), encode(claim, 'hex'), lease_end, deadline, now() FROM "+
		pgx.Identifier{table}.Sanitize()+" ORDER BY lease_end LIMIT 20")
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		v, err := rows.Values()
		require.NoError(t, err)
		t.Logf("row left: %v", v)
	}
}
