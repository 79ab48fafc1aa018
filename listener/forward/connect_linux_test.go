//go:build linux

package forward_test

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/loopback"
	"github.com/etcd-gateway/etcd-gateway/listener/forward"
)

// addrs is a forward.Upstream that tries a fixed list of addresses and
// records what came of each.
type addrs struct {
	mu        sync.Mutex
	list      []netip.AddrPort
	next      int
	failed    []error
	connected int
	gaveUp    bool
}

func (a *addrs) Next() (netip.AddrPort, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next == len(a.list) {
		a.gaveUp = true
		return netip.AddrPort{}, false
	}
	a.next++
	return a.list[a.next-1], true
}

func (a *addrs) Failed(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failed = append(a.failed, err)
}

func (a *addrs) Connected() forward.Meters {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.connected++
	return forward.Meters{}
}

// outcome returns what came of the tries so far.
func (a *addrs) outcome() (failed []error, connected int, gaveUp bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]error(nil), a.failed...), a.connected, a.gaveUp
}

// closingEcho echoes what c sends, and closes c at its EOF.
func closingEcho(c net.Conn) {
	go func() {
		_, _ = io.Copy(c, c)
		_ = c.Close()
	}()
}

// echoServer is a loopback server that echoes every connection.
func echoServer(t *testing.T) netip.AddrPort { return serveEach(t, closingEcho) }

// serveEach is a loopback server that hands every connection to handle.
func serveEach(t *testing.T, handle func(net.Conn)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, ln, handle)
}

// serveOn hands every connection ln accepts to handle, until the test
// ends, and returns ln's address.
func serveOn(t *testing.T, ln net.Listener, handle func(net.Conn)) netip.AddrPort {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			handle(c)
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// refusedAddr is a loopback address held for the test where nothing
// listens nor can (loopback.Dead).
func refusedAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	h, err := loopback.Dead("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return netip.MustParseAddrPort(h.Addr())
}

// connectThrough connects a client through f to up's addresses and
// returns the client's end and the channel done sends the counts to.
func connectThrough(t *testing.T, f *forward.Forwarder, up forward.Upstream, o forward.ConnectOptions) (net.Conn, <-chan [2]int64) {
	t.Helper()
	client, gwClient := tcpPair(t)
	done := make(chan [2]int64, 1)
	if _, err := f.Connect(gwClient.(*net.TCPConn), up, o, func(u, d int64) { done <- [2]int64{u, d} }); err != nil {
		t.Fatal(err)
	}
	return client, done
}

func TestConnectForwardsByteExact(t *testing.T) {
	up := &addrs{list: []netip.AddrPort{echoServer(t)}}
	client, done := connectThrough(t, newForwarder(t), up, forward.ConnectOptions{})
	roundTrip(t, client, []byte("hello"))
	burst := make([]byte, 3<<20)
	for i := range burst {
		burst[i] = byte(i * 7)
	}
	roundTrip(t, client, burst)
	_ = client.Close()
	waitCounts(t, done, [2]int64{5 + 3<<20, 5 + 3<<20})
	if failed, connected, _ := up.outcome(); len(failed) != 0 || connected != 1 {
		t.Fatalf("failed %v, connected %d times; want no failure, one connect", failed, connected)
	}
}

func TestConnectFailsOverPastARefusedAddress(t *testing.T) {
	up := &addrs{list: []netip.AddrPort{refusedAddr(t), refusedAddr(t), echoServer(t)}}
	client, _ := connectThrough(t, newForwarder(t), up, forward.ConnectOptions{})
	roundTrip(t, client, []byte("through"))
	failed, connected, _ := up.outcome()
	if len(failed) != 2 || connected != 1 {
		t.Fatalf("failed %v, connected %d; want 2 failures then a connect", failed, connected)
	}
	for _, err := range failed {
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("failure %v, want connection refused (all: %v)", err, failed)
		}
	}
}

func TestConnectGivesUpWhenNoAddressAnswers(t *testing.T) {
	up := &addrs{list: []netip.AddrPort{refusedAddr(t)}}
	client, done := connectThrough(t, newForwarder(t), up, forward.ConnectOptions{})
	waitCounts(t, done, [2]int64{0, 0})
	_ = client.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := client.Read(make([]byte, 1)); err == nil {
		t.Fatal("the client was not closed")
	}
	if failed, connected, gaveUp := up.outcome(); len(failed) != 1 || connected != 0 || !gaveUp {
		t.Fatalf("failed %v, connected %d, gave up %v", failed, connected, gaveUp)
	}
}

