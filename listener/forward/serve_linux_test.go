//go:build linux

package forward_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/listener/forward"
)

// acceptor is a forward.Acceptor that connects every client to the same
// upstream addresses, and counts what it is asked.
type acceptor struct {
	upstream []netip.AddrPort
	noRoom   atomic.Bool // Room says no
	refuse   atomic.Bool // Accept refuses
	accepted atomic.Int64
	ended    atomic.Int64
	errs     atomic.Int64
	mu       sync.Mutex
	lastErr  error
}

func (a *acceptor) Room() bool { return !a.noRoom.Load() }

func (a *acceptor) Error(err error) time.Duration {
	a.mu.Lock()
	a.lastErr = err
	a.mu.Unlock()
	a.errs.Add(1)
	return 5 * time.Millisecond
}

func (a *acceptor) Accept(fd int, peer netip.AddrPort) (forward.Client, bool) {
	if a.refuse.Load() {
		return forward.Client{}, false
	}
	if !peer.IsValid() {
		panic("accepted a TCP client with no address")
	}
	a.accepted.Add(1)
	return forward.Client{
		Upstream: &addrs{list: a.upstream},
		Done:     func(int64, int64) { a.ended.Add(1) },
		Started:  func(*forward.Pair) {},
	}, true
}

// serve makes a loopback listening socket served by f's loops with a,
// and returns its address and the Service.
func serve(t *testing.T, f *forward.Forwarder, a forward.Acceptor, paused bool) (string, *forward.Service) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // the Service keeps its duplicate
	raw, _ := ln.(*net.TCPListener).SyscallConn()
	fd := -1
	_ = raw.Control(func(s uintptr) { fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) })
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.Serve(fd, a, paused)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	sa, err := unix.Getsockname(fd) // the socket's, which the Service keeps
	if err != nil {
		t.Fatal(err)
	}
	in4 := sa.(*unix.SockaddrInet4)
	return netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(in4.Port)).String(), s
}

func TestServeAcceptsAndConnectsInTheLoops(t *testing.T) {
	a := &acceptor{upstream: []netip.AddrPort{refusedAddr(t), echoServer(t)}}
	f := newForwarder(t)
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	addr, s := serve(t, f, a, false)
	var clients []net.Conn
	for range 50 {
		c := testutil.Dial(t, addr)
		roundTrip(t, c, []byte("through the loops"))
		clients = append(clients, c)
	}
	for _, c := range clients {
		c.Close()
	}
	testutil.WaitFor(t, "every pair to end", testTimeout, func() bool { return a.ended.Load() == 50 })
	if n := a.accepted.Load(); n != 50 {
		t.Fatalf("%d accepted, want 50", n)
	}
	s.Stop()
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("connected after Stop: the socket is still open")
	}
	// Nothing left: no descriptor (the echo server closes its side once
	// it reads EOF), no goroutine.
	waitNothingLeft(t, fds, goroutines)
}

// waitNothingLeft waits until the process has no more descriptors and
// goroutines than it had; on time out it names what is left.
func waitNothingLeft(t *testing.T, fds, goroutines int) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for openFDs(t) > fds || runtime.NumGoroutine() > goroutines {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("left: %d descriptors (had %d): %v; %d goroutines (had %d):\n%s",
				openFDs(t), fds, fdTargets(), runtime.NumGoroutine(), goroutines, buf)
		}
		time.Sleep(time.Millisecond)
	}
}

// fdTargets lists what the process's descriptors are.
func fdTargets() []string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var out []string
	for _, e := range ents {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		out = append(out, e.Name()+"→"+target)
	}
	return out
}

func TestServePausedLeavesClientsInTheBacklog(t *testing.T) {
	a := &acceptor{upstream: []netip.AddrPort{echoServer(t)}}
	addr, s := serve(t, newForwarder(t), a, true)
	c := testutil.Dial(t, addr) // completed by the kernel, in the backlog
	if _, err := c.Write([]byte("waiting")); err != nil {
		t.Fatal(err)
	}
	s.Resume()
	buf := make([]byte, 7)
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := c.Read(buf); err != nil || string(buf) != "waiting" {
		t.Fatalf("read %q, %v", buf, err)
	}
	s.Pause()
	if n := a.accepted.Load(); n != 1 {
		t.Fatalf("%d accepted, want 1", n)
	}
	waiting := testutil.Dial(t, addr)
	s.Resume()
	roundTrip(t, waiting, []byte("after the second pause"))
}

func TestServeRefusedClientIsClosed(t *testing.T) {
	a := &acceptor{upstream: []netip.AddrPort{echoServer(t)}}
	a.refuse.Store(true)
	addr, _ := serve(t, newForwarder(t), a, false)
	c := testutil.Dial(t, addr)
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a refused client was served")
	}
}

func TestServeWithoutRoomPausesAndResumes(t *testing.T) {
	a := &acceptor{upstream: []netip.AddrPort{echoServer(t)}}
	a.noRoom.Store(true)
	addr, _ := serve(t, newForwarder(t), a, false)
	c := testutil.Dial(t, addr)
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	// No room: the loops take the socket out and look again later; the
	// client waits.
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); err == nil || a.accepted.Load() != 0 {
		t.Fatal("a client was served without room")
	}
	a.noRoom.Store(false)
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatalf("not served once there was room: %v", err)
	}
}

// TestServeOutOfDescriptorsPausesAndRecovers runs the loops into the
// open-file limit: accept4 fails with EMFILE, the loop reports it and
// pauses, and once descriptors are free again the waiting clients are
// served. It lowers the process's limit for a moment: nothing else in the
// package runs meanwhile.
func TestServeOutOfDescriptorsPausesAndRecovers(t *testing.T) {
	a := &acceptor{upstream: []netip.AddrPort{echoServer(t)}}
	addr, s := serve(t, newForwarder(t), a, true)
	clients := []net.Conn{testutil.Dial(t, addr), testutil.Dial(t, addr)}
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	// No descriptor free: the limit just above the highest one open, and
	// the holes below it filled.
	tight := old
	tight.Cur = uint64(highestFD(t) + 1)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &tight); err != nil {
		t.Skip("can't lower the open-file limit:", err)
	}
	var fillers []int
	restore := sync.OnceFunc(func() {
		for _, fd := range fillers {
			_ = unix.Close(fd)
		}
		_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &old)
	})
	defer restore()
	for range 1 << 16 {
		fd, err := unix.Dup(0)
		if err != nil {
			break
		}
		fillers = append(fillers, fd)
	}
	s.Resume()
	testutil.WaitFor(t, "accept to fail", testTimeout, func() bool { return a.errs.Load() > 0 })
	restore()
	a.mu.Lock()
	err := a.lastErr
	a.mu.Unlock()
	if !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("accept failed with %v, want EMFILE", err)
	}
	for _, c := range clients {
		roundTrip(t, c, []byte("served after EMFILE"))
	}
}

// highestFD is the highest descriptor number open now, plus one.
func highestFD(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	highest := 0
	for _, e := range ents {
		var n int
		for _, ch := range e.Name() {
			n = n*10 + int(ch-'0')
		}
		highest = max(highest, n)
	}
	return highest
}
