package listener

import (
	"errors"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// listenFD returns a close-on-exec duplicate of listening socket sock's
// descriptor, for the forwarder's loops. A TCP socket gets TCP_NODELAY,
// which the connections it accepts inherit: none needs its own call.
func listenFD(sock controller) (int, error) {
	if sock == nil {
		return -1, errors.New("not a socket")
	}
	fd, dupErr := -1, error(nil)
	if err := sock.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, os.NewSyscallError("dup", dupErr)
	}
	if d, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); err == nil && d != unix.AF_UNIX {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	return fd, nil
}

// closeFD closes a descriptor listenFD returned.
func closeFD(fd int) { _ = unix.Close(fd) }

// dropGoListener closes Go's listener of a TCP socket the loops serve,
// the Gate keeping a descriptor of its own: Go's netpoller, where that
// listener is registered, would otherwise wake at every new connection,
// for nobody. A unix socket keeps its Go listener, whose Close may remove
// its file.
func (g *Gate) dropGoListener() {
	g.mu.Lock()
	defer g.mu.Unlock()
	tl, ok := g.ln.(*net.TCPListener)
	if !ok || g.raw >= 0 {
		return
	}
	raw, err := tl.SyscallConn()
	if err != nil {
		return
	}
	fd, dupErr := -1, error(nil)
	if err := raw.Control(func(s uintptr) { fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil || dupErr != nil {
		return
	}
	g.raw = fd
	_ = tl.Close() // the socket stays open: the Gate's and the loops' descriptors
}
