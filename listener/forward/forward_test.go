package forward_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/listener/forward"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// newForwarder returns a forwarder closed at the end of the test.
func newForwarder(t testing.TB) *forward.Forwarder {
	t.Helper()
	f, err := forward.NewForwarder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// forwarded starts forwarding between two TCP pairs and returns the
// client's end and the server's end: client ⇄ [gwClient f gwUpstream] ⇄
// server.
func forwarded(t testing.TB, f *forward.Forwarder) (client, server net.Conn, done <-chan [2]int64) {
	t.Helper()
	client, gwClient := tcpPair(t)
	gwUpstream, server := tcpPair(t)
	ch := make(chan [2]int64, 1)
	go func() {
		up, down := f.Forward(gwClient, gwUpstream)
		ch <- [2]int64{up, down}
	}()
	return client, server, ch
}

func TestForwardHalfClose(t *testing.T) {
	client, server, done := forwarded(t, newForwarder(t))
	// The client sends a request and shuts its write side.
	if _, err := client.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if err := client.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The server reads the request to EOF, then answers.
	_ = server.SetReadDeadline(time.Now().Add(testTimeout))
	req, err := io.ReadAll(server)
	if err != nil || string(req) != "request" {
		t.Fatalf("server read %q, %v", req, err)
	}
	if _, err := server.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	server.Close()
	// The client still receives the whole reply after its half-close.
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	reply, err := io.ReadAll(client)
	if err != nil || string(reply) != "reply" {
		t.Fatalf("client read %q, %v", reply, err)
	}
	waitCounts(t, done, [2]int64{7, 5})
}

// waitCounts waits up to 5 s for the byte counts of a forwarding that
// ended, and checks them.
func waitCounts(t *testing.T, done <-chan [2]int64, want [2]int64) {
	t.Helper()
	select {
	case got := <-done:
		if got != want {
			t.Fatalf("the forwarding counted %v bytes, want %v", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the forwarding did not end after both sides closed")
	}
}

func TestForwardLargeTransferByteExact(t *testing.T) {
	client, server, done := forwarded(t, newForwarder(t))
	const size = 64 << 20
	payload := make([]byte, size)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(payload)

	// Both directions at once: the server echoes what it reads.
	go func() {
		_, _ = io.Copy(server, server)
		server.(*net.TCPConn).CloseWrite()
	}()
	go func() {
		_, _ = client.Write(payload)
		client.(*net.TCPConn).CloseWrite()
	}()
	h := sha256.New()
	n, err := io.Copy(h, client)
	if err != nil {
		t.Fatal(err)
	}
	if n != size || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("echo came back with %d bytes, sha256 match=%v", n, bytes.Equal(h.Sum(nil), want[:]))
	}
	if got := <-done; got != [2]int64{size, size} {
		t.Fatalf("Forward counted %v, want %d each way", got, size)
	}
}

func TestForwardResetClosesBothSides(t *testing.T) {
	client, server, done := forwarded(t, newForwarder(t))
	// The server resets its connection (SO_LINGER 0).
	_ = server.(*net.TCPConn).SetLinger(0)
	server.Close()
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := client.Read(make([]byte, 1)); err == nil {
		t.Fatal("client read succeeded after the upstream reset")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Forward did not return after a reset")
	}
}

// testTimeout bounds every blocking step of these tests, so that a bug
// fails a test instead of hanging it. It is never a speed assertion.
const testTimeout = 20 * time.Second

// openFDs is the number of descriptors this process has open.
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	return len(ents)
}

// echo makes server echo what it reads, then shut its write side at EOF.
func echo(server net.Conn) {
	go func() {
		_, _ = io.Copy(server, server)
		_ = server.(*net.TCPConn).CloseWrite()
	}()
}

// roundTrip sends msg on c and reads its echo.
func roundTrip(t testing.TB, c net.Conn, msg []byte) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("echo differs from the request")
	}
}

// sendAndCheck writes size random bytes on c from another goroutine, shuts
// c's write side, and checks that the echo matches, byte for byte.
func sendAndCheck(c net.Conn, size int) error {
	payload := make([]byte, size)
	_, _ = rand.Read(payload)
	want := sha256.Sum256(payload)
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		return err
	}
	if err := <-werr; err != nil {
		return err
	}
	if n != int64(size) || !bytes.Equal(h.Sum(nil), want[:]) {
		return fmt.Errorf("echo of %d bytes came back as %d bytes, sha256 match=%v", size, n, bytes.Equal(h.Sum(nil), want[:]))
	}
	return nil
}

