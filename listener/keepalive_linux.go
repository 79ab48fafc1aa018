package listener

import (
	"errors"
	"time"

	"github.com/etcd-gateway/etcd-gateway/listener/forward"
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
// or turns it off for d <= 0 (forward.SetKeepAlive).
func setSocketKeepAlive(sock controller, d time.Duration) error {
	if sock == nil {
		return errors.New("keepalive: no socket")
	}
	var opErr error
	err := sock.Control(func(fd uintptr) { opErr = forward.SetKeepAlive(int(fd), d) })
	return errors.Join(err, opErr)
}
