//go:build linux

package forward_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/etcd-gateway/etcd-gateway/listener/forward"
)

func TestForwardIdleThenBurstHoldsNoPipeWhenQuiet(t *testing.T) {
	f := newForwarder(t)
	const n = 16
	clients := make([]net.Conn, n)
	for i := range clients {
		client, server, _ := forwarded(t, f)
		echo(server)
		clients[i] = client
		roundTrip(t, client, []byte("hello")) // forwarding is set up
	}
	// Idle: two sockets per connection and nothing else.
	idle := openFDs(t)

	// A burst on every connection at once, big enough to be spliced.
	burst := make([]byte, 1<<20)
	_, _ = rand.Read(burst)
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			roundTrip(t, c, burst)
		}()
	}
	wg.Wait()
	// One more small round trip each: it runs on the loops after the
	// burst's last pump call, so every connection is quiet again.
	for _, c := range clients {
		roundTrip(t, c, []byte("quiet?"))
	}
	// Quiet: the pipes went back to the loops, which keep a few.
	if got, most := openFDs(t), idle+2*forward.MaxFreePipes*len(f.EpollFiles()); got > most {
		t.Fatalf("%d descriptors open after the burst, want at most %d (%d when idle before it)", got, most, idle)
	}
}

func TestForwarderCloseEndsItsConnections(t *testing.T) {
	f, err := forward.NewForwarder()
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	done := make(chan struct{}, n)
	var clients, gwConns []net.Conn
	for range n {
		client, gwClient := tcpPair(t)
		gwUpstream, _ := tcpPair(t)
		if _, err := f.Start(gwClient, gwUpstream, func(int64, int64) { done <- struct{}{} }); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, client)
		gwConns = append(gwConns, gwClient, gwUpstream)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for range n {
		<-done
	}
	for _, c := range clients {
		_ = c.SetReadDeadline(time.Now().Add(testTimeout))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("read succeeded after the forwarder closed")
		}
	}
	for _, c := range gwConns {
		if !isClosed(c.(syscall.Conn)) {
			t.Fatal("a forwarded socket is still open")
		}
	}
	for _, file := range f.EpollFiles() {
		if !isClosed(file) {
			t.Fatal("an epoll descriptor is still open")
		}
	}
	a, b := tcpPair(t)
	if _, err := f.Start(a, b, func(int64, int64) { t.Error("done called") }); err == nil {
		t.Fatal("Start succeeded on a closed forwarder")
	}
}

// TestStartCopiesWhatIsNotASocket: a connection without a socket (TLS, or
// here net.Pipe) is forwarded by the goroutine copy instead.
func TestStartCopiesWhatIsNotASocket(t *testing.T) {
	client, gwClient := net.Pipe()
	gwUpstream, server := net.Pipe()
	done := make(chan [2]int64, 1)
	if _, err := newForwarder(t).Start(gwClient, gwUpstream, func(up, down int64) { done <- [2]int64{up, down} }); err != nil {
		t.Fatalf("Start: %v", err)
	}
	go func() { _, _ = client.Write([]byte("hello")) }()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("upstream read %q, %v", buf, err)
	}
	go func() { _, _ = server.Write([]byte("hi")) }()
	if _, err := io.ReadFull(client, buf[:2]); err != nil || string(buf[:2]) != "hi" {
		t.Fatalf("client read %q, %v", buf[:2], err)
	}
	client.Close()
	waitCounts(t, done, [2]int64{5, 2})
}

func TestForwardFirstRequestWhenTheUpstreamIsFull(t *testing.T) {
	// The client's first request is read before the pair is registered; if
	// the upstream can't take it, it waits for write space.
	client, gwClient := tcpPair(t)
	gwUpstream, server := tcpPair(t)
	// Fill the upstream connection until the kernel takes no more.
	junk := bytes.Repeat([]byte{'j'}, 64<<10)
	filled := 0
	raw, err := gwUpstream.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.Write(func(fd uintptr) bool {
		for {
			n, err := unix.Write(int(fd), junk)
			if n > 0 {
				filled += n
			}
			if err != nil {
				return true
			}
		}
	})
	req := make([]byte, forward.CopyBufSize)
	_, _ = rand.Read(req)
	_ = client.SetDeadline(time.Now().Add(testTimeout))
	if _, err := client.Write(req); err != nil {
		t.Fatal(err)
	}
	done := make(chan [2]int64, 1)
	if _, err := newForwarder(t).Start(gwClient, gwUpstream, func(up, down int64) { done <- [2]int64{up, down} }); err != nil {
		t.Fatal(err)
	}
	_ = server.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.CopyN(io.Discard, server, int64(filled)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(req))
	if _, err := io.ReadFull(server, got); err != nil || !bytes.Equal(got, req) {
		t.Fatalf("server got %d bytes, equal=%v, %v", len(got), bytes.Equal(got, req), err)
	}
	client.Close()
	server.Close()
	if n := <-done; n[0] != int64(len(req)) {
		t.Fatalf("done counted %v", n)
	}
}

func TestForwardClientResetBeforeStart(t *testing.T) {
	client, gwClient := tcpPair(t)
	gwUpstream, server := tcpPair(t)
	_ = client.(*net.TCPConn).SetLinger(0)
	client.Close()
	done := make(chan [2]int64, 1)
	if _, err := newForwarder(t).Start(gwClient, gwUpstream, func(up, down int64) { done <- [2]int64{up, down} }); err != nil {
		t.Fatal(err)
	}
	<-done
	_ = server.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := server.Read(make([]byte, 1)); err == nil {
		t.Fatal("the server could still read")
	}
}
