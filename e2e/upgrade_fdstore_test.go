//go:build linux

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// fakeSystemd plays systemd's side of the notify protocol: it keeps the
// descriptors a service stores (FDSTORE=1, FDNAME=) and forgets those it
// removes (FDSTOREREMOVE=1).
type fakeSystemd struct {
	path    string
	ln      *net.UnixConn
	mu      sync.Mutex
	names   []string
	files   []*os.File
	removed int
}

// newFakeSystemd listens on a notify socket in dir.
func newFakeSystemd(t *testing.T, dir string) *fakeSystemd {
	t.Helper()
	s := &fakeSystemd{path: filepath.Join(dir, "notify.sock")}
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	go s.serve()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, f := range s.files {
			f.Close()
		}
	})
	return s
}

// serve reads the service's messages.
func (s *fakeSystemd) serve() {
	buf := make([]byte, 4096)
	oob := make([]byte, syscall.CmsgSpace(16*4))
	for {
		n, oobn, _, _, err := s.ln.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		var fds []int
		if msgs, err := syscall.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if got, err := syscall.ParseUnixRights(&m); err == nil {
					fds = append(fds, got...)
				}
			}
		}
		fields := map[string]string{}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			k, v, _ := strings.Cut(line, "=")
			fields[k] = v
		}
		s.mu.Lock()
		switch {
		case fields["FDSTORE"] == "1" && len(fds) == 1:
			s.names = append(s.names, fields["FDNAME"])
			s.files = append(s.files, os.NewFile(uintptr(fds[0]), fields["FDNAME"]))
		case fields["FDSTOREREMOVE"] == "1":
			s.removed++
		default:
			for _, fd := range fds {
				_ = syscall.Close(fd)
			}
		}
		s.mu.Unlock()
	}
}

// stored returns how many descriptors are stored and how many removals
// were asked.
func (s *fakeSystemd) stored() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.files), s.removed
}

// startWithStore starts a gateway child the way systemd starts a service
// whose store holds descriptors: as fds 3 and up, named by LISTEN_FDNAMES.
func (s *fakeSystemd) startWithStore(t *testing.T, path, addr string, env ...string) *child {
	t.Helper()
	s.mu.Lock()
	files, names := s.files, s.names
	s.files, s.names = nil, nil
	s.mu.Unlock()
	cmd := gatewayCommand(setup{listenPIDSelf: true}, "start", "--config", path)
	cmd.Env = append(cmd.Env, fmt.Sprintf("LISTEN_FDS=%d", len(files)), "LISTEN_FDNAMES="+strings.Join(names, ":"))
	cmd.Env = append(cmd.Env, env...)
	cmd.ExtraFiles = files
	c := &child{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr, cmd.Stdout = c.logs, c.logs
	err := cmd.Start()
	for _, f := range files {
		f.Close() // the child has them
	}
	if err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
		if t.Failed() {
			t.Logf("child gateway log:\n%s", c.logs.String())
		}
	})
	testutil.WaitFor(t, "the child gateway to serve", 10*time.Second, func() bool {
		select {
		case err := <-c.done:
			t.Fatalf("child gateway exited: %v\n%s", err, c.logs.String())
		default:
		}
		return len(c.logLines("gateway started")) == 1
	})
	return c
}

// TestUpgradeFDStore plays systemd with a file descriptor store: the
// gateway, stopped, stores its listening sockets and its open connections
// instead of closing them; the next start takes them back (and removes
// them from the store). Connections under load go on without an error and
// without a new connection to the member, idle ones answer after, and a
// connect loop sees no refused connect while no process runs.
func TestUpgradeFDStore(t *testing.T) {
	ft := startFDStoreGateway(t)
	ft.openConns(t)
	ft.stopIntoStore(t)
	next := ft.restartFromStore(t)
	ft.checkConns(t)
	if err := next.stop(t); err != nil {
		t.Fatal(err)
	}
}

// The connections TestUpgradeFDStore holds across the stop: under load,
// and idle.
const fdStoreLoad, fdStoreIdle = 10, 3

// fdStoreTest is TestUpgradeFDStore's fake systemd, gateway and
// connections.
type fdStoreTest struct {
	sd                    *fakeSystemd
	echo                  *testutil.Server
	addr, probeAddr, path string
	env                   []string
	gw                    *child
	stop                  chan struct{}
	requests              atomic.Int64
	errs                  chan error
	idle                  []net.Conn
	loop                  *connectLoop
}

