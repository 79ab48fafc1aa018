// Package loopback hands out loopback ports that stay the caller's until
// it lets them go, for tests and the demo, which must write an address
// into a config file (or an etcd member's URLs) before the code that
// listens on it runs.
//
// Finding a free port by binding port 0 and closing the socket races with
// everything else on the machine: the kernel hands the same port to the
// next bind(0) or to an outgoing connection's ephemeral port. A Hold closes
// that window. It is a socket bound to the address and never listened on,
// kept open until Close:
//
//   - the kernel's bind(0) and its choice of ephemeral ports for outgoing
//     connections skip a port that has a bound socket, so nobody takes it
//     by chance;
//   - a Reserve'd socket has SO_REUSEADDR, which on Linux lets one more
//     socket with SO_REUSEADDR (Go's net.Listen sets it on every TCP
//     listener, and so do etcd and HAProxy) bind and listen on the very
//     address while the Hold does not listen itself; connections go to
//     that listener only, and once it closes the port is still held, so a
//     connect is refused;
//   - a Dead socket has no SO_REUSEADDR: nothing can bind the port at all,
//     and a connect is refused (RST) for as long as it is held;
//   - a ReserveUDP socket holds a UDP port the same way: SO_REUSEADDR, and
//     connected to its own address, so that it takes none of the datagrams
//     sent to the port (the kernel gives those to the server bound beside
//     it, or answers port unreachable while there is none).
package loopback

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
)

// Hold is a loopback port held by a socket bound to it and never
// listened on.
type Hold struct {
	fd   int
	addr netip.AddrPort
}

// Reserve holds addr, a loopback host:port (port 0 for any free port, as
// net.Listen takes it), so that a net.Listen of the held address can bind
// it.
func Reserve(addr string) (*Hold, error) { return holdAddr(addr, tcpReserve) }

// Dead holds addr (port 0 for any free port) so that nothing can bind it:
// a connect to it is refused.
func Dead(addr string) (*Hold, error) { return holdAddr(addr, tcpDead) }

// ReserveUDP holds the UDP port of addr so that a UDP socket with
// SO_REUSEADDR can bind it and get every datagram sent there.
func ReserveUDP(addr string) (*Hold, error) { return holdAddr(addr, udpReserve) }

// ListenUDP binds a UDP socket to addr with SO_REUSEADDR, so that it can
// sit beside a ReserveUDP hold of the port (Go's TCP listeners set
// SO_REUSEADDR by themselves; its UDP sockets don't).
func ListenUDP(addr string) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		})
		return errors.Join(err, serr)
	}}
	return lc.ListenPacket(context.Background(), "udp", addr)
}

// kind is what a Hold holds.
type kind struct {
	sotype int
	reuse  bool
}

var (
	tcpReserve = kind{syscall.SOCK_STREAM, true}
	tcpDead    = kind{syscall.SOCK_STREAM, false}
	udpReserve = kind{syscall.SOCK_DGRAM, true}
)

// ReserveOn holds one port on every ip, the same number on each (a host
// name whose A records point at several loopback addresses, one port for
// all). It retries with another port when one of the addresses has it
// taken already.
func ReserveOn(ips ...string) ([]*Hold, error) {
	for range 100 {
		first, err := hold(ips[0], 0, tcpReserve)
		if err != nil {
			return nil, err
		}
		holds, err := reserveRest(first, ips[1:])
		if err == nil {
			return holds, nil
		}
	}
	return nil, fmt.Errorf("loopback: no port free on every one of %v", ips)
}

// reserveRest holds first's port on every ip of rest; on a failure it lets
// every hold go, first's too.
func reserveRest(first *Hold, rest []string) ([]*Hold, error) {
	holds := []*Hold{first}
	for _, ip := range rest {
		h, err := hold(ip, first.Port(), tcpReserve)
		if err != nil {
			CloseAll(holds)
			return nil, err
		}
		holds = append(holds, h)
	}
	return holds, nil
}

// CloseAll lets every hold go.
func CloseAll(holds []*Hold) {
	for _, h := range holds {
		_ = h.Close()
	}
}

// Addr is the held host:port.
func (h *Hold) Addr() string { return h.addr.String() }

// Port is the held port.
func (h *Hold) Port() int { return int(h.addr.Port()) }

// Close lets the port go.
func (h *Hold) Close() error { return syscall.Close(h.fd) }

// holdAddr is hold of a host:port.
func holdAddr(addr string, k kind) (*Hold, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("loopback: %w", err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("loopback: port of %q: %w", addr, err)
	}
	return hold(host, n, k)
}

// hold binds a new socket of kind k to ip:port (port 0 for any) and never
// listens on it.
func hold(ip string, port int, k kind) (*Hold, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.IsLoopback() {
		return nil, fmt.Errorf("loopback: %q is not a loopback address", ip)
	}
	fd, err := socket(a, k.sotype)
	if err != nil {
		return nil, fmt.Errorf("loopback: socket: %w", err)
	}
	h, err := bind(fd, a, port, k)
	if err != nil {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("loopback: hold %s: %w", net.JoinHostPort(ip, strconv.Itoa(port)), err)
	}
	return h, nil
}

// socket opens a stream socket of a's family, closed on exec: a held port
// must not leak into the processes a test starts.
func socket(a netip.Addr, sotype int) (int, error) {
	family := syscall.AF_INET
	if a.Is6() {
		family = syscall.AF_INET6
	}
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fd, err := syscall.Socket(family, sotype, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	return fd, err
}

// bind binds fd to a:port, reads back the port the kernel chose and, for
// UDP, connects fd to that address (see the package comment).
func bind(fd int, a netip.Addr, port int, k kind) (*Hold, error) {
	if k.reuse {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
			return nil, err
		}
	}
	if err := syscall.Bind(fd, sockaddr(a, port)); err != nil {
		return nil, err
	}
	got, err := syscall.Getsockname(fd)
	if err != nil {
		return nil, err
	}
	h := &Hold{fd: fd, addr: netip.AddrPortFrom(a, uint16(boundPort(got)))}
	if k.sotype == syscall.SOCK_DGRAM {
		if err := syscall.Connect(fd, sockaddr(a, h.Port())); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// sockaddr is a:port as the socket calls take it.
func sockaddr(a netip.Addr, port int) syscall.Sockaddr {
	if a.Is6() {
		return &syscall.SockaddrInet6{Port: port, Addr: a.As16()}
	}
	return &syscall.SockaddrInet4{Port: port, Addr: a.As4()}
}

// boundPort is the port of a bound socket's address.
func boundPort(sa syscall.Sockaddr) int {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return sa.Port
	case *syscall.SockaddrInet6:
		return sa.Port
	}
	return 0
}
