package listener

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// setListenerKeepAlive sets the TCP keepalive of ln's own socket and
// reports whether it did. Linux copies a listening socket's keepalive
// settings (SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT) to every
// connection it accepts, so accepted clients then need no setsockopt of
// their own: four system calls fewer per connection. A d of 0 or less turns
// keepalive off on the listening socket (the system default).
func setListenerKeepAlive(ln net.Listener, d time.Duration) bool {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	secs := int((d + time.Second - 1) / time.Second) // as Go rounds: up, to whole seconds
	var opErr error
	err = raw.Control(func(fd uintptr) {
		s := int(fd)
		if d <= 0 {
			opErr = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 0)
			return
		}
		for _, o := range []struct{ level, opt, v int }{
			{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, secs},
			{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, secs},
			{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, keepAliveProbes},
			{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		} {
			if opErr = unix.SetsockoptInt(s, o.level, o.opt, o.v); opErr != nil {
				return
			}
		}
	})
	return err == nil && opErr == nil && d > 0
}
