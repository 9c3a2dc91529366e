package redisstore

import (
	"bufio"
	"bytes"
	"context"
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

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// The tests in this file run sweepers as separate OS processes (this test
// binary started again with sweeperEnv set), all on one Redis under one
// prefix, each a Manager with the Redis store whose termination hook
// appends "<session ID> <reason> <pid>" to one shared file. A process can
// then be killed with SIGKILL mid-sweep, as a crash or an OOM kill would,
// and the file tells which process ran which ending's hooks, and how often.

// sweeperEnv, when set, makes the test binary a sweeper process: its value
// is the JSON-free configuration "addr|prefix|log file|lease|hook time".
const sweeperEnv = "REDISSTORE_SWEEPER_PROCESS"

func init() {
	// A sweeper process runs its sweeper instead of the tests.
	if cfg := os.Getenv(sweeperEnv); cfg != "" {
		os.Exit(runSweeperProcess(cfg))
	}
}

// runSweeperProcess is a sweeper process's main: it sweeps until SIGTERM
// (or two minutes), then closes its manager, which waits for pending hooks.
func runSweeperProcess(cfg string) int {
	f := strings.Split(cfg, "|")
	if len(f) != 5 {
		fmt.Fprintf(os.Stderr, "sweeper: bad %s %q\n", sweeperEnv, cfg)
		return 2
	}
	addr, prefix, logPath := f[0], f[1], f[2]
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
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	s, err := New(c, WithPrefix(prefix), WithLease(lease))
	if err != nil {
		fmt.Fprintln(os.Stderr, "sweeper:", err)
		return 1
	}
	m, err := sessions.NewManager(sessions.Config{
		Keys: testKeys, CleanupInterval: 20 * time.Millisecond, MaxSessionsPerUser: sessions.Unlimited,
	}, sessions.WithStore(s))
	if err != nil {
		fmt.Fprintln(os.Stderr, "sweeper:", err)
		return 1
	}
	pid := os.Getpid()
	m.OnTerminate(func(ev sessions.Event) {
		time.Sleep(hookTime) // a hook that does some work
		// One write with O_APPEND: lines of several processes never mix.
		if _, err := fmt.Fprintf(out, "%s %s %d\n", ev.SessionID, ev.Reason, pid); err != nil {
			fmt.Fprintln(os.Stderr, "sweeper: log:", err)
		}
	})
	fmt.Fprintf(out, "ready - %d\n", pid)
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
	stderr *bytes.Buffer
	done   chan struct{} // closed when it has exited
	err    error         // its exit status, once done
}

// startSweepers starts n sweeper processes on the Redis at addr under
// prefix, logging to logPath, and waits until each is ready. At the end of
// the test every one still running is killed.
func startSweepers(t *testing.T, n int, addr, prefix, logPath string, lease, hookTime time.Duration) []*sweeperProcess {
	t.Helper()
	cfg := strings.Join([]string{addr, prefix, logPath, lease.String(), hookTime.String()}, "|")
	ps := make([]*sweeperProcess, n)
	for i := range ps {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), sweeperEnv+"="+cfg)
		p := &sweeperProcess{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan struct{})}
		cmd.Stderr = &lockedWriter{w: p.stderr}
		require.NoError(t, cmd.Start())
		go func() {
			p.err = cmd.Wait()
			close(p.done)
		}()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-p.done
			if t.Failed() && p.stderr.Len() > 0 {
				t.Logf("sweeper %d stderr:\n%s", cmd.Process.Pid, tail(p.stderr.String(), 2000))
			}
		})
		ps[i] = p
	}
	require.Eventually(t, func() bool { return len(readHookFile(t, logPath).ready) == n }, 30*time.Second, 10*time.Millisecond,
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
		require.NoError(t, p.err, "sweeper %d: %s", p.cmd.Process.Pid, tail(p.stderr.String(), 2000))
	case <-time.After(30 * time.Second):
		t.Fatalf("sweeper %d did not stop within 30 s of SIGTERM", p.cmd.Process.Pid)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w.Len() > 1<<20 {
		return len(b), nil // enough to diagnose
	}
	return l.w.Write(b)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// hookFile is what the sweeper processes logged.
type hookFile struct {
	ready []int                      // pids of the processes ready
	runs  map[string][]int           // session ID → pid of each run of its hooks
	why   map[string]sessions.Reason // session ID → reason of its first run
	by    map[int]int                // pid → hook runs
	lines int
}

// readHookFile parses the shared hook log; a last line cut short (a
// process killed mid-write) is ignored.
func readHookFile(t *testing.T, path string) hookFile {
	t.Helper()
	h := hookFile{runs: map[string][]int{}, why: map[string]sessions.Reason{}, by: map[int]int{}}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return h
	}
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		w := strings.Fields(sc.Text())
		if len(w) != 3 {
			continue
		}
		pid, err := strconv.Atoi(w[2])
		if err != nil {
			continue
		}
		if w[0] == "ready" {
			h.ready = append(h.ready, pid)
			continue
		}
		h.lines++
		h.by[pid]++
		if _, ok := h.why[w[0]]; !ok {
			for r := sessions.ReasonLogout; r <= sessions.ReasonShutdown; r++ {
				if r.String() == w[1] {
					h.why[w[0]] = r
				}
			}
		}
		h.runs[w[0]] = append(h.runs[w[0]], pid)
	}
	require.NoError(t, sc.Err())
	return h
}

