//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// child is a gateway process: the binary TestMain built.
type child struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startChild runs `etcd-gateway start --config path` in a child process
// with the given open-file limit (0: inherited) and waits until addr
// accepts. Extra environment comes in env.
func startChild(t *testing.T, path, addr string, nofile uint64, env ...string) *child {
	t.Helper()
	cmd := gatewayCommand(setup{nofile: nofile}, "start", "--config", path)
	cmd.Env = append(cmd.Env, env...)
	return launch(t, cmd, "listen", dialable(addr))
}

// dialable says whether addr accepts a connection.
func dialable(addr string) func(*child) bool {
	return func(*child) bool {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
		}
		return err == nil
	}
}

// launch starts cmd, a child gateway, kills it at the end of the test, and
// waits until ready says it is (what names the wait); a child that exits
// first fails the test with its log.
func launch(t *testing.T, cmd *exec.Cmd, what string, ready func(*child) bool) *child {
	t.Helper()
	c := &child{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr, cmd.Stdout = c.logs, c.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
		if t.Failed() {
			t.Logf("child gateway log:\n%s", c.logs.String())
		}
	})
	testutil.WaitFor(t, "the child gateway to "+what, 10*time.Second, func() bool {
		select {
		case err := <-c.done:
			c.done <- err // for the cleanup, which waits for the exit
			t.Fatalf("child gateway exited: %v\n%s", err, c.logs.String())
		default:
		}
		return ready(c)
	})
	return c
}

// reload sends SIGHUP.
func (c *child) reload() { _ = c.cmd.Process.Signal(syscall.SIGHUP) }

// stop sends SIGTERM and returns the exit error.
func (c *child) stop(t *testing.T) error {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		c.done <- err
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("child gateway did not exit after SIGTERM")
		return nil
	}
}

// handOver starts a new gateway on path, serving addr, waits until it took
// over from c and c exited cleanly, and returns it; round counts from 0.
func (c *child) handOver(t *testing.T, path, addr string, round int) *child {
	t.Helper()
	next := startChild(t, path, addr, 0)
	next.tookOver(t)
	c.waitExit(t, fmt.Sprintf("the old gateway of handover %d", round+1))
	return next
}

// writeConfig writes a one-listener config file and returns its path.
func writeConfig(t *testing.T, addr, endpoint, extra string) string {
	t.Helper()
	path := t.TempDir() + "/gw.yaml"
	text := fmt.Sprintf("log-level: info\nlog-format: json\nshutdown-timeout: 2s\nlisteners:\n  - name: main\n    listen-addr: %s\n    endpoints: [%s]\n    dial-timeout: 1s\n%s", addr, endpoint, extra)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// logLines returns the child's log lines that contain s.
func (c *child) logLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader([]byte(c.logs.String())))
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte(s)) {
			out = append(out, sc.Text())
		}
	}
	return out
}

// waitWatched waits for the config watcher's first read, which must be
// over before a test changes the file.
func (c *child) waitWatched(t *testing.T) {
	t.Helper()
	testutil.WaitFor(t, "the watcher's first read", 10*time.Second, func() bool {
		return len(c.logLines("config file watched")) == 1
	})
}

// rejection waits for the child's nth rejected reload (from 1; what names
// the wait) and returns its log line.
func (c *child) rejection(t *testing.T, what string, n int) string {
	t.Helper()
	testutil.WaitFor(t, what+" to be rejected", 10*time.Second, func() bool {
		return len(c.logLines("config reload rejected")) >= n
	})
	return c.logLines("config reload rejected")[n-1]
}

// exitUsage is the gateway's exit code for a mistake in the command line.
const exitUsage = 2

// TestChildExitCodeOfTypo checks the real process: a mistyped command
// exits 2 and says why on stderr.
func TestChildExitCodeOfTypo(t *testing.T) {
	cmd := gatewayCommand(setup{}, "strat", "--config", "x.yaml")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
		t.Fatalf("etcd-gateway strat: %v, want exit code %d", err, exitUsage)
	}
	if !strings.Contains(stderr.String(), `unknown command "strat"`) {
		t.Errorf("stderr lacks the error:\n%s", stderr.String())
	}
}
