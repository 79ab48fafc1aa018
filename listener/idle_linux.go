package listener

import (
	"fmt"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// idleFor returns how long c has carried no data in either direction, from
// the kernel's TCP_INFO: the time since data was last received and since
// data was last sent, whichever is shorter. Keepalive probes and bare
// acknowledgements are not data.
func idleFor(c net.Conn) (time.Duration, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, errIdleUnsupported
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("idle time: %w", err)
	}
	var info *unix.TCPInfo
	var infoErr error
	if err := raw.Control(func(fd uintptr) {
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
