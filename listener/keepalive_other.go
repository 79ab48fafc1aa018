//go:build !linux

package listener

import (
	"net"
	"time"
)

// setListenerKeepAlive reports false: accepted connections get their
// keepalive one by one on this system.
func setListenerKeepAlive(net.Listener, time.Duration) bool { return false }
