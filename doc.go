// Package sessions gives net/http applications server-side sessions that
// end by themselves when idle, with per-user limits and termination hooks.
//
// A signed cookie carries only a random session ID; the session (its user,
// its data, its activity) lives on the server: in this process with the
// default memory store, or in Redis shared by many processes with the
// redisstore module (github.com/tokyopredictor/sessions/redisstore), or in
// PostgreSQL with pgstore. Stores are modules of their own, so this package
// pulls in no database client.
//
// # Using it
//
// Make one [Manager] with [NewManager], wrap your handler in
// [Manager.Middleware], call [Manager.Start] when a user logs in and
// [Manager.End] when they log out; in between, [FromContext] gives a
// handler the request's [Session]:
//
//	m, err := sessions.NewManager(sessions.Config{IdleTimeout: 30 * time.Minute})
//	...
//	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
//		// check the password, then:
//		if _, err := m.Start(w, r, user, nil); err != nil { ... }
//	})
//	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
//		s, ok := sessions.FromContext(r.Context())
//		...
//	})
//	http.ListenAndServe(addr, m.Middleware(mux))
//
// The middleware is a plain func(http.Handler) http.Handler, so it works
// with any router: r.Use(m.Middleware) in chi,
// e.Use(echo.WrapMiddleware(m.Middleware)) in echo. Start always issues a
// new session ID (the one the request carried, if any, ends); End ends the
// session on the server and expires the cookie. A request without a valid
// cookie simply has no session: forged, stale or malformed cookies never
// cause a 5xx, and nothing is created until you call Start.
//
// # Expiry, limits and hooks
//
// A session ends when it has been idle for [Config.IdleTimeout], when it
// reaches [Config.AbsoluteTimeout], when its user exceeds
// [Config.MaxSessionsPerUser] (the least recently active one is evicted,
// or with [RejectNew] the new one is refused), or when you end it
// ([Manager.End], [Manager.Terminate], [Manager.TerminateUser]). Expired
// sessions are never returned, even before the background sweeper has
// removed them. Every function registered with [Manager.OnTerminate] runs
// exactly once for every ending, with its [Reason], off the request path.
//
// # The programmatic API
//
// Besides the HTTP lifecycle, a Manager creates, finds, lists and ends
// sessions directly ([Manager.Create], [Manager.Get],
// [Manager.UserSessions], [Manager.All], [Manager.Terminate],
// [Manager.Cleanup], [Manager.Stats]), for "your devices" pages and admin
// tools, and [LoadConfig] reads settings from a JSON file.
//
// # Stores
//
// [NewMemoryStore] is the default. A shared store implements [Store] and
// passes the conformance suite in the storetest package; every process
// sharing it must use the same [Config.Keys].
//
// # Examples
//
// The examples show login and logout through the middleware
// ([Manager.Middleware]), a devices page ([Manager.UserSessions]),
// termination hooks ([Manager.OnTerminate]), configuration files
// ([LoadConfig]), two applications on one host, the client address behind
// a proxy, and the everyday session API. README.md shows the same snippets,
// and a test keeps the two identical. The _example directory of the
// repository holds a complete application with its browser test.
package sessions