func TestForwardManyConnectionsByteExact(t *testing.T) {
	f := newForwarder(t)
	// Sizes below, at and far above Linux's copy buffer, so that both the
	// copy and the splice paths run, interleaved on the same loops.
	sizes := []int{1, 100, 16<<10 - 1, 16 << 10, 16<<10 + 1, 300 << 10, 2 << 20}
	const n = 64
	var wg sync.WaitGroup
	errs := make([]error, n)
	dones := make([]<-chan [2]int64, n)
	for i := range n {
		client, server, done := forwarded(t, f)
		echo(server)
		dones[i] = done
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = sendAndCheck(client, sizes[i%len(sizes)])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("connection %d (%d bytes): %v", i, sizes[i%len(sizes)], err)
		}
		if got, size := <-dones[i], int64(sizes[i%len(sizes)]); got != [2]int64{size, size} {
			t.Fatalf("connection %d: Forward counted %v, want %d each way", i, got, size)
		}
	}
}

func TestForwardEOFRightAfterData(t *testing.T) {
	// Data and FIN often arrive in one event: the short read must not be
	// taken for "drained" when the peer has shut its side.
	f := newForwarder(t)
	const n = 100
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		client, server, done := forwarded(t, f)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = client.SetDeadline(time.Now().Add(testTimeout))
			_ = server.SetDeadline(time.Now().Add(testTimeout))
			if _, err := client.Write([]byte("last words")); err != nil {
				errs[i] = err
				return
			}
			_ = client.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(server)
			if err != nil || string(got) != "last words" {
				errs[i] = fmt.Errorf("server read %q, %v", got, err)
				return
			}
			// The same the other way.
			_, _ = server.Write([]byte("reply"))
			server.Close()
			if got, err := io.ReadAll(client); err != nil || string(got) != "reply" {
				errs[i] = fmt.Errorf("client read %q, %v", got, err)
				return
			}
			<-done
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

func TestForwardServerSpeaksFirst(t *testing.T) {
	client, server, done := forwarded(t, newForwarder(t))
	_ = client.SetDeadline(time.Now().Add(testTimeout))
	if _, err := server.Write([]byte("banner")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 6)
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "banner" {
		t.Fatalf("client read %q, %v", got, err)
	}
	client.Close()
	server.Close()
	<-done
}

func TestCloseEndsAnIdleForwarding(t *testing.T) {
	f := newForwarder(t)
	client, gwClient := tcpPair(t)
	gwUpstream, server := tcpPair(t)
	done := make(chan [2]int64, 1)
	fc, err := f.Start(gwClient, gwUpstream, func(up, down int64) { done <- [2]int64{up, down} })
	if err != nil {
		t.Fatal(err)
	}
	roundTripVia(t, client, server, []byte("ping"))
	if err := fc.Close(); err != nil {
		t.Fatal(err)
	}
	if got := <-done; got != [2]int64{4, 4} {
		t.Fatalf("done got %v, want [4 4]", got)
	}
	_ = fc.Close() // again: nothing happens
	// Both ends see the connection end.
	for _, c := range []net.Conn{client, server} {
		_ = c.SetReadDeadline(time.Now().Add(testTimeout))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("read succeeded after Close")
		}
	}
	if !isClosed(gwClient.(syscall.Conn)) || !isClosed(gwUpstream.(syscall.Conn)) {
		t.Fatal("the gateway's sockets are still open")
	}
}

// isClosed reports whether c's descriptor has been closed.
func isClosed(c syscall.Conn) bool {
	raw, err := c.SyscallConn()
	return err != nil || raw.Control(func(uintptr) {}) != nil
}

// roundTripVia sends msg from client to server and back, by hand.
func roundTripVia(t *testing.T, client, server net.Conn, msg []byte) {
	t.Helper()
	_ = client.SetDeadline(time.Now().Add(testTimeout))
	_ = server.SetDeadline(time.Now().Add(testTimeout))
	buf := make([]byte, len(msg))
	if _, err := client.Write(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(server, buf); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Write(buf); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(client, buf); err != nil || !bytes.Equal(buf, msg) {
		t.Fatalf("client read %q, %v", buf, err)
	}
}
