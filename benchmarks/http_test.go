package benchmarks

// The HTTP-level benchmark of issue 12: a real net/http server on a
// loopback port, one process per variant pinned to CPU 0 with GOMAXPROCS=1,
// and wrk pinned to CPU 1 sending read hits of live sessions (each request
// carries the cookie of the next of many pre-created sessions). Rounds are
// interleaved: every round runs every variant once, in a rotated order.
//
//	benchmarks/http.sh                      # the real run (see there for the knobs)
//	go test -run '^TestHTTP$' ./benchmarks  # a smoke run of a few seconds
//
// Without SESSIONS_BENCH_HTTP=1, TestHTTP is a smoke run: every variant
// with 50 sessions for one second each, all at once, checking only that
// every request was answered 200. It needs wrk (Debian: apt-get install -y
// wrk); without it the test skips, or fails when CI is set.
//
// Environment of the real run (SESSIONS_BENCH_HTTP=1):
//
//	HTTP_ROUNDS    interleaved rounds (default 6)
//	HTTP_DURATION  seconds of each wrk run (default 5)
//	HTTP_CONNS     wrk connections (default 32; one wrk thread)
//	HTTP_SESSIONS  live sessions per variant (default 10000)
//	HTTP_VARIANTS  comma-separated subset of the variants (default all)
//	HTTP_PROFILE   a directory: after the rounds, one more run per variant
//	               with a CPU profile of the server, saved as <variant>.pprof
//	SESSIONS_BENCH_REDIS  Redis for the Redis variants (default 127.0.0.1:6379)

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	_ "net/http/pprof" // the server's profile endpoint, on a port of its own
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2/memstore"
	goredis "github.com/redis/go-redis/v9"

	"github.com/tokyopredictor/sessions"
)

const (
	httpEnv      = "SESSIONS_BENCH_HTTP"        // 1: the real run
	serveEnv     = "SESSIONS_BENCH_HTTP_SERVE"  // set in a server process: its variant
	serveNEnv    = "SESSIONS_BENCH_HTTP_N"      // its number of sessions
	serveOutEnv  = "SESSIONS_BENCH_HTTP_COOKIE" // the file it writes its cookies to
	listenPrefix = "httpbench-listening "
	resultPrefix = "httpbench-result "
	wrkInstall   = "apt-get install -y wrk"
)

// httpVariant is one server of the comparison.
type httpVariant struct {
	name  string
	redis bool
	build func(n int) (*instance, error)
}

var httpVariants = []httpVariant{
	{name: "bare", build: func(int) (*instance, error) { return bareInstance(), nil }},
	// bare-vary is the bare handler answering with Vary: Cookie, as a
	// session middleware must on a response that depends on the session:
	// touching the header makes net/http clone it, and the line is sent.
	{name: "bare-vary", build: func(int) (*instance, error) {
		in := bareInstance()
		h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header()["Vary"] = []string{"Cookie"}
			_, _ = w.Write(okBody)
		})
		in.handler = func(string) http.Handler { return h }
		return in, nil
	}},
	// bare-vary-live is bare-vary in a process that also holds ours-mem's
	// live sessions, which no request touches: what keeping them in memory
	// costs every request (the garbage collector marks them at every
	// cycle; they crowd the caches), apart from the Middleware's own work,
	// which is ours-mem's difference from it.
	{name: "bare-vary-live", build: func(n int) (*instance, error) {
		in, err := oursInstance(n, sessions.NewMemoryStore(), nil, nil)
		if err != nil {
			return nil, err
		}
		h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header()["Vary"] = []string{"Cookie"}
			_, _ = w.Write(okBody)
		})
		in.handler = func(string) http.Handler { return h }
		return in, nil
	}},
	{name: "ours-mem", build: func(n int) (*instance, error) {
		return oursInstance(n, sessions.NewMemoryStore(), nil, nil)
	}},
	{name: "scs-mem-idle", build: func(n int) (*instance, error) {
		p, err := newSCSPopulation(memstore.NewWithCleanupInterval(0), n)
		if err != nil {
			return nil, err
		}
		return scsInstance(p, 30*time.Minute, nil), nil
	}},
	{name: "ours-redis", redis: true, build: oursRedisInstance},
	{name: "scs-redis-idle", redis: true, build: func(n int) (*instance, error) {
		return scsRedisInstance(n, 30*time.Minute)
	}},
}

