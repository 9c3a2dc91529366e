package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a bytes.Buffer that run's logger and the test may use at
// once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listening = regexp.MustCompile(`listening on (http://\S+/)`)

// startRun runs the app as main does, on a free loopback port, and returns
// its URL, its output and a func that stops it (as Ctrl-C does) and
// returns run's error.
func startRun(t *testing.T, args ...string) (string, *syncBuffer, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), out) }()
	var base string
	require.Eventually(t, func() bool {
		select {
		case err := <-done:
			done <- err
			return true
		default:
		}
		m := listening.FindStringSubmatch(out.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	}, 10*time.Second, 10*time.Millisecond)
	require.NotEmpty(t, base, "run stopped early: %s", out.String())
	stopped := false
	stop := func() error {
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			t.Fatal("run did not return after its context ended")
			return nil
		}
	}
	t.Cleanup(func() {
		if !stopped {
			_ = stop()
		}
	})
	return base, out, stop
}

func TestRunServesAndShutsDownGracefully(t *testing.T) {
	base, out, stop := startRun(t, "-idle", "1m", "-max", "3")
	assert.True(t, strings.HasPrefix(base, "http://127.0.0.1:"), base)

	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	res, err := c.PostForm(base+"signin", url.Values{"user": {"carol"}, "password": {demoPassword}})
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, string(body), `<span id="user">carol</span>`, "signed in and redirected home")
	assert.Contains(t, string(body), "The session ends after 1m0s without a request", "-idle applies")

	require.NoError(t, stop())
	log := out.String()
	assert.Contains(t, log, "shutting down")
	assert.Regexp(t, `msg="session ended" session=[0-9a-f]{8} user=carol reason=shutdown`, log,
		"Close ended the session and the hook ran before run returned")
	assert.Contains(t, log, "msg=stopped")
	_, err = c.Get(base + "signin")
	assert.Error(t, err, "the server is gone")
}

func TestRunLoadsConfigAndKeys(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config.json")
	require.NoError(t, os.WriteFile(cfgFile, []byte(`{"inactive_timeout": 90, "cleanup_interval": 300,
		"max_sessions_per_user": 1, "enable_auto_cleanup": true}`), 0o600))
	keysFile := filepath.Join(dir, "keys")
	require.NoError(t, os.WriteFile(keysFile, []byte(strings.Repeat("0f", 32)+"\n"), 0o600))

	base, _, stop := startRun(t, "-config", cfgFile, "-keys-file", keysFile)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	res, err := c.PostForm(base+"signin", url.Values{"user": {"carol"}, "password": {demoPassword}})
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, string(body), "The session ends after 1m30s without a request", "the config file applies")
	require.NoError(t, stop())
}

func TestRunRejectsBadSetup(t *testing.T) {
	dir := t.TempDir()
	badConfig := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(badConfig, []byte(`{"inactive_timeout": -5}`), 0o600))
	badKeys := filepath.Join(dir, "keys")
	require.NoError(t, os.WriteFile(badKeys, []byte("abcd\n"), 0o600))

	for name, tc := range map[string]struct {
		args []string
		env  string
		want string
	}{
		"unknown flag":       {args: []string{"-nope"}, want: "flag provided but not defined"},
		"extra argument":     {args: []string{"extra"}, want: "unexpected arguments"},
		"missing config":     {args: []string{"-config", filepath.Join(dir, "missing.json")}, want: "missing.json"},
		"bad config":         {args: []string{"-config", badConfig}, want: "inactive_timeout"},
		"bad keys file":      {args: []string{"-keys-file", badKeys}, want: "32 or 64 bytes"},
		"bad key in env":     {env: "xyz", want: keysEnv},
		"redis without keys": {args: []string{"-redis", "127.0.0.1:1"}, want: keysEnv},
		"redis not there":    {args: []string{"-redis", "127.0.0.1:1"}, env: strings.Repeat("0f", 32), want: "redis at 127.0.0.1:1"},
		"bad address":        {args: []string{"-addr", "127.0.0.1:http-alt-nope"}, want: "-addr: listen tcp"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(keysEnv, tc.env)
			var out bytes.Buffer
			err := run(context.Background(), tc.args, &out)
			require.Error(t, err)
			assert.Contains(t, err.Error()+out.String(), tc.want)
		})
	}
}

func TestDisplayURL(t *testing.T) {
	assert.Equal(t, "http://127.0.0.1:8080/", displayURL(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, ""))
	assert.Equal(t, "http://[::1]:8080/", displayURL(&net.TCPAddr{IP: net.IPv6loopback, Port: 8080}, ""))
	assert.Equal(t, "http://localhost:8080/", displayURL(&net.TCPAddr{IP: net.IPv6unspecified, Port: 8080}, ""),
		"listening on every interface: print a host one can type")
}
