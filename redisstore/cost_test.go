package redisstore

import (
	"context"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/tokyopredictor/sessions"
)

// TestServerCost measures what each call costs the server: the commands a
// script runs per call and its usec_per_call in INFO commandstats, beside
// one plain GET of a 100-byte value. Run it on a private server, so that
// nothing else is counted:
//
//	redis-server --port 6391 --save "" --appendonly no --daemonize yes
//	SESSIONS_COST_REDIS=127.0.0.1:6391 go test -run '^TestServerCost$' -v ./redisstore
func TestServerCost(t *testing.T) {
	addr := os.Getenv("SESSIONS_COST_REDIS")
	if addr == "" {
		t.Skip("SESSIONS_COST_REDIS not set")
	}
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.FlushAll(ctx).Err())
	s, err := New(c, WithPrefix("cost:"))
	require.NoError(t, err)
	const n = 1000
	payload := func(r *sessions.Record) {
		r.Values = map[string][]byte{"name": []byte("\x01bench"), "cart": make([]byte, 100)}
	}
	live := make([]sessions.Record, n)
	for i := range live {
		live[i] = rec("user"+strconv.Itoa(i), time.Hour)
		payload(&live[i])
		_, err := s.Create(ctx, live[i], 5, sessions.EvictOldest)
		require.NoError(t, err)
	}
	require.NoError(t, c.Set(ctx, "cost:plain", make([]byte, 100), 0).Err())
	type result struct{ usec, cpu, cmds []float64 }
	results := map[string]*result{}
	var order []string
	measure := func(name string, f func(i int)) {
		f(0) // load the script
		require.NoError(t, c.ConfigResetStat(ctx).Err())
		cpu0 := serverCPU(t, c)
		for i := range n {
			f(i)
		}
		cpu := (serverCPU(t, c) - cpu0) / n * 1e6
		stats := commandStats(t, c)
		var cmds int64
		for cmd, st := range stats {
			if cmd == "evalsha" || cmd == "eval" || strings.HasPrefix(cmd, "config") || cmd == "info" {
				continue
			}
			cmds += st.calls
		}
		top := stats["evalsha"]
		if top.calls == 0 {
			top = stats["get"]
		}
		r := results[name]
		if r == nil {
			r = &result{}
			results[name] = r
			order = append(order, name)
		}
		r.usec = append(r.usec, top.usec)
		r.cpu = append(r.cpu, cpu)
		r.cmds = append(r.cmds, float64(cmds)/n)
	}
	variants := []string{"new"}
	if costSwap != nil {
		variants = []string{"old", "new"}
	}
	rounds, _ := strconv.Atoi(os.Getenv("SESSIONS_COST_ROUNDS"))
	rounds = max(rounds, 1)
	at := time.Now()
	for round := range rounds {
		for _, v := range variants {
			if costSwap != nil {
				costSwap(v == "old")
			}
			measure("plain-get/"+v, func(int) { require.NoError(t, c.Get(ctx, "cost:plain").Err()) })
			measure("load/"+v, func(i int) {
				_, err := s.Load(ctx, live[i].ID)
				require.NoError(t, err)
			})
			measure("activate/"+v, func(i int) {
				_, err := s.Activate(ctx, live[i].ID, at)
				require.NoError(t, err)
			})
			// A process that has not seen the sessions reads them with
			// the script that may write the activity (none is due).
			unseen, err := New(c, WithPrefix("cost:"))
			require.NoError(t, err)
			measure("activate-unseen/"+v, func(i int) {
				_, err := unseen.Activate(ctx, live[i].ID, at)
				require.NoError(t, err)
			})
			at = at.Add(10 * time.Minute) // past the touch window (3 min of 1 h)
			measure("activate-write/"+v, func(i int) {
				_, err := s.Activate(ctx, live[i].ID, at)
				require.NoError(t, err)
			})
			val := []byte("\x01value")
			at = at.Add(time.Minute)
			measure("update/"+v, func(i int) {
				require.NoError(t, s.Update(ctx, live[i].ID, at, map[string][]byte{"counter": val}, nil))
			})
			tag := v + strconv.Itoa(round)
			fresh := make([]sessions.Record, n)
			second := make([]sessions.Record, n)
			for i := range fresh {
				fresh[i] = rec("fresh"+tag+"."+strconv.Itoa(i), time.Hour)
				payload(&fresh[i])
				second[i] = rec("second"+tag+"."+strconv.Itoa(i), time.Hour)
				payload(&second[i])
				first := rec("second"+tag+"."+strconv.Itoa(i), time.Hour)
				_, err := s.Create(ctx, first, 5, sessions.EvictOldest)
				require.NoError(t, err)
			}
			measure("create-new-user/"+v, func(i int) {
				r := fresh[i]
				if i == 0 {
					r = rec("warm", time.Hour)
				}
				_, err := s.Create(ctx, r, 5, sessions.EvictOldest)
				require.NoError(t, err)
			})
			measure("create-2nd/"+v, func(i int) {
				r := second[i]
				if i == 0 {
					r = rec("warm", time.Hour)
				}
				_, err := s.Create(ctx, r, 5, sessions.EvictOldest)
				require.NoError(t, err)
			})
		}
	}
	if costSwap != nil {
		costSwap(false)
	}
	med := func(x []float64) float64 {
		x = append([]float64(nil), x...)
		sort.Float64s(x)
		return x[len(x)/2]
	}
	for _, name := range order {
		r := results[name]
		t.Logf("%-22s median of %d: %7.2f usec_per_call  %7.2f server-cpu-usec/call  %5.2f commands/call", name, len(r.usec), med(r.usec), med(r.cpu), med(r.cmds))
	}
}

// costSwap, when set (by a file kept outside the repository that holds the
// scripts of an earlier commit), switches the store's scripts to the old
// ones (true) or back, so that both are measured in interleaved rounds.
var costSwap func(old bool)

type cmdStat struct {
	calls int64
	usec  float64
}

func commandStats(t *testing.T, c *redis.Client) map[string]cmdStat {
	info, err := c.Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	out := map[string]cmdStat{}
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		var st cmdStat
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				st.calls, _ = strconv.ParseInt(v, 10, 64)
			case "usec_per_call":
				st.usec, _ = strconv.ParseFloat(v, 64)
			}
		}
		out[name] = st
	}
	return out
}

// serverCPU returns the server's CPU time so far, in seconds.
func serverCPU(t *testing.T, c *redis.Client) float64 {
	info, err := c.Info(context.Background(), "cpu").Result()
	require.NoError(t, err)
	var sum float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys_main_thread" || k == "used_cpu_user_main_thread") {
			f, _ := strconv.ParseFloat(v, 64)
			sum += f
		}
	}
	return sum
}