// wrkScript makes wrk send GET / with the cookies of the file named by its
// first argument, one after the other, and print one parsable line at the
// end. The requests are formatted once, in init.
const wrkScript = `
local reqs = {}
local i = 0
function init(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    if line ~= "" then
      reqs[#reqs + 1] = wrk.format("GET", "/", { ["Cookie"] = line })
    end
  end
  f:close()
  assert(#reqs > 0, "no cookies in " .. args[1])
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("` + resultPrefix + `requests=%d duration_us=%d status=%d connect=%d read=%d write=%d timeout=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`

// wrkResult is one wrk run.
type wrkResult struct {
	requests         int
	duration         time.Duration
	errors           int // non-2xx answers and socket errors
	p50, p99         time.Duration
	redisCmds        int64         // Redis commands meanwhile, every client's (commandstats: a script's own calls count too)
	redisCPU         int64         // Redis process CPU time meanwhile, µs (INFO cpu: I/O included)
	serverCPU        time.Duration // the server process's CPU time meanwhile (0: unknown)
	statusErr, sockE int
}

func (r wrkResult) rps() float64 { return float64(r.requests) / r.duration.Seconds() }

// cpuPerReq is the server's CPU time per request, µs.
func (r wrkResult) cpuPerReq() float64 {
	return float64(r.serverCPU.Microseconds()) / float64(r.requests)
}

func parseWrk(out string) (wrkResult, error) {
	var res wrkResult
	i := strings.Index(out, resultPrefix)
	if i < 0 {
		return res, fmt.Errorf("no result line in wrk's output:\n%s", out)
	}
	line, _, _ := strings.Cut(out[i+len(resultPrefix):], "\n")
	v := map[string]int{}
	for f := range strings.FieldsSeq(line) {
		k, s, _ := strings.Cut(f, "=")
		n, err := strconv.Atoi(s)
		if err != nil {
			return res, fmt.Errorf("wrk result %q: %v", line, err)
		}
		v[k] = n
	}
	res.requests = v["requests"]
	res.duration = time.Duration(v["duration_us"]) * time.Microsecond
	res.statusErr = v["status"]
	res.sockE = v["connect"] + v["read"] + v["write"] + v["timeout"]
	res.errors = res.statusErr + res.sockE
	res.p50 = time.Duration(v["p50_us"]) * time.Microsecond
	res.p99 = time.Duration(v["p99_us"]) * time.Microsecond
	if res.requests == 0 || res.duration == 0 {
		return res, fmt.Errorf("wrk sent nothing:\n%s", out)
	}
	return res, nil
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// canPin reports whether servers and wrk can have a CPU each.
func canPin() bool {
	_, err := exec.LookPath("taskset")
	return err == nil && runtime.NumCPU() >= 2
}

// pinned returns the command name and arguments that run name args on cpu,
// or unpinned when pin is false.
func pinned(pin bool, cpu string, name string, args ...string) (string, []string) {
	if !pin {
		return name, args
	}
	return "taskset", append([]string{"-c", cpu, name}, args...)
}

// server is a running server process.
type server struct {
	v       httpVariant
	addr    string // the application
	pprof   string // its profile endpoint
	cookies string // the file of its sessions' cookies
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	done    chan error
}

// startServer starts the server process of v with n sessions, pinned to CPU
// 0 with GOMAXPROCS=1 when pin is set, and waits until it listens.
func startServer(t *testing.T, v httpVariant, n int, dir string, pin bool) (*server, error) {
	s := &server{v: v, cookies: filepath.Join(dir, v.name+".cookies"), done: make(chan error, 1)}
	name, args := pinned(pin, "0", os.Args[0], "-test.run", "^TestHTTPServe$", "-test.count", "1", "-test.timeout", "0")
	s.cmd = exec.Command(name, args...)
	s.cmd.Env = append(os.Environ(), serveEnv+"="+v.name, serveNEnv+"="+strconv.Itoa(n), serveOutEnv+"="+s.cookies)
	if pin {
		s.cmd.Env = append(s.cmd.Env, "GOMAXPROCS=1")
	}
	s.cmd.Stderr = os.Stderr
	dieWithParent(s.cmd)
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), listenPrefix); ok {
				listening <- a
				continue
			}
			fmt.Fprintf(os.Stderr, "[%s] %s\n", v.name, sc.Text())
		}
		s.done <- s.cmd.Wait()
	}()
	select {
	case a := <-listening:
		s.addr, s.pprof, _ = strings.Cut(a, " ")
		return s, nil
	case err := <-s.done:
		return nil, fmt.Errorf("server %s exited before listening: %v", v.name, err)
	case <-time.After(10 * time.Minute):
		s.stop()
		return nil, fmt.Errorf("server %s: not listening after 10 minutes", v.name)
	}
}

