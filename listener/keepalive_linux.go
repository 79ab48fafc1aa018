package listener

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// setListenerKeepAlive sets the TCP keepalive of a listening socket and
// reports whether it did. Linux copies a listening socket's keepalive
// settings (SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT) to every
// connection it accepts, so accepted clients then need no setsockopt of
// their own: four system calls fewer per connection. A d of 0 or less turns
// keepalive off on the listening socket (the system default).
func setListenerKeepAlive(sock controller, d time.Duration) bool {
	return setSocketKeepAlive(sock, d) == nil && d > 0
}

// setSocketKeepAlive sets the TCP keepalive of socket sock to period d,
// as Go rounds it (up, to whole seconds), or turns it off for d <= 0.
func setSocketKeepAlive(sock controller, d time.Duration) error {
	if sock == nil {
		return errors.New("keepalive: no socket")
	}
	secs := int((d + time.Second - 1) / time.Second)
	var opErr error
	err := sock.Control(func(fd uintptr) {
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
	return errors.Join(err, opErr)
}
