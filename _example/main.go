// Command _example is a small web app that shows what the sessions package
// does, in a browser: sign-in, the current session, "Your devices" with
// per-device and all-other-devices sign-out, the per-user device limit, idle
// expiry and a live termination log.
//
//	go run ./_example                     # http://127.0.0.1:8080/, memory store
//	go run ./_example -idle 30s -max 2    # watch idle expiry and eviction
//	go run ./_example -config config/session_config.json
//	SESSIONS_KEY=$(openssl rand -hex 32) go run ./_example -redis 127.0.0.1:6379
//	SESSIONS_KEY=$(openssl rand -hex 32) go run ./_example -postgres postgres://postgres@127.0.0.1:5432/test
//
// Sign in as alice, bob or carol; the password is "demo".
//
// Flags:
//
//	-addr ADDR        listen address (default 127.0.0.1:8080)
//	-config FILE      session settings, JSON in the seed format (sessions.LoadConfig)
//	-idle DURATION    idle timeout, overriding the config file; the sweep then runs
//	                  at least every DURATION/2, so idle endings show up promptly
//	-max N            sessions per user, overriding the config file (-1: unlimited)
//	-redis ADDR       keep sessions in the Redis server at ADDR (redisstore)
//	-postgres URL     keep sessions in the PostgreSQL database at URL (pgstore; creates its table)
//	-keys-file FILE   cookie-signing keys, one hex key per line, first signs;
//	                  without it the keys come from $SESSIONS_KEY (hex, comma-separated)
//	-insecure-cookie  send the cookie without Secure, named "session"
//
// Keys: with the memory store and no keys the app signs with a random key
// made at start (sessions die with the process anyway). With -redis, keys
// must be stable and shared by every process: give -keys-file or
// SESSIONS_KEY. The same holds for -postgres.
//
// Cookie: on a loopback address the app keeps the package default, a Secure
// cookie named __Host-session, although it serves plain http: Chromium
// (tested: 156) and curl treat http://127.0.0.1 and http://localhost as
// secure contexts and keep such a cookie. On any other address plain http
// cannot carry a Secure cookie, so the app drops Secure (and the prefix) and
// warns; put TLS in front for real use. -insecure-cookie does the same on
// loopback, for browsers that refuse Secure cookies over http://localhost.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tokyopredictor/sessions"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

// shutdownTimeout bounds how long in-flight requests get to finish.
const shutdownTimeout = 10 * time.Second

// run parses args, serves the app until ctx is done, then shuts down
// gracefully: the server stops taking requests and finishes those in
// flight, then the manager closes (with the memory store every session ends
// with reason "shutdown"), and run returns once the termination hooks have
// run. The URL and the log lines go to stdout.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("example", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "127.0.0.1:8080", "listen `address`")
	configFile := fs.String("config", "", "session settings `file` (JSON, the seed format)")
	idle := fs.Duration("idle", 0, "idle timeout, overriding the config file")
	maxSessions := fs.Int("max", 0, "sessions per user, overriding the config file (-1: unlimited)")
	redisAddr := fs.String("redis", "", "keep sessions in the Redis server at `address`")
	postgresURL := fs.String("postgres", "", "keep sessions in the PostgreSQL database at `url` (creates the table)")
	keysFile := fs.String("keys-file", "", "cookie-signing keys `file`: one hex key per line, the first signs (default: $"+keysEnv+")")
	insecure := fs.Bool("insecure-cookie", false, `send the session cookie without Secure, named "session"`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	log := slog.New(slog.NewTextHandler(stdout, nil))
	var cfg sessions.Config
	if *configFile != "" {
		c, err := sessions.LoadConfig(*configFile)
		if err != nil {
			return err
		}
		cfg = c
	}
	if set["idle"] {
		cfg.IdleTimeout = *idle
		// Sweep often enough that an idle ending reaches the termination
		// log, and the sign-in page's "why", soon after it happens.
		if sweep := max(*idle/2, 100*time.Millisecond); *idle > 0 && (cfg.CleanupInterval == 0 || cfg.CleanupInterval > sweep) {
			cfg.CleanupInterval = sweep
		}
	}
	if set["max"] {
		cfg.MaxSessionsPerUser = *maxSessions
	}
	keys, err := loadKeys(*keysFile, os.Getenv(keysEnv))
	if err != nil {
		return err
	}
	cfg.Keys = keys

	acfg := appConfig{Sessions: cfg, Logger: log}
	if *redisAddr != "" && *postgresURL != "" {
		return fmt.Errorf("-redis and -postgres: choose one store")
	}
	if *redisAddr != "" || *postgresURL != "" {
		flagName, open, arg := "-redis", openRedisStore, *redisAddr
		if *postgresURL != "" {
			flagName, open, arg = "-postgres", openPostgresStore, *postgresURL
		}
		if len(keys) == 0 {
			return fmt.Errorf("%s needs stable signing keys shared by every process: set %s to a hex key (make one with `openssl rand -hex 32`) or give -keys-file", flagName, keysEnv)
		}
		store, closeStore, err := open(ctx, arg)
		if err != nil {
			return err
		}
		defer closeStore()
		acfg.Store = store
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	defer ln.Close()
	tcp, _ := ln.Addr().(*net.TCPAddr)
	loopback := tcp != nil && tcp.IP.IsLoopback()
	if *insecure || !loopback {
		// Plain http beyond loopback cannot carry a Secure cookie: browsers
		// only treat loopback hosts as secure contexts.
		acfg.Sessions.Cookie.Insecure = true
		if !loopback {
			log.Warn("serving plain http beyond loopback: the session cookie goes without Secure; put TLS in front for real use")
		}
	}

	a, handler, err := newApp(acfg)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	fmt.Fprintf(stdout, "sessions example listening on %s\n", displayURL(tcp, *addr))
	fmt.Fprintf(stdout, "sign in as alice, bob or carol with password %q; press Ctrl-C to stop\n", demoPassword)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		a.Close()
		return fmt.Errorf("serving: %w", err)
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	shutdownErr := srv.Shutdown(sctx)
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		shutdownErr = errors.Join(shutdownErr, err)
	}
	a.Close() // waits for the termination hooks
	log.Info("stopped")
	return shutdownErr
}

// displayURL is the URL to print: the listener's address, with a host one
// can type when it listens on every interface.
func displayURL(tcp *net.TCPAddr, addr string) string {
	if tcp == nil {
		return "http://" + addr + "/"
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(tcp.Port)) + "/"
}