// stop asks the server to close (it ends its sessions and exits when its
// stdin closes) and waits for it, killing it after 30 seconds.
func (s *server) stop() {
	_ = s.stdin.Close()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// redisStats is what Redis has counted so far: commands (but INFO) and its
// process's CPU time in µs. (Not commandstats' usec: a script's time
// includes that of the commands it calls, which count again on their own.)
type redisStats struct{ calls, cpu int64 }

func redisCmdStats(c goredis.UniversalClient) (st redisStats, err error) {
	info, err := c.Info(context.Background(), "commandstats", "cpu").Result()
	if err != nil {
		return st, err
	}
	for line := range strings.SplitSeq(info, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "used_cpu_sys:"); ok {
			f, _ := strconv.ParseFloat(v, 64)
			st.cpu += int64(f * 1e6)
		}
		if v, ok := strings.CutPrefix(line, "used_cpu_user:"); ok {
			f, _ := strconv.ParseFloat(v, 64)
			st.cpu += int64(f * 1e6)
		}
		_, stats, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(line, "cmdstat_") || strings.HasPrefix(line, "cmdstat_info:") {
			continue
		}
		for kv := range strings.SplitSeq(stats, ",") {
			k, val, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseInt(val, 10, 64)
			if k == "calls" {
				st.calls += n
			}
		}
	}
	return st, nil
}

// procCPU returns the CPU time (user and system, every thread) of process
// pid so far, from /proc (in clock ticks of 10 ms); 0 where there is none.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0
	}
	// rest starts at field 3 (state); utime and stime are fields 14 and 15.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// runWrk runs wrk against s for d seconds with conns connections, pinned to
// CPU 1 when pin is set. rc, when not nil, is the Redis whose command
// counts are taken around the run.
func runWrk(ctx context.Context, s *server, script string, d, conns int, pin bool, rc goredis.UniversalClient) (wrkResult, error) {
	name, args := pinned(pin, "1", "wrk", "-t1", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(d)+"s",
		"--timeout", "5s", "-s", script, "http://"+s.addr+"/", "--", s.cookies)
	var st0 redisStats
	if rc != nil {
		var err error
		if st0, err = redisCmdStats(rc); err != nil {
			return wrkResult{}, err
		}
	}
	cpu0 := procCPU(s.cmd.Process.Pid)
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk against %s: %v\n%s", s.v.name, err, out)
	}
	cpu1 := procCPU(s.cmd.Process.Pid)
	res, err := parseWrk(string(out))
	if err != nil {
		return res, err
	}
	if cpu0 > 0 {
		res.serverCPU = cpu1 - cpu0
	}
	if rc != nil {
		st1, err := redisCmdStats(rc)
		if err != nil {
			return res, err
		}
		res.redisCmds, res.redisCPU = st1.calls-st0.calls, st1.cpu-st0.cpu
	}
	if res.errors > 0 {
		return res, fmt.Errorf("%s: %d non-2xx answers, %d socket errors of %d requests:\n%s",
			s.v.name, res.statusErr, res.sockE, res.requests, out)
	}
	return res, nil
}

