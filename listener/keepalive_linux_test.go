package listener

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/resolver"
	"github.com/etcd-gateway/etcd-gateway/upstream"

	"golang.org/x/sys/unix"
)

// keepAliveOf returns SO_KEEPALIVE and TCP_KEEPIDLE (seconds) of raw.
func keepAliveOf(t *testing.T, raw controller) (on, idle int) {
	t.Helper()
	if raw == nil {
		t.Fatal("no socket")
	}
	var err1, err2 error
	if err := raw.Control(func(fd uintptr) {
		on, err1 = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		idle, err2 = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
	}); err != nil {
		t.Fatal(err)
	}
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return on, idle
}

func TestKeepAliveSetOnBothSides(t *testing.T) {
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pool := upstream.NewPool(upstream.Options{Log: testutil.Logger(t)})
	pool.UpdateFrom("config", resolver.Static([]string{testutil.Echo(t).Addr}))
	t.Cleanup(pool.Close)
	l, err := New("main", ln, pool, Options{Forwarder: newForwarder(t), Log: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	l.SetLimits(Limits{KeepAlive: 7 * time.Second})
	go func() { _ = l.Serve() }()
	t.Cleanup(func() { _ = l.Shutdown(context.Background()) })
	if !l.keepAliveInherited.Load() {
		t.Error("the listening socket does not carry the keepalive: every client pays its own setsockopt calls")
	}
	checkKeepAlive(t, l, 7)

	// A new keepalive applies to connections accepted from then on.
	lim := l.Limits()
	lim.KeepAlive = 9 * time.Second
	l.SetLimits(lim)
	checkKeepAlive(t, l, 9)
}

// checkKeepAlive opens a connection through l and checks that both of its
// sides have keepalive on with an idle time of idle seconds.
func checkKeepAlive(t *testing.T, l *Listener, idle int) {
	t.Helper()
	c := testutil.Dial(t, l.Addr().String())
	defer c.Close()
	if !testutil.Echoes(c) {
		t.Fatal("no echo")
	}
	local := c.LocalAddr().String()
	var pc *proxyConn
	l.conns.Range(func(k, _ any) bool {
		if k.(*proxyConn).remote() == local {
			pc = k.(*proxyConn)
		}
		return pc == nil
	})
	if pc == nil {
		t.Fatal("no tracked connection")
	}
	for side, i := range map[string]int{"client": 0, "upstream": 1} {
		if on, got := keepAliveOf(t, pc.socket(i)); on == 0 || got != idle {
			t.Errorf("%s side: SO_KEEPALIVE=%d TCP_KEEPIDLE=%d, want on and %d", side, on, got, idle)
		}
	}
}
