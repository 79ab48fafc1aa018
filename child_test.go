//go:build linux

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// Environment of a child gateway: the test binary re-executed as the real
// CLI, so that a test can give it its own open-file limit and count its
// descriptors apart from the test's.
const (
	childEnv  = "ETCD_GATEWAY_TEST_CHILD"
	nofileEnv = "ETCD_GATEWAY_TEST_NOFILE"
	uidEnv    = "ETCD_GATEWAY_TEST_UID"
	// listenPIDSelfEnv makes the child set LISTEN_PID to its own PID.
	listenPIDSelfEnv = "ETCD_GATEWAY_TEST_LISTEN_PID_SELF"
	// echoEnv makes the child an echo server on the address it names
	// instead of a gateway: a member in a process of its own, with an
	// open-file limit of its own.
	echoEnv    = "ETCD_GATEWAY_TEST_ECHO"
	childUsage = "the test binary as etcd-gateway"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "" {
		os.Exit(m.Run())
	}
	if n, err := strconv.ParseUint(os.Getenv(nofileEnv), 10, 64); err == nil {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
			fmt.Fprintln(os.Stderr, "setrlimit:", err)
			os.Exit(2)
		}
	}
	if uid, err := strconv.Atoi(os.Getenv(uidEnv)); err == nil {
		// Drop root, so that file permissions apply to the gateway.
		if err := syscall.Setgid(uid); err != nil {
			fmt.Fprintln(os.Stderr, "setgid:", err)
			os.Exit(2)
		}
		if err := syscall.Setuid(uid); err != nil {
			fmt.Fprintln(os.Stderr, "setuid:", err)
			os.Exit(2)
		}
	}
	if os.Getenv(listenPIDSelfEnv) != "" {
		// Play systemd, which sets LISTEN_PID to the service's own PID:
		// the test can't know it before the fork.
		_ = os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	}
	if addr := os.Getenv(echoEnv); addr != "" {
		echoServer(addr)
	}
	os.Args = append([]string{"etcd-gateway"}, os.Args[1:]...)
	main()
	os.Exit(0)
}

// echoServer echoes every connection to addr until the process is killed.
func echoServer(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(2)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "echo:", err)
			os.Exit(2)
		}
		go func() {
			defer c.Close()
			// Not io.Copy(c, c): its splice would hold a pipe (two more
			// descriptors) per connection.
			_, _ = io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c})
		}()
	}
}

// startEcho starts an echo server in a child process with the given
// open-file limit and returns its address.
func startEcho(t *testing.T, nofile int) string {
	t.Helper()
	addr := testutil.ListenAddr(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=1", echoEnv+"="+addr, fmt.Sprintf("%s=%d", nofileEnv, nofile), raceExitEnv())
	launch(t, cmd, "echo", func(*child) bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}

// child is a gateway process started from the test binary.
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
// accepts. Extra environment (such as uidEnv) comes in env.
func startChild(t *testing.T, path, addr string, nofile int, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "start", "--config", path)
	cmd.Env = append(os.Environ(), childEnv+"=1", raceExitEnv())
	if nofile > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", nofileEnv, nofile))
	}
	cmd.Env = append(cmd.Env, env...)
	return launch(t, cmd, "listen", func(*child) bool {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
}

// raceExitEnv returns GORACE as the test has it, but for the pause of a
// second that the race detector makes at every exit (atexit_sleep_ms,
// for other goroutines to finish reporting): a test that waits for a child
// gateway's exit, twenty times, would wait twenty seconds for nothing. A
// race found in the child still fails it (exit code 66).
func raceExitEnv() string {
	return "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")
}

// launch starts cmd, a child gateway, kills it at the end of the test, and
// waits until ready says it is (what names the wait); a child that exits
// first fails the test with its log.
func launch(t *testing.T, cmd *exec.Cmd, what string, ready func(*child) bool) *child {
	t.Helper()
	c := &child{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr, cmd.Stdout = c.logs, c.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", childUsage, err)
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

// TestChildExitCodeOfTypo checks the real process: a mistyped command
// exits 2 and says why on stderr.
func TestChildExitCodeOfTypo(t *testing.T) {
	cmd := exec.Command(os.Args[0], "strat", "--config", "x.yaml")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
		t.Fatalf("%s strat: %v, want exit code %d", childUsage, err, exitUsage)
	}
	if !strings.Contains(stderr.String(), `unknown command "strat"`) {
		t.Errorf("stderr lacks the error:\n%s", stderr.String())
	}
}
