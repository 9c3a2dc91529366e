// Command targets reads `go test -bench` output of the benchmarks module
// (several runs) and checks the medians against the targets of issue 4.
//
// Usage:
//
//	go run ./cmd/targets results.txt
//
// It prints one line per target, with the measured ratio and "met" or
// "MISSED", and exits with status 0 whatever it found: it reports, it does
// not gate.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// results maps a benchmark name (without the -GOMAXPROCS suffix) and a unit
// to the values measured, one per run.
type results map[string]map[string][]float64

var procSuffix = regexp.MustCompile(`-\d+$`)

func parse(r io.Reader) (results, error) {
	res := results{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := procSuffix.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), "")
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			if res[name] == nil {
				res[name] = map[string][]float64{}
			}
			res[name][f[i+1]] = append(res[name][f[i+1]], v)
		}
	}
	return res, sc.Err()
}

// median returns the median of name's unit, and whether there was one.
func (r results) median(name, unit string) (float64, bool) {
	vs := slices.Clone(r[name][unit])
	if len(vs) == 0 {
		return 0, false
	}
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2], true
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2, true
}

// table prints the medians of the request benchmarks at 1k live sessions
// as a Markdown table: µs per request, and allocations.
func table(r results) {
	libs := []string{"bare", "ours-mem", "scs-mem", "scs-mem-idle", "gorilla-cookie", "ours-redis", "scs-redis", "scs-redis-idle"}
	ops := []string{"read-hit", "read-hit-lean", "write-hit", "miss", "bad-cookie", "start", "end"}
	fmt.Print("| live=1k, µs/request (allocs) |")
	for _, l := range libs {
		fmt.Printf(" %s |", l)
	}
	fmt.Print("\n|---|")
	for range libs {
		fmt.Print("---:|")
	}
	fmt.Println()
	for _, op := range ops {
		for _, mode := range []string{"serial", "parallel"} {
			fmt.Printf("| %s %s |", op, mode)
			for _, l := range libs {
				name := fmt.Sprintf("Request/live=1k/op=%s/mode=%s/lib=%s", op, mode, l)
				ns, ok := r.median(name, "ns/op")
				if !ok {
					fmt.Print(" – |")
					continue
				}
				al, _ := r.median(name, "allocs/op")
				fmt.Printf(" %.2f (%.0f) |", ns/1e3, al)
			}
			fmt.Println()
		}
	}
	fmt.Println()
}

type checker struct {
	r              results
	missed, absent int
}

func (c *checker) report(target string, ok bool, format string, args ...any) {
	verdict := "met"
	if !ok {
		verdict = "MISSED"
		c.missed++
	}
	fmt.Printf("%-7s %-58s %s\n", verdict, target, fmt.Sprintf(format, args...))
}

