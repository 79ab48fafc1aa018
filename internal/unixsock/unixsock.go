// Package unixsock holds what the gateway's own unix sockets (the upgrade
// socket, the control socket) share: binding a path that another process
// of the gateway may be serving, without a moment where the path is
// missing, and removing it at close only while it is still this process's.
package unixsock

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Listener is a unix socket bound at a path.
type Listener struct {
	*net.UnixListener
	path string
	ino  uint64
}

// Listen binds a socket of network ("unix" or "unixpacket") at path with
// mode (0: as the umask makes it), replacing atomically whatever is there
// (the socket of the process this one took over from, or a stale file): it
// binds a temporary name next to path, sets its mode, and renames it over
// path, so that a new process never finds the path missing.
func Listen(network, path string, mode os.FileMode) (*Listener, error) {
	if max := len(syscall.RawSockaddrUnix{}.Path) - 1; len(path) > max {
		return nil, fmt.Errorf("longer than a unix socket path may be (%d bytes)", max)
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+"."+strconv.Itoa(os.Getpid()))
	_ = os.Remove(tmp)
	ln, err := net.ListenUnix(network, &net.UnixAddr{Name: tmp, Net: network})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false) // the path may be another process's by then
	if err := place(tmp, path, mode); err != nil {
		_ = ln.Close()
		_ = os.Remove(tmp)
		return nil, err
	}
	return &Listener{UnixListener: ln, path: path, ino: inode(path)}, nil
}

// place gives the socket file tmp its mode and renames it to path.
func place(tmp, path string, mode os.FileMode) error {
	if mode != 0 {
		if err := os.Chmod(tmp, mode); err != nil {
			return err
		}
	}
	return os.Rename(tmp, path)
}

// Path is where the socket is bound.
func (l *Listener) Path() string { return l.path }

// Close closes the socket and removes its path when it is still this
// socket's: after a handover it is the new process's.
func (l *Listener) Close() error {
	err := l.UnixListener.Close()
	if l.ino != 0 && inode(l.path) == l.ino {
		_ = os.Remove(l.path)
	}
	return err
}

// inode is path's inode number, or 0.
func inode(path string) uint64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
