package loopback

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

func reserve(t *testing.T, ip string) *Hold {
	t.Helper()
	h, err := Reserve(net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func refused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
		t.Fatalf("a connect to %s went through", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connect to %s: %v, want connection refused", addr, err)
	}
}

// TestReserveLetsOneListenerIn: a listener binds the reserved address and
// gets its connections; a second one can't bind while it listens; once it
// closes, connects are refused and it can listen again.
func TestReserveLetsOneListenerIn(t *testing.T) {
	for _, ip := range []string{"127.0.0.1", "::1"} {
		h := reserve(t, ip)
		ln, err := net.Listen("tcp", h.Addr())
		if err != nil {
			t.Fatalf("%s: listen on the reserved address: %v", ip, err)
		}
		c, err := net.Dial("tcp", h.Addr())
		if err != nil {
			t.Fatalf("%s: dial the listener: %v", ip, err)
		}
		c.Close()
		if ln2, err := net.Listen("tcp", h.Addr()); err == nil {
			ln2.Close()
			t.Fatalf("%s: a second listener bound the reserved address", ip)
		}
		ln.Close()
		refused(t, h.Addr())
		ln, err = net.Listen("tcp", h.Addr())
		if err != nil {
			t.Fatalf("%s: listen again: %v", ip, err)
		}
		ln.Close()
	}
}

// TestHeldPortIsNotHandedOut: while a port is held, the kernel gives it to
// no bind(0), no wildcard bind(0) and no outgoing connection.
func TestHeldPortIsNotHandedOut(t *testing.T) {
	held := map[int]bool{reserve(t, "127.0.0.1").Port(): true}
	d, err := Dead("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	held[d.Port()] = true
	srv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for i := range 3000 {
		for _, addr := range []string{"127.0.0.1:0", ":0"} {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			if got := ln.Addr().(*net.TCPAddr).Port; held[got] {
				t.Fatalf("bind(%s) got held port %d after %d tries", addr, got, i)
			}
			ln.Close()
		}
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if port := c.LocalAddr().(*net.TCPAddr).Port; held[port] {
			t.Fatalf("an outgoing connection got held port %d", port)
		}
		c.Close()
	}
}

// TestDeadRefusesAndCannotBeBound: a Dead port refuses connects and no
// listener can bind it.
func TestDeadRefusesAndCannotBeBound(t *testing.T) {
	d, err := Dead("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	refused(t, d.Addr())
	if ln, err := net.Listen("tcp", d.Addr()); err == nil {
		ln.Close()
		t.Fatal("a listener bound a dead port")
	}
}

// TestReserveOnHoldsOnePortOnEveryAddress: one port on several loopback
// addresses, each listenable by one listener.
func TestReserveOnHoldsOnePortOnEveryAddress(t *testing.T) {
	holds, err := ReserveOn("127.0.0.1", "127.0.0.2", "127.0.0.3")
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(holds)
	for _, h := range holds {
		if h.Port() != holds[0].Port() {
			t.Fatalf("ports differ: %s and %s", h.Addr(), holds[0].Addr())
		}
		ln, err := net.Listen("tcp", h.Addr())
		if err != nil {
			t.Fatalf("listen on %s: %v", h.Addr(), err)
		}
		ln.Close()
		refused(t, h.Addr())
	}
}

func TestReserveRejectsANonLoopbackAddress(t *testing.T) {
	if _, err := Reserve("0.0.0.0:0"); err == nil {
		t.Fatal("Reserve took the wildcard address")
	}
}

// TestReserveUDPGivesEveryDatagramToTheServer: a UDP server bound beside
// the hold (SO_REUSEADDR) gets the datagrams; once it closes, a sender is
// told the port is unreachable, and a socket without SO_REUSEADDR can't
// bind the port.
func TestReserveUDPGivesEveryDatagramToTheServer(t *testing.T) {
	h, err := ReserveUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv, err := ListenUDP(h.Addr())
	if err != nil {
		t.Fatalf("bind beside the hold: %v", err)
	}
	c, err := net.Dial("udp", h.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 16)
	for i := range 10 {
		if _, err := c.Write([]byte("q")); err != nil {
			t.Fatal(err)
		}
		_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := srv.ReadFrom(buf); err != nil {
			t.Fatalf("datagram %d did not reach the server: %v", i, err)
		}
	}
	srv.Close()
	_, _ = c.Write([]byte("q"))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(buf); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("read after the server closed: %v, want connection refused", err)
	}
	if pc, err := net.ListenPacket("udp", h.Addr()); err == nil {
		pc.Close()
		t.Fatal("a socket without SO_REUSEADDR bound the held UDP port")
	}
}