// get returns the medians of the names' unit, or false (and says so) when
// one is absent from the results.
func (c *checker) get(target, unit string, names ...string) ([]float64, bool) {
	out := make([]float64, len(names))
	for i, n := range names {
		v, ok := c.r.median(n, unit)
		if !ok {
			fmt.Printf("%-7s %-58s no %s for %s in the results\n", "n/a", target, unit, n)
			c.absent++
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: targets results.txt")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	res, err := parse(f)
	_ = f.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	c := &checker{r: res}
	table(res)
	req := func(live, op, mode, lib string) string {
		return fmt.Sprintf("Request/live=%s/op=%s/mode=%s/lib=%s", live, op, mode, lib)
	}
	if v, ok := c.get("floor", "ns/op", "Floor/op=securecookie-decode/mode=serial"); ok {
		fmt.Printf("%-7s %-58s %.0f ns\n", "info", "one securecookie decode (serial)", v[0])
	}
	for _, live := range []string{"1k", "100k", "1M"} {
		if _, ok := res[req(live, "read-hit", "serial", "ours-mem")]; !ok {
			continue
		}
		t := "read-hit overhead ≤ 1/20 of scs+IdleTimeout's, live=" + live
		if v, ok := c.get(t, "ns/op", req(live, "read-hit", "serial", "bare"), req(live, "read-hit", "serial", "ours-mem"), req(live, "read-hit", "serial", "scs-mem-idle")); ok {
			ours, scs := v[1]-v[0], v[2]-v[0]
			c.report(t, ours <= scs/20, "ours %.0f ns, scs %.0f ns over bare %.0f ns: 1/%.1f", ours, scs, v[0], scs/ours)
		}
		t = "read-hit allocs ≤ bare + 4, live=" + live
		if v, ok := c.get(t, "allocs/op", req(live, "read-hit", "serial", "bare"), req(live, "read-hit", "serial", "ours-mem")); ok {
			c.report(t, v[1]-v[0] <= 4, "%+.0f allocs (bare %.0f, ours %.0f)", v[1]-v[0], v[0], v[1])
		}
		t = "parallel read-hit ≥ 1.6× serial throughput, live=" + live
		if v, ok := c.get(t, "ns/op", req(live, "read-hit", "serial", "ours-mem"), req(live, "read-hit", "parallel", "ours-mem"), req(live, "read-hit", "serial", "bare"), req(live, "read-hit", "parallel", "bare")); ok {
			c.report(t, v[0]/v[1] >= 1.6, "%.2f× (bare handler: %.2f×)", v[0]/v[1], v[2]/v[3])
		}
		t = "  the same through the lean harness, live=" + live
		if v, ok := c.get(t, "ns/op", req(live, "read-hit-lean", "serial", "ours-mem"), req(live, "read-hit-lean", "parallel", "ours-mem"), req(live, "read-hit-lean", "serial", "bare"), req(live, "read-hit-lean", "parallel", "bare")); ok {
			c.report(t, v[0]/v[1] >= 1.6, "%.2f× (%.0f → %.0f ns; bare loop: %.2f×)", v[0]/v[1], v[0], v[1], v[2]/v[3])
		}
	}
	for _, live := range []string{"1k", "100k", "1M"} {
		sweep := func(pct, lib string) string { return fmt.Sprintf("Sweep/live=%s/expired=%s/lib=%s", live, pct, lib) }
		if _, ok := res[sweep("1%", "ours-mem")]; !ok {
			continue
		}
		t := "sweep 1% expired ≤ 1/10 of scs's full scan, live=" + live
		if v, ok := c.get(t, "ns/op", sweep("1%", "ours-mem"), sweep("1%", "scs-mem")); ok {
			c.report(t, v[0] <= v[1]/10, "ours %.2f ms, scs %.2f ms: 1/%.1f", v[0]/1e6, v[1]/1e6, v[1]/v[0])
		}
		t = "sweep 10% expired (info), live=" + live
		if v, ok := c.get(t, "ns/op", sweep("10%", "ours-mem"), sweep("10%", "scs-mem")); ok {
			fmt.Printf("%-7s %-58s ours %.2f ms, scs %.2f ms\n", "info", t, v[0]/1e6, v[1]/1e6)
		}
		pause := func(lib string) string { return fmt.Sprintf("SweepPause/live=%s/expired=10%%/lib=%s", live, lib) }
		t = "no request waits > 1 ms during a sweep (10%), live=" + live
		if v, ok := c.get(t, "max-req-µs", pause("ours-mem"), pause("scs-mem")); ok {
			idle, _ := c.r.median(pause("ours-mem"), "max-req-idle-µs")
			c.report(t, v[0] <= 1000, "ours max %.0f µs (no sweep: %.0f µs), scs max %.0f µs", v[0], idle, v[1])
		}
	}
	for _, live := range []string{"1k", "100k", "1M"} {
		mem := func(lib string) string { return fmt.Sprintf("Memory/live=%s/lib=%s", live, lib) }
		if _, ok := res[mem("ours-mem")]; !ok {
			continue
		}
		t := "memory per session ≤ 0.8× scs memstore's, live=" + live
		if v, ok := c.get(t, "B/session", mem("ours-mem"), mem("scs-mem"), mem("ours-mem-start")); ok {
			c.report(t, v[0] <= 0.8*v[1], "ours %.0f B (%.2f×), scs %.0f B; via Start with User-Agent: %.0f B", v[0], v[0]/v[1], v[1], v[2])
		}
	}
	if _, ok := res[req("1k", "read-hit", "serial", "ours-redis")]; ok {
		t := "Redis read-hit: 1 round trip"
		if v, ok := c.get(t, "rt/op", req("1k", "read-hit", "serial", "ours-redis")); ok {
			c.report(t, v[0] <= 1.0, "%.3f round trips per request", v[0])
		}
		t = "Redis read-hit ≥ 1.5× scs redisstore+IdleTimeout throughput"
		if v, ok := c.get(t, "ns/op", req("1k", "read-hit", "serial", "ours-redis"), req("1k", "read-hit", "serial", "scs-redis-idle")); ok {
			c.report(t, v[1]/v[0] >= 1.5, "%.2f× (ours %.1f µs, scs %.1f µs)", v[1]/v[0], v[0]/1e3, v[1]/1e3)
		}
		t = "Redis write-hit: 1 round trip"
		if v, ok := c.get(t, "rt/op", req("1k", "write-hit", "serial", "ours-redis")); ok {
			c.report(t, v[0] <= 1.0, "%.3f round trips per request", v[0])
		}
	}
	fmt.Printf("\n%d target(s) missed, %d check(s) without data\n", c.missed, c.absent)
}