// startFDStoreGateway starts a fake systemd and a gateway that tells it
// to store its descriptors, with a main and a probe listener.
func startFDStoreGateway(t *testing.T) *fdStoreTest {
	t.Helper()
	ft := &fdStoreTest{}
	echo, probe := testutil.Echo(t), testutil.Echo(t)
	ft.echo = echo
	dir := t.TempDir()
	ft.sd = newFakeSystemd(t, dir)
	ft.addr, ft.probeAddr = testutil.ListenAddr(t), testutil.ListenAddr(t)
	ft.path = filepath.Join(dir, "gw.yaml")
	cfg := fmt.Sprintf(`log-level: info
log-format: json
health-check: {type: none}
listeners:
  - {name: main, listen-addr: %q, endpoints: [%q]}
  - {name: probe, listen-addr: %q, endpoints: [%q]}
`, ft.addr, echo.Addr, ft.probeAddr, probe.Addr)
	if err := os.WriteFile(ft.path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ft.env = []string{"NOTIFY_SOCKET=" + ft.sd.path, "FDSTORE=64"}
	ft.gw = startChild(t, ft.path, ft.probeAddr, 0, ft.env...)
	return ft
}

// openConns opens the connections under load and the idle ones, starts
// the connect loop and waits until the connections reached the member.
func (ft *fdStoreTest) openConns(t *testing.T) {
	t.Helper()
	ft.stop = make(chan struct{})
	ft.errs = make(chan error, fdStoreLoad)
	for i := range fdStoreLoad {
		c := testutil.Dial(t, ft.addr)
		go func() { ft.errs <- requestLoop(c, i, ft.stop, &ft.requests) }()
	}
	ft.idle = make([]net.Conn, fdStoreIdle)
	for i := range ft.idle {
		ft.idle[i] = testutil.Dial(t, ft.addr)
		if err := testutil.RoundTrip(ft.idle[i], "idle"); err != nil {
			t.Fatal(err)
		}
	}
	ft.loop = startConnectLoop(t, 2, ft.probeAddr, echoExchange)
	testutil.WaitFor(t, "the connections to reach the member", 10*time.Second, func() bool {
		return ft.echo.Accepted() == fdStoreLoad+fdStoreIdle
	})
}

// stopIntoStore stops the gateway and wants it to store its sockets.
func (ft *fdStoreTest) stopIntoStore(t *testing.T) {
	t.Helper()
	if err := ft.gw.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	line := ft.gw.logLines("file descriptor store")
	if len(line) != 1 || !strings.Contains(line[0], `"listeners":2`) {
		t.Fatalf("the stopped gateway did not store its sockets: %v", line)
	}
}

// restartFromStore starts the next gateway with the store, waits until it
// took every descriptor back and requests flow again, and returns it.
func (ft *fdStoreTest) restartFromStore(t *testing.T) *child {
	t.Helper()
	n, _ := ft.sd.stored()
	before := ft.requests.Load()
	next := ft.sd.startWithStore(t, ft.path, ft.probeAddr, ft.env...)
	testutil.WaitFor(t, "the restart to take the store back", 10*time.Second, func() bool {
		return len(next.logLines("restored from systemd's file descriptor store")) == 1
	})
	t.Logf("stored and restored %d descriptors: %s", n, next.logLines("restored from")[0])
	testutil.WaitFor(t, "the store to be emptied", 10*time.Second, func() bool {
		_, removed := ft.sd.stored()
		return removed == n
	})
	testutil.WaitFor(t, "requests to flow again", 10*time.Second, func() bool {
		return ft.requests.Load() > before+fdStoreLoad
	})
	return next
}

// checkConns stops the load and wants no error from it, an answer on
// every idle connection, no failed connect and no new connection to the
// member.
func (ft *fdStoreTest) checkConns(t *testing.T) {
	t.Helper()
	close(ft.stop)
	for range fdStoreLoad {
		if err := <-ft.errs; err != nil {
			t.Error(err)
		}
	}
	for i, c := range ft.idle {
		if err := testutil.RoundTrip(c, fmt.Sprintf("idle %d", i)); err != nil {
			t.Errorf("idle connection %d: %v", i, err)
		}
		c.Close()
	}
	ft.loop.check(t, "connect loop")
	if got := ft.echo.Accepted(); got != fdStoreLoad+fdStoreIdle {
		t.Errorf("the member accepted %d connections, want %d", got, fdStoreLoad+fdStoreIdle)
	}
}
