package forward

import (
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The loop's syscalls, but its epoll_wait, are all non-blocking, so they
// are made raw: a raw syscall keeps the loop goroutine's P. Through
// syscall.Syscall, one that takes longer than sysmon's shortest poll
// (loopback TCP work is done inside the sender's syscall) hands the P to
// another thread, and the loop then waits in the run queue to get one
// back, with every connection it serves.

// read reads from fd into b, which must not be empty.
func read(fd int, b []byte) (int, error) {
	for {
		n, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if errno != unix.EINTR {
			return int(n), errnoErr(errno)
		}
	}
}

// write writes b, which must not be empty, to fd.
func write(fd int, b []byte) (int, error) {
	for {
		n, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if errno != unix.EINTR {
			return int(n), errnoErr(errno)
		}
	}
}

// splice moves up to n bytes from one descriptor to another, one of them
// a pipe.
func splice(from, to, n int) (int, error) {
	for {
		m, _, errno := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(from), 0, uintptr(to), 0, uintptr(n), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
		if errno != unix.EINTR {
			return int(m), errnoErr(errno)
		}
	}
}

// shutdown shuts down part of socket fd's connection.
func shutdown(fd, how int) error {
	_, _, errno := unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), uintptr(how), 0)
	return errnoErr(errno)
}

// epollMod changes fd's registration in epfd to ev.
func epollMod(epfd, fd int, ev *unix.EpollEvent) error {
	_, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), unix.EPOLL_CTL_MOD, uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	return errnoErr(errno)
}

// errnoErr turns a raw syscall's errno into an error, nil for 0.
func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// tcpSocket opens a non-blocking, close-on-exec TCP socket for addr's
// family, with TCP_NODELAY (requests are small and go at once) and, for
// ka.period > 0, TCP keepalive: the only options the gateway sets, once.
func tcpSocket(addr netip.AddrPort, ka keepAlive) (int, error) {
	family := unix.AF_INET6
	if addr.Addr().Unmap().Is4() {
		family = unix.AF_INET
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := setTCPOptions(fd, ka); err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// setTCPOptions sets TCP_NODELAY and, for ka.period > 0, the keepalive.
func setTCPOptions(fd int, ka keepAlive) error {
	if err := setsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	if ka.period > 0 {
		return ka.set(fd)
	}
	return nil
}

// SetKeepAlive sets the TCP keepalive of socket fd to period d, as Go
// rounds it (up, to whole seconds; KeepAliveProbes probes), or turns it
// off for d <= 0. It is the one keepalive rule of the gateway's sockets:
// listening (whose settings Linux copies to the connections it accepts),
// accepted and connected.
func SetKeepAlive(fd int, d time.Duration) error {
	return keepAlive{period: d}.set(fd)
}

// keepAlive is a TCP keepalive setting: period d (0 for off), and whether
// the kernel's own probe count already is KeepAliveProbes, which saves a
// connect one setsockopt.
type keepAlive struct {
	period        time.Duration
	defaultProbes bool
}

// set applies k to socket fd.
func (k keepAlive) set(fd int) error {
	opts := []sockOpt{{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 0}}
	if k.period > 0 {
		secs := int((k.period + time.Second - 1) / time.Second)
		opts = []sockOpt{{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, secs}, {unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, secs},
			{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, KeepAliveProbes}, {unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1}}
		if k.defaultProbes {
			opts = slices.Delete(opts, 2, 3)
		}
	}
	for _, o := range opts {
		if err := setsockoptInt(fd, o.level, o.opt, o.v); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	return nil
}

// kernelProbesAreOurs reports whether a socket that doesn't set
// TCP_KEEPCNT gets KeepAliveProbes from the kernel
// (net.ipv4.tcp_keepalive_probes, per network namespace); read once per
// forwarder.
func kernelProbesAreOurs() bool {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_keepalive_probes")
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && n == KeepAliveProbes
}

// sockOpt is one integer socket option.
type sockOpt struct{ level, opt, v int }

// setsockoptInt sets an integer socket option, raw.
func setsockoptInt(fd, level, opt, v int) error {
	val := int32(v)
	_, _, errno := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(unsafe.Pointer(&val)), 4, 0)
	return errnoErr(errno)
}

// connect starts connecting socket fd to addr; non-blocking, it returns
// EINPROGRESS while the handshake runs.
func connect(fd int, addr netip.AddrPort) error {
	var sa4 unix.RawSockaddrInet4
	var sa6 unix.RawSockaddrInet6
	var ptr unsafe.Pointer
	var size uintptr
	port := (*[2]byte)(unsafe.Pointer(&sa4.Port))
	if ip := addr.Addr().Unmap(); ip.Is4() {
		sa4.Family, sa4.Addr = unix.AF_INET, ip.As4()
		ptr, size = unsafe.Pointer(&sa4), unix.SizeofSockaddrInet4
	} else {
		port = (*[2]byte)(unsafe.Pointer(&sa6.Port))
		sa6.Family, sa6.Addr, sa6.Scope_id = unix.AF_INET6, ip.As16(), zoneID(ip.Zone())
		ptr, size = unsafe.Pointer(&sa6), unix.SizeofSockaddrInet6
	}
	port[0], port[1] = byte(addr.Port()>>8), byte(addr.Port()) // network byte order
	_, _, errno := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(ptr), size)
	return errnoErr(errno)
}

// zoneID is the index of the interface an IPv6 zone names, 0 for none.
func zoneID(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}

// isEstablished reports whether TCP socket fd is connected: the first
// byte of its TCP_INFO, the state, is all that is asked for.
func isEstablished(fd int) bool {
	var state uint8
	size := uint32(1)
	_, _, errno := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_INFO, uintptr(unsafe.Pointer(&state)), uintptr(unsafe.Pointer(&size)), 0)
	return errno == 0 && size == 1 && state == tcpEstablished
}

// tcpEstablished is TCP_ESTABLISHED, the state of a connected socket.
const tcpEstablished = 1
