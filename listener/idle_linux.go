package listener

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// idleFor returns how long socket c has carried no data in either
// direction, from the kernel's TCP_INFO: the time since data was last
// received and since data was last sent, whichever is shorter. Keepalive
// probes and bare acknowledgements are not data.
func idleFor(c controller) (time.Duration, error) {
	if c == nil {
		return 0, errIdleUnsupported
	}
	var info *unix.TCPInfo
	var infoErr error
	if err := c.Control(func(fd uintptr) {
		info, infoErr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		return 0, fmt.Errorf("idle time: %w", err)
	}
	if infoErr != nil {
		return 0, fmt.Errorf("idle time: TCP_INFO: %w", infoErr)
	}
	ms := min(info.Last_data_recv, info.Last_data_sent)
	return time.Duration(ms) * time.Millisecond, nil
}
