// Package benchmarks compares github.com/tokyopredictor/sessions with
// alexedwards/scs v2 (memstore and redisstore) and gorilla/sessions
// (CookieStore) on the same request workloads, next to two floors: a bare
// handler and one securecookie decode. It is a module of its own so that the
// library never requires scs or gorilla.
//
// The benchmarks are in the _test.go files; run.sh runs them side by side
// and prints a benchstat table, and cmd/targets checks the numbers against
// the targets of issue 4. http.sh runs the HTTP-level comparison of issue
// 12 (http_test.go: real servers on loopback, wrk as the load generator),
// and TestRedisMemory (redismem_test.go) measures Redis memory per live
// session. See README.md in the repository root, section Performance.
package benchmarks
