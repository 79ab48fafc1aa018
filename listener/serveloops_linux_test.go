package listener

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/internal/tlstest"
	"github.com/etcd-gateway/etcd-gateway/resolver"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// gatedListener serves a listener on a Gate over ln in front of backend,
// and returns it with its gate.
func gatedListener(t *testing.T, ln net.Listener, backend string) (*Listener, *Gate) {
	t.Helper()
	pool := upstream.NewPool(upstream.Options{Log: testutil.Logger(t)})
	t.Cleanup(pool.Close)
	pool.UpdateFrom("config", resolver.Static([]string{backend}))
	g, err := NewGate(ln, false)
	if err != nil {
		t.Fatal(err)
	}
	l, err := New("loops", g, pool, Options{Forwarder: newForwarder(t), Log: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = l.Serve() }()
	t.Cleanup(func() { _ = l.Shutdown(context.Background()) })
	testutil.WaitFor(t, "the loops to serve", testTimeout, func() bool {
		l.serveMu.Lock()
		defer l.serveMu.Unlock()
		return l.svc != nil
	})
	return l, g
}

// TestLoopsServeAndTheGatePausesThem: a plain listener is served by the
// forwarder's loops, its clients have no net.Conn, and the Gate's Pause
// leaves new clients in the backlog until Resume.
func TestLoopsServeAndTheGatePausesThem(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, g := gatedListener(t, ln, testutil.Echo(t).Addr)
	c := testutil.Dial(t, l.Addr().String())
	roundTrip(t, c, []byte("through the loops"))
	l.conns.Range(func(k, _ any) bool {
		if pc := k.(*proxyConn); pc.client != nil {
			t.Error("a client accepted by the loops has a net.Conn")
		}
		return true
	})
	g.Pause()
	waiting := testutil.Dial(t, l.Addr().String())
	if _, err := waiting.Write([]byte("w")); err != nil {
		t.Fatal(err)
	}
	_ = waiting.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := waiting.Read(make([]byte, 1)); err == nil {
		t.Fatal("served while the gate is paused")
	}
	if n := l.TotalConns(); n != 1 {
		t.Fatalf("%d accepted while paused, want 1 (the first)", n)
	}
	g.Resume()
	_ = waiting.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := waiting.Read(make([]byte, 1)); err != nil {
		t.Fatalf("not served after Resume: %v", err)
	}

	// Go's listener is closed (the loops hold the socket), and the Gate
	// still sets options and hands the socket on, as a handover does.
	l.SetLimits(Limits{KeepAlive: 7 * time.Second})
	if !l.keepAliveInherited.Load() {
		t.Error("no keepalive set on the listening socket through the Gate")
	}
	g.Pause()
	f, err := g.File()
	if err != nil {
		t.Fatal(err)
	}
	next, err := net.FileListener(f)
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	handedOver := testutil.Dial(t, l.Addr().String())
	accepted, err := next.Accept()
	if err != nil {
		t.Fatalf("the socket handed on does not accept: %v", err)
	}
	accepted.Close()
	handedOver.Close()
}

// TestLoopsServeAUnixSocketWithAnAllowList: on a unix socket, the loops
// read the client's credentials: a list without this process's user and
// group closes it, counted; one with them serves it.
func TestLoopsServeAUnixSocketWithAnAllowList(t *testing.T) {
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "gw.sock"))
	if err != nil {
		t.Fatal(err)
	}
	l, _ := gatedListener(t, ln, testutil.Echo(t).Addr)
	l.SetLimits(Limits{Peers: &Peers{UIDs: []uint32{1 << 30}}})
	denied, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer denied.Close()
	_ = denied.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := denied.Read(make([]byte, 1)); err == nil || l.Counters().Denied != 1 {
		t.Fatalf("a client not on the list: read error %v, %d denied; want closed, 1", err, l.Counters().Denied)
	}
	l.SetLimits(Limits{Peers: &Peers{UIDs: []uint32{uint32(os.Getuid())}}})
	c, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, []byte("allowed"))
}

// TestLoopsHandOffAClientTheyCantServe: a listener served by the loops
// that gets a tls block hands its new clients to a handler goroutine,
// which speaks TLS to them.
func TestLoopsHandOffAClientTheyCantServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, _ := gatedListener(t, ln, testutil.Echo(t).Addr)
	ca, err := tlstest.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	l.SetTLS(&tls.Config{Certificates: []tls.Certificate{cert}})
	c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, []byte("over TLS, handed off"))
}
