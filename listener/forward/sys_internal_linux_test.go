package forward

import (
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A connect's socket has the whole keepalive rule, whether it sets the
// probe count itself or leaves it to the kernel's default.
func TestConnectSocketKeepAlive(t *testing.T) {
	for _, defaultProbes := range []bool{false, kernelProbesAreOurs()} {
		fd, err := tcpSocket(netip.MustParseAddrPort("127.0.0.1:1"), keepAlive{15 * time.Second, defaultProbes})
		if err != nil {
			t.Fatal(err)
		}
		want := map[[2]int]int{
			{unix.SOL_SOCKET, unix.SO_KEEPALIVE}:   1,
			{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE}:  15,
			{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL}: 15,
			{unix.IPPROTO_TCP, unix.TCP_KEEPCNT}:   KeepAliveProbes,
			{unix.IPPROTO_TCP, unix.TCP_NODELAY}:   1,
		}
		for opt, v := range want {
			if got, err := unix.GetsockoptInt(fd, opt[0], opt[1]); err != nil || got != v {
				t.Errorf("defaultProbes=%v: option %v = %d (%v), want %d", defaultProbes, opt, got, err, v)
			}
		}
		_ = unix.Close(fd)
	}
}
