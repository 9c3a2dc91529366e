package pgstore

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// pgServer is a PostgreSQL server the test runs itself, on a spare
// loopback port, with its data in a temporary directory.
type pgServer struct {
	t    *testing.T
	bin  string // directory of initdb and postgres
	dir  string
	port int
	cred *syscall.Credential // the user it runs as, when the test runs as root
	cmd  *exec.Cmd
	done chan struct{}
}

// url is the server's connection string.
func (s *pgServer) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?connect_timeout=2", s.port)
}

// pgBinDir finds initdb and postgres: on PATH, or Debian's directory.
func pgBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1]), nil
	}
	return "", fmt.Errorf("initdb not found on PATH nor in /usr/lib/postgresql/*/bin")
}

// startPostgres initialises a data directory and starts a server on it;
// the server is killed and the directory removed at the end of the test.
// PostgreSQL refuses to run as root: as root, the test runs it as the
// postgres user. Without the binaries it fails in CI and skips elsewhere.
func startPostgres(t *testing.T) *pgServer {
	t.Helper()
	bin, err := pgBinDir()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skipf("%v; install PostgreSQL (apt-get install -y postgresql) to run this test", err)
	}
	s := &pgServer{t: t, bin: bin}
	dir, err := os.MkdirTemp("", "pgstore-server-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	s.dir = filepath.Join(dir, "data")
	require.NoError(t, os.Mkdir(s.dir, 0o700))
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		require.NoError(t, err, "running as root, the test needs the postgres user to run the server as")
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		require.NoError(t, os.Chmod(dir, 0o755))
		require.NoError(t, os.Chown(s.dir, uid, gid))
	}
	initdb := s.command("initdb", "-D", s.dir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
	out, err := initdb.CombinedOutput()
	require.NoError(t, err, "initdb: %s", out)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.port = l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	s.start()
	t.Cleanup(func() {
		if s.cmd != nil {
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

func (s *pgServer) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

// start starts the server on its data directory and waits until it
// accepts connections.
func (s *pgServer) start() {
	t := s.t
	t.Helper()
	s.cmd = s.command("postgres", "-D", s.dir, "-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		"-c", "fsync=off", "-c", "shared_buffers=16MB", "-c", "max_connections=30")
	log, err := os.Create(filepath.Join(filepath.Dir(s.dir), fmt.Sprintf("server-%d.log", time.Now().UnixNano())))
	require.NoError(t, err)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	require.NoError(t, s.cmd.Start())
	done := make(chan struct{})
	go func() {
		_ = s.cmd.Wait()
		_ = log.Close()
		close(done)
	}()
	s.done = done
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, s.url())
		if err != nil {
			return false
		}
		_ = c.Close(ctx)
		return true
	}, 30*time.Second, 20*time.Millisecond, "the server on port %d did not start", s.port)
}

// stop shuts the server down (fast shutdown: sessions are cut, the data
// kept) and waits until it has exited.
func (s *pgServer) stop() {
	t := s.t
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGINT))
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not stop within 30 s")
	}
	s.cmd = nil
}
