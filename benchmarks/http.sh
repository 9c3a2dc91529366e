#!/bin/sh
# http.sh runs the HTTP-level benchmark of issue 12 (TestHTTP in
# http_test.go): a net/http server per variant on a loopback port, pinned to
# CPU 0 with GOMAXPROCS=1, and wrk pinned to CPU 1 sending read hits of live
# sessions, in interleaved rounds. It prints every round and a Markdown
# table of medians (requests per second, × bare, p50/p99 latency, Redis
# commands and Redis CPU per request).
#
#   benchmarks/http.sh                                  # 6 rounds of 5 s, about 3 minutes
#   HTTP_ROUNDS=2 HTTP_DURATION=1 benchmarks/http.sh    # a quick check of the harness
#   HTTP_PROFILE=/tmp/prof benchmarks/http.sh           # also a server CPU profile per variant
#
# Needs wrk (Debian: apt-get install -y wrk), taskset and 2 CPUs, and Redis
# for the Redis variants (SESSIONS_BENCH_REDIS, default 127.0.0.1:6379; on
# a Redis nothing else uses, the Redis columns count this run alone).
# Knobs: HTTP_ROUNDS (6), HTTP_DURATION (seconds, 5), HTTP_CONNS (32),
# HTTP_SESSIONS (10000), HTTP_VARIANTS (comma-separated: bare, bare-vary, ours-mem,
# scs-mem-idle, ours-redis, scs-redis-idle).
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/bench.test" .
# Dropped from the output: the warnings of logging in over plain http (the
# populations are made so), and the 503s logged when wrk closes its
# connections at the end of a run while their requests wait on Redis (the
# request context is canceled; wrk has stopped counting by then).
{
	rc=0
	SESSIONS_BENCH_HTTP=1 "$tmp/bench.test" -test.run '^TestHTTP$' -test.count 1 -test.timeout 0 || rc=$?
	echo "$rc" >"$tmp/rc"
} 2>&1 | grep --line-buffered -v -e ' WARN sessions: ' -e 'context canceled' || :
exit "$(cat "$tmp/rc")"