// createExpiring creates n sessions (users cycling over 100, every fifth
// anonymous) under prefix with the given idle timeout, from 8 goroutines,
// through a manager with no sweeper and no hook, and returns their IDs.
func createExpiring(t *testing.T, c redis.UniversalClient, prefix string, n int, idle time.Duration) map[string]bool {
	t.Helper()
	s, err := New(c, WithPrefix(prefix))
	require.NoError(t, err)
	m, err := sessions.NewManager(sessions.Config{
		Keys: testKeys, IdleTimeout: idle, DisableAutoCleanup: true, MaxSessionsPerUser: sessions.Unlimited,
	}, sessions.WithStore(s))
	require.NoError(t, err)
	defer m.Close()
	ids := make([]string, n)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				user := ""
				if i%5 != 0 {
					user = fmt.Sprint("user", i%100)
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
	set := make(map[string]bool, n)
	for _, id := range ids {
		set[id] = true
	}
	return set
}

// sweepFigures counts, for the sessions in ids, which never ran their
// hooks (lost), which ran them more than once (doubled), and of those,
// which ran them twice with one run by the killed (or frozen) process (the
// documented crash window: hooks run, not yet acknowledged).
type sweepFigures struct {
	sessions, runs, lost, doubled, crashWindow, unknown int
	// patterns counts the doubled endings by who ran them, in order: "K"
	// the killed (or frozen) process, "S" a survivor; "SK" ran first on a
	// survivor, then on the killed process.
	patterns map[string]int
}

func figuresOf(h hookFile, ids map[string]bool, killed int) sweepFigures {
	f := sweepFigures{sessions: len(ids), runs: h.lines}
	for id := range ids {
		if len(h.runs[id]) == 0 {
			f.lost++
		}
	}
	for id, pids := range h.runs {
		if !ids[id] {
			f.unknown++
		}
		if len(pids) < 2 {
			continue
		}
		byKilled := 0
		var pattern strings.Builder
		for _, p := range pids {
			if p == killed {
				byKilled++
				pattern.WriteByte('K')
			} else {
				pattern.WriteByte('S')
			}
		}
		if f.patterns == nil {
			f.patterns = map[string]int{}
		}
		f.patterns[pattern.String()]++
		if len(pids) == 2 && byKilled == 1 {
			f.crashWindow++
		} else {
			f.doubled++
		}
	}
	return f
}

func (f sweepFigures) String() string {
	return fmt.Sprintf("%d sessions, %d hook runs, %d lost, %d doubled, %d in the crash window, %d unknown; doubled by who ran them %v",
		f.sessions, f.runs, f.lost, f.doubled, f.crashWindow, f.unknown, f.patterns)
}

// sweepRedis starts a redis-server of the test's own and returns it with a
// client, closed at the end of the test.
func sweepRedis(t *testing.T) (*redisProcess, *redis.Client) {
	srv := startRedis(t)
	c := redis.NewClient(&redis.Options{Addr: srv.addr})
	t.Cleanup(func() { _ = c.Close() })
	return srv, c
}

// awaitAllRun waits until the hook log names n endings, then two leases
// more, in case some claim comes back; it reports whether all n ran.
func awaitAllRun(t *testing.T, logPath string, n int, lease time.Duration) bool {
	t.Helper()
	ok := assert.Eventually(t, func() bool { return len(readHookFile(t, logPath).runs) >= n },
		45*time.Second, 20*time.Millisecond)
	settle := time.Now().Add(2 * lease)
	require.Eventually(t, func() bool { return time.Now().After(settle) }, 10*time.Second, 10*time.Millisecond)
	return ok
}

// TestSweeperProcessesOneKilled: three sweeper processes with a short
// lease and hooks of ~1.5 ms share the expiry of 5,000 sessions; one is
// killed with SIGKILL mid-sweep. Every ending runs its hooks; exactly once,
// except endings whose hooks the killed process ran but had not
// acknowledged (run again by a survivor once the lease lapsed).
func TestSweeperProcessesOneKilled(t *testing.T) {
	const n, lease, hookTime, idle = 5000, 1500 * time.Millisecond, 1500 * time.Microsecond, time.Second
	start := time.Now()
	srv, c := sweepRedis(t)
	const prefix = "procs:"
	logPath := filepath.Join(t.TempDir(), "hooks.log")
	ps := startSweepers(t, 3, srv.addr, prefix, logPath, lease, hookTime)
	victim := ps[0].cmd.Process.Pid

	ids := createExpiring(t, c, prefix, n, idle)
	created := time.Now()
	// Kill the victim once it has run the hooks of some endings, while it
	// still holds claims.
	var atKill hookFile
	require.Eventually(t, func() bool {
		atKill = readHookFile(t, logPath)
		return atKill.by[victim] >= 100
	}, 30*time.Second, 2*time.Millisecond, "the victim never ran 100 hooks")
	claimsAtKill := len(keysMatching(t, c, prefix, "}:c:"))
	require.NoError(t, ps[0].cmd.Process.Kill())
	<-ps[0].done
	t.Logf("killed %d %v after the sessions were created, having run %d hooks (%d in all); %d claims outstanding",
		victim, time.Since(created).Round(time.Millisecond), atKill.by[victim], atKill.lines, claimsAtKill)
	assert.Less(t, atKill.lines, n, "the sweep was over before the kill")

	// Wait until every ending ran its hooks, then two leases more, in case
	// some claim comes back.
	ok := awaitAllRun(t, logPath, n, lease)
	for _, p := range ps[1:] {
		p.stop(t)
	}
	h := readHookFile(t, logPath)
	f := figuresOf(h, ids, victim)
	t.Logf("%v; runs by process %v; %v in all", f, h.by, time.Since(start).Round(time.Millisecond))
	require.True(t, ok, "endings never handled: %v", f)
	assert.Zero(t, f.lost, "endings lost")
	assert.Zero(t, f.unknown, "hooks for sessions never created")
	assert.Zero(t, f.doubled, "endings whose hooks ran twice outside the crash window")
	for id, r := range h.why {
		if ids[id] {
			assert.Equal(t, sessions.ReasonIdle, r)
		}
	}
	assert.Empty(t, keysMatching(t, c, prefix, "}:c:"), "claims left unacknowledged")
	assert.Empty(t, keysMatching(t, c, prefix, "}:s:"), "sessions left live")
}

// TestSweeperProcessPaused: three sweeper processes share 3,000 expiries;
// one is frozen (SIGSTOP, as a long GC pause or a VM migration would) for
// twice the lease, mid-sweep, then resumes. Its claims lapse while it is
// frozen and the others take them over: every ending runs its hooks, and
// once resumed, the frozen process runs no hook of a claim whose lease
// ended (it checks before each ending); only the hook it was running when
// frozen may run twice that way. Hooks it ran before the freeze whose
// acknowledgement had not landed run again on a survivor, as after a
// crash.
func TestSweeperProcessPaused(t *testing.T) {
	const n, lease, hookTime, idle = 3000, 1500 * time.Millisecond, 1500 * time.Microsecond, time.Second
	start := time.Now()
	srv, c := sweepRedis(t)
	const prefix = "paused:"
	logPath := filepath.Join(t.TempDir(), "hooks.log")
	ps := startSweepers(t, 3, srv.addr, prefix, logPath, lease, hookTime)
	frozen := ps[0].cmd.Process.Pid

	ids := createExpiring(t, c, prefix, n, idle)
	var atStop hookFile
	require.Eventually(t, func() bool {
		atStop = readHookFile(t, logPath)
		return atStop.by[frozen] >= 100
	}, 30*time.Second, 2*time.Millisecond, "the process to freeze never ran 100 hooks")
	require.NoError(t, ps[0].cmd.Process.Signal(syscall.SIGSTOP))
	t.Cleanup(func() { _ = ps[0].cmd.Process.Signal(syscall.SIGCONT) })
	stoppedAt := time.Now()
	claims := len(keysMatching(t, c, prefix, "}:c:"))
	require.Eventually(t, func() bool { return time.Since(stoppedAt) > 2*lease }, 10*time.Second, 10*time.Millisecond)
	mid := readHookFile(t, logPath)
	require.NoError(t, ps[0].cmd.Process.Signal(syscall.SIGCONT))
	t.Logf("froze %d for %v having run %d hooks (%d in all, %d claims outstanding); %d in all when it resumed",
		frozen, time.Since(stoppedAt).Round(time.Millisecond), atStop.by[frozen], atStop.lines, claims, mid.lines)
	assert.Less(t, atStop.lines, n, "the sweep was over before the freeze")

	ok := awaitAllRun(t, logPath, n, lease)
	for _, p := range ps {
		p.stop(t)
	}
	h := readHookFile(t, logPath)
	f := figuresOf(h, ids, frozen)
	t.Logf("%v (window: one run by the frozen process); runs by process %v; %v in all", f, h.by, time.Since(start).Round(time.Millisecond))
	require.True(t, ok, "endings never handled: %v", f)
	assert.Zero(t, f.lost, "endings lost")
	assert.Zero(t, f.unknown, "hooks for sessions never created")
	assert.Zero(t, f.doubled, "endings whose hooks ran twice, neither run by the frozen process")
	// "KS": run by the frozen process before the freeze, not acknowledged
	// yet, then by a survivor: the crash window. "SK": run by a survivor,
	// then by the frozen process once resumed: only the hook it was running
	// when frozen may be one.
	assert.LessOrEqual(t, f.patterns["SK"], 1, "endings the frozen process ran after its leases ended")
	assert.Empty(t, keysMatching(t, c, prefix, "}:c:"), "claims left unacknowledged")
}

// TestSweeperProcessBacklog: one sweeper process finds 3,000 endings due
// at once, whose hooks (1 ms each) take twice its 1.5 s lease: no crash,
// so every ending runs its hooks exactly once.
func TestSweeperProcessBacklog(t *testing.T) {
	const n, lease, hookTime, idle = 3000, 1500 * time.Millisecond, time.Millisecond, 50 * time.Millisecond
	start := time.Now()
	srv, c := sweepRedis(t)
	const prefix = "backlog:"
	logPath := filepath.Join(t.TempDir(), "hooks.log")
	ids := createExpiring(t, c, prefix, n, idle)
	due := time.Now().Add(idle)
	require.Eventually(t, func() bool { return time.Now().After(due) }, 5*time.Second, time.Millisecond)
	ps := startSweepers(t, 1, srv.addr, prefix, logPath, lease, hookTime)

	ok := awaitAllRun(t, logPath, n, lease)
	ps[0].stop(t)
	h := readHookFile(t, logPath)
	f := figuresOf(h, ids, 0)
	t.Logf("%v; %v in all", f, time.Since(start).Round(time.Millisecond))
	require.True(t, ok, "endings never handled: %v", f)
	assert.Zero(t, f.lost, "endings lost")
	assert.Zero(t, f.doubled, "endings whose hooks ran twice")
	assert.Equal(t, n, f.runs)
	assert.Empty(t, keysMatching(t, c, prefix, "}:c:"), "claims left unacknowledged")
}

// keysMatching returns the keys under prefix that contain part.
func keysMatching(t *testing.T, c redis.UniversalClient, prefix, part string) []string {
	var out []string
	for _, k := range keysUnder(t, c, prefix) {
		if strings.Contains(k, part) {
			out = append(out, k)
		}
	}
	return out
}