// TestHTTPServe is the server process of TestHTTP; it does nothing in a
// normal test run.
func TestHTTPServe(t *testing.T) {
	name := os.Getenv(serveEnv)
	if name == "" {
		t.Skip("the server process of TestHTTP")
	}
	i := slices.IndexFunc(httpVariants, func(v httpVariant) bool { return v.name == name })
	if i < 0 {
		t.Fatalf("no variant %q", name)
	}
	n := envInt(t, serveNEnv, 10_000)
	in, err := httpVariants[i].build(n)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if in.close != nil {
			in.close()
		}
	}()
	if err := os.WriteFile(os.Getenv(serveOutEnv), []byte(strings.Join(in.cookies, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	app, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	prof, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: in.handler(opReadHit), ReadHeaderTimeout: 10 * time.Second}
	psrv := &http.Server{Handler: http.DefaultServeMux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(app) }()
	go func() { _ = psrv.Serve(prof) }()
	runtime.GC() // the population's garbage is not the requests'
	fmt.Printf("%s%s %s\n", listenPrefix, app.Addr(), prof.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin) // until TestHTTP closes it
	_ = srv.Close()
	_ = psrv.Close()
}

// TestHTTP runs the HTTP-level comparison: a smoke run by default, the real
// one with SESSIONS_BENCH_HTTP=1 (see the top of this file).
func TestHTTP(t *testing.T) {
	if os.Getenv(serveEnv) != "" {
		t.Skip("in a server process")
	}
	real := os.Getenv(httpEnv) == "1"
	if _, err := exec.LookPath("wrk"); err != nil {
		msg := "wrk is not installed (Debian: " + wrkInstall + "); the HTTP-level benchmark needs it"
		if real || os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	pin := canPin()
	if real && !pin {
		t.Fatalf("the HTTP-level benchmark pins the server and wrk to a CPU each: it needs taskset and 2 CPUs (have %d)", runtime.NumCPU())
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "cookies.lua")
	if err := os.WriteFile(script, []byte(wrkScript), 0o600); err != nil {
		t.Fatal(err)
	}
	variants := httpVariants
	if s := os.Getenv("HTTP_VARIANTS"); s != "" && real {
		variants = nil
		for name := range strings.SplitSeq(s, ",") {
			i := slices.IndexFunc(httpVariants, func(v httpVariant) bool { return v.name == name })
			if i < 0 {
				t.Fatalf("HTTP_VARIANTS: no variant %q", name)
			}
			variants = append(variants, httpVariants[i])
		}
	}
	var rc goredis.UniversalClient
	if slices.ContainsFunc(variants, func(v httpVariant) bool { return v.redis }) {
		c, err := net.DialTimeout("tcp", redisAddr(), time.Second)
		if err != nil {
			if os.Getenv("CI") != "" || real {
				t.Fatalf("no Redis at %s: %v", redisAddr(), err)
			}
			t.Logf("no Redis at %s (%v): the Redis variants skip; start one with: %s", redisAddr(), err, redisHint)
			variants = slices.DeleteFunc(slices.Clone(variants), func(v httpVariant) bool { return v.redis })
		} else {
			_ = c.Close()
			rc = newGoRedis(nil)
			defer rc.Close()
		}
	}
	n := 50
	if real {
		n = envInt(t, "HTTP_SESSIONS", 10_000)
	}

	// Start every server, all at once; idle ones cost the others nothing.
	servers := make([]*server, len(variants))
	errs := make([]error, len(variants))
	var wg sync.WaitGroup
	for i, v := range variants {
		wg.Go(func() { servers[i], errs[i] = startServer(t, v, n, dir, pin) })
	}
	wg.Wait()
	defer func() { // all at once too
		var wg sync.WaitGroup
		for _, s := range servers {
			if s != nil {
				wg.Go(s.stop)
			}
		}
		wg.Wait()
	}()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	if !real {
		var wg sync.WaitGroup
		errs := make([]error, len(servers))
		res := make([]wrkResult, len(servers))
		for i, s := range servers {
			wg.Go(func() { res[i], errs[i] = runWrk(ctx, s, script, 1, 4, false, nil) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		for i, s := range servers {
			t.Logf("%s: %d requests, all answered 200", s.v.name, res[i].requests)
		}
		return
	}

	rounds := envInt(t, "HTTP_ROUNDS", 6)
	d := envInt(t, "HTTP_DURATION", 5)
	conns := envInt(t, "HTTP_CONNS", 32)
	redisFor := func(v httpVariant) goredis.UniversalClient {
		if v.redis {
			return rc
		}
		return nil
	}
	fmt.Printf("# %s; %s; %d CPUs; %d live sessions per variant; wrk -t1 -c%d -d%ds; %d rounds; server GOMAXPROCS=1 on CPU 0, wrk on CPU 1\n",
		runtime.Version(), cpuModel(), runtime.NumCPU(), n, conns, d, rounds)
	// A warm-up run each, not counted: connections, the server's heap.
	for _, s := range servers {
		if _, err := runWrk(ctx, s, script, min(d, 3), conns, pin, nil); err != nil {
			t.Fatal(err)
		}
	}
	results := map[string][]wrkResult{}
	for r := range rounds {
		for k := range servers {
			s := servers[(r+k)%len(servers)]
			res, err := runWrk(ctx, s, script, d, conns, pin, redisFor(s.v))
			if err != nil {
				t.Fatal(err)
			}
			results[s.v.name] = append(results[s.v.name], res)
			fmt.Printf("round %d %-15s %8.0f req/s  p50 %7s  p99 %7s  server %5.1f µs CPU/req, busy %3.0f%%%s\n", r+1, s.v.name, res.rps(),
				res.p50, res.p99, res.cpuPerReq(), 100*res.serverCPU.Seconds()/res.duration.Seconds(), redisNote(res))
		}
	}
	printHTTPTable(os.Stdout, variants, results)

	if pdir := os.Getenv("HTTP_PROFILE"); pdir != "" {
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, s := range servers {
			if err := profile(ctx, s, script, d, conns, pin, filepath.Join(pdir, s.v.name+".pprof")); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Printf("CPU profiles in %s: go tool pprof -top %s\n", pdir, filepath.Join(pdir, "ours-mem.pprof"))
	}
}

func redisNote(r wrkResult) string {
	if r.redisCmds == 0 {
		return ""
	}
	return fmt.Sprintf("  Redis %.2f cmds/req, %.1f µs CPU/req", float64(r.redisCmds)/float64(r.requests),
		float64(r.redisCPU)/float64(r.requests))
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// printHTTPTable prints the medians over the rounds as a Markdown table,
// with the best round's req/s (the least disturbed, on a shared machine).
// Each variant's ratio is the median of its per-round ratios to bare in the
// same round, so that a round slowed down for everyone does not count.
// "bare CPU ÷ CPU" is the same for the server's CPU time per request: the
// throughput ratio a saturated server would show, less sensitive than
// req/s to the server being descheduled on a shared machine.
func printHTTPTable(w io.Writer, variants []httpVariant, results map[string][]wrkResult) {
	fmt.Fprintf(w, "\n| variant | req/s (best round) | × bare (rounds' range) | p50 | p99 | server CPU µs/req | bare CPU ÷ CPU (range) | Redis cmds/req | Redis CPU µs/req |\n|---|---|---|---|---|---|---|---|---|\n")
	bare := results["bare"]
	for _, v := range variants {
		rs := results[v.name]
		var rps, p50, p99, ratio, cmds, cpu, scpu, cratio []float64
		for i, r := range rs {
			rps = append(rps, r.rps())
			p50 = append(p50, float64(r.p50))
			p99 = append(p99, float64(r.p99))
			if i < len(bare) {
				ratio = append(ratio, r.rps()/bare[i].rps())
				if r.serverCPU > 0 && bare[i].serverCPU > 0 {
					cratio = append(cratio, bare[i].cpuPerReq()/r.cpuPerReq())
				}
			}
			scpu = append(scpu, r.cpuPerReq())
			cmds = append(cmds, float64(r.redisCmds)/float64(r.requests))
			cpu = append(cpu, float64(r.redisCPU)/float64(r.requests))
		}
		rt, ct, rcmds, rcpu := "—", "—", "—", "—"
		if len(ratio) > 0 {
			rt = fmt.Sprintf("%.2f× (%.2f–%.2f)", median(ratio), slices.Min(ratio), slices.Max(ratio))
		}
		if len(cratio) > 0 {
			ct = fmt.Sprintf("%.2f× (%.2f–%.2f)", median(cratio), slices.Min(cratio), slices.Max(cratio))
		}
		if v.redis {
			rcmds, rcpu = fmt.Sprintf("%.2f", median(cmds)), fmt.Sprintf("%.1f", median(cpu))
		}
		fmt.Fprintf(w, "| %s | %.1fk (%.1fk) | %s | %s | %s | %.1f | %s | %s | %s |\n", v.name, median(rps)/1000, slices.Max(rps)/1000, rt,
			time.Duration(median(p50)).Round(time.Microsecond), time.Duration(median(p99)).Round(time.Microsecond),
			median(scpu), ct, rcmds, rcpu)
	}
}

// profile runs wrk against s while taking a CPU profile of the server.
func profile(ctx context.Context, s *server, script string, d, conns int, pin bool, file string) error {
	type got struct {
		b   []byte
		err error
	}
	ch := make(chan got, 1)
	go func() {
		time.Sleep(500 * time.Millisecond) // wrk has connected
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.pprof, max(d-1, 1)))
		if err != nil {
			ch <- got{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		ch <- got{b, err}
	}()
	if _, err := runWrk(ctx, s, script, d, conns, pin, nil); err != nil {
		return err
	}
	g := <-ch
	if g.err != nil {
		return g.err
	}
	return os.WriteFile(file, g.b, 0o644)
}