// blackhole returns a loopback address whose listen backlog is full and
// that never accepts: a connect to it gets no answer (its SYN is dropped).
func blackhole(t *testing.T) netip.AddrPort {
	t.Helper()
	addr, _ := fullBacklog(t)
	return addr
}

// fullBacklog returns a loopback listening socket whose backlog is full,
// and its address.
func fullBacklog(t *testing.T) (netip.AddrPort, net.Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	// Fill the backlog (Go listens with the system's somaxconn) until a
	// connect hangs.
	for i := 0; i < 8192; i++ {
		c, err := net.DialTimeout("tcp", addr.String(), 200*time.Millisecond)
		if err != nil {
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				return addr, ln
			}
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("the backlog never filled")
	return addr, ln
}

// TestConnectCompletesLater: a connect that the handshake doesn't finish
// inside the call (the member's backlog is full: its SYN is dropped, and
// sent again once the member accepts) ends on the socket's writable
// event.
func TestConnectCompletesLater(t *testing.T) {
	addr, ln := fullBacklog(t)
	up := &addrs{list: []netip.AddrPort{addr}}
	client, _ := connectThrough(t, newForwarder(t), up, forward.ConnectOptions{Timeout: testTimeout})
	serveOn(t, ln, closingEcho) // the member starts accepting: the SYN sent again gets in
	roundTrip(t, client, []byte("connected late"))
	if failed, connected, _ := up.outcome(); len(failed) != 0 || connected != 1 {
		t.Fatalf("failed %v, connected %d; want one connect", failed, connected)
	}
}

func TestConnectTimesOutInTheLoopAndFailsOver(t *testing.T) {
	up := &addrs{list: []netip.AddrPort{blackhole(t), echoServer(t)}}
	client, _ := connectThrough(t, newForwarder(t), up, forward.ConnectOptions{Timeout: 100 * time.Millisecond})
	roundTrip(t, client, []byte("after a timeout"))
	failed, connected, _ := up.outcome()
	if len(failed) != 1 || !errors.Is(failed[0], os.ErrDeadlineExceeded) || connected != 1 {
		t.Fatalf("failed %v, connected %d; want a timeout then a connect", failed, connected)
	}
}

func TestCloseWhileConnecting(t *testing.T) {
	up := &addrs{list: []netip.AddrPort{blackhole(t)}}
	f := newForwarder(t)
	_, gwClient := tcpPair(t)
	done := make(chan [2]int64, 1)
	p, err := f.Connect(gwClient.(*net.TCPConn), up, forward.ConnectOptions{Timeout: time.Hour}, func(u, d int64) { done <- [2]int64{u, d} })
	if err != nil {
		t.Fatal(err)
	}
	_ = p.Close()
	waitCounts(t, done, [2]int64{0, 0})
}

// resetter is a loopback server that resets every connection as soon as
// it has accepted it.
func resetter(t *testing.T) netip.AddrPort {
	return serveEach(t, func(c net.Conn) {
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
}

func TestConnectToAMemberThatResets(t *testing.T) {
	up := &addrs{list: []netip.AddrPort{resetter(t)}}
	client, done := connectThrough(t, newForwarder(t), up, forward.ConnectOptions{})
	_, _ = client.Write([]byte("request"))
	<-waitDone(t, done)
	_ = client.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := client.Read(make([]byte, 1)); err == nil {
		t.Fatal("the client was not closed")
	}
	// The reset comes after the connect, or, when the member is quick,
	// before the loop saw the connect through: then the try failed.
	if failed, connected, _ := up.outcome(); connected+len(failed) != 1 {
		t.Fatalf("connected %d times, failed %v; want one try", connected, failed)
	}
}

// waitDone returns done once it has sent, within the test timeout.
func waitDone(t *testing.T, done <-chan [2]int64) <-chan [2]int64 {
	t.Helper()
	select {
	case c := <-done:
		ch := make(chan [2]int64, 1)
		ch <- c
		return ch
	case <-time.After(testTimeout):
		t.Fatal("done not called")
	}
	return nil
}

func TestConnectOverIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	up := &addrs{list: []netip.AddrPort{serveOn(t, ln, closingEcho)}}
	client, _ := connectThrough(t, newForwarder(t), up, forward.ConnectOptions{KeepAlive: 15 * time.Second})
	roundTrip(t, client, []byte("over ::1"))
}
