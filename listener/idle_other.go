//go:build !linux

package listener

import (
	"net"
	"time"
)

// idleFor would return how long c has been idle; only Linux tells.
func idleFor(net.Conn) (time.Duration, error) { return 0, errIdleUnsupported }
