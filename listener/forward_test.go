package listener

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"testing"
	"time"
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

// forwarded starts Forward between two TCP pairs and returns the client's
// end and the server's end: client ⇄ [gwClient Forward gwUpstream] ⇄ server.
func forwarded(t testing.TB) (client, server net.Conn, done <-chan [2]int64) {
	t.Helper()
	client, gwClient := tcpPair(t)
	gwUpstream, server := tcpPair(t)
	ch := make(chan [2]int64, 1)
	go func() {
		up, down := Forward(gwClient, gwUpstream)
		ch <- [2]int64{up, down}
	}()
	return client, server, ch
}

func TestForwardHalfClose(t *testing.T) {
	client, server, done := forwarded(t)
	// The client sends a request and shuts its write side.
	if _, err := client.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if err := client.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The server reads the request to EOF, then answers.
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
	select {
	case n := <-done:
		if n != [2]int64{7, 5} {
			t.Fatalf("Forward counted %v bytes, want [7 5]", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Forward did not return after both sides closed")
	}
}

func TestForwardLargeTransferByteExact(t *testing.T) {
	client, server, done := forwarded(t)
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
	client, server, done := forwarded(t)
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
