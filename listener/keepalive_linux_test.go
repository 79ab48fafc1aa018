package listener

import (
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// keepAliveOf returns SO_KEEPALIVE and TCP_KEEPIDLE (seconds) of c.
func keepAliveOf(t *testing.T, c net.Conn) (on, idle int) {
	t.Helper()
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
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
	lc := listenerConfig("main", []string{echoServer(t)})
	lc.KeepAlive = 7 * time.Second
	g := startGroup(t, lc)
	l := g.Listeners()["main"]
	c := dial(t, l.Addr().String())
	if !echoes(c) {
		t.Fatal("no echo")
	}
	var pc *proxyConn
	l.conns.Range(func(k, _ any) bool { pc = k.(*proxyConn); return false })
	if pc == nil {
		t.Fatal("no tracked connection")
	}
	pc.mu.Lock()
	up := pc.up
	pc.mu.Unlock()
	for side, conn := range map[string]net.Conn{"client": pc.client, "upstream": up} {
		if on, idle := keepAliveOf(t, conn); on == 0 || idle != 7 {
			t.Errorf("%s side: SO_KEEPALIVE=%d TCP_KEEPIDLE=%d, want on and 7", side, on, idle)
		}
	}
}
