#!/bin/sh
# run.sh runs the comparison benchmarks side by side and prints a benchstat
# table and the issue 4 targets.
#
#   benchmarks/run.sh                        # 1k live sessions, 6 runs
#   SESSIONS_BENCH_FULL=1 benchmarks/run.sh  # also 100k and 1M (about 30 min on 2 cores)
#
# Environment: RUNS (default 6), BENCH (a -bench regexp, default .),
# BENCHTIME (default 500ms), OUT (the raw results, default
# benchmarks/results.txt), SESSIONS_BENCH_REDIS (default 127.0.0.1:6379;
# the Redis rows skip without one).
#
# The test binary is built once and run RUNS times, each run going through
# every benchmark once, so that drift on a shared machine spreads over all
# libraries alike instead of favouring whichever ran first.
set -eu
cd "$(dirname "$0")"
RUNS=${RUNS:-6}
BENCH=${BENCH:-.}
BENCHTIME=${BENCHTIME:-500ms}
OUT=${OUT:-results.txt}
BENCHSTAT="go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/bench.test" .
: >"$OUT"
{
	echo "# $(go version); $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); $(nproc) CPUs"
} >>"$OUT"
i=1
while [ "$i" -le "$RUNS" ]; do
	echo "run $i/$RUNS" >&2
	"$tmp/bench.test" -test.run '^$' -test.bench "$BENCH" -test.benchtime "$BENCHTIME" \
		-test.benchmem -test.timeout 120m >>"$OUT"
	i=$((i + 1))
done

echo "== requests (ns/op, B/op, allocs/op; rt/op = Redis round trips)"
$BENCHSTAT -filter '.name:Request' -col /lib "$OUT"
echo "== floor"
$BENCHSTAT -filter '.name:Floor' "$OUT"
echo "== memory per live session, sweeps"
$BENCHSTAT -filter '.name:(Memory OR Sweep OR SweepPause)' -col /lib "$OUT"
echo "== targets (medians)"
go run ./cmd/targets "$OUT"
