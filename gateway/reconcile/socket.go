package reconcile

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/listener"
)

// newSocket binds the listen address of lc: a TCP address, a unix socket
// the gateway creates, or a socket systemd passed. Errors name the key.
func (g *Group) newSocket(ctx context.Context, lc config.Listener) (net.Listener, error) {
	network, addr := config.SplitListenAddr(lc.ListenAddr)
	switch network {
	case config.NetworkUnix:
		perms, err := lc.SocketPerms()
		if err != nil {
			return nil, err
		}
		ln, err := listenUnix(ctx, addr, perms)
		if err != nil {
			return nil, keyErr("listen-addr", err)
		}
		return ln, nil
	case config.NetworkSystemd:
		ln, err := g.systemd.Listener(addr)
		if err != nil {
			return nil, keyErr("listen-addr", err)
		}
		return ln, checkPeersOn(ln.Addr(), lc)
	}
	// Keepalive is set on each accepted connection from the listener's
	// limits, which a reload may change.
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, keyErr("listen-addr", err)
	}
	return ln, nil
}

// checkPeersOn refuses allow-lists on a listener whose socket is not a unix
// socket: only those tell who connects. Config refuses them on TCP
// addresses; a systemd socket's type is known only once it is taken.
func checkPeersOn(addr net.Addr, lc config.Listener) error {
	if addr.Network() == "unix" || (len(lc.AllowedUIDs) == 0 && len(lc.AllowedGIDs) == 0) {
		return nil
	}
	key := "allowed-uids"
	if len(lc.AllowedUIDs) == 0 {
		key = "allowed-gids"
	}
	return keyErr(key, fmt.Errorf("not valid on %s, a %s socket: the gateway learns who connects only on a unix socket (SO_PEERCRED): use a unix socket (ListenStream=/path in the socket unit)", lc.ListenAddr, addr.Network()))
}

// peersOf returns the allow-list of lc, names looked up now; nil when lc
// lets anyone in.
func peersOf(lc config.Listener) (*listener.Peers, error) {
	uids, gids, err := lc.PeerIDs()
	if err != nil || (uids == nil && gids == nil) {
		return nil, err
	}
	return &listener.Peers{UIDs: uids, GIDs: gids}, nil
}

// unixListener is a unix socket listener whose file the gateway created
// and removes when it closes, unless another socket replaced it since.
type unixListener struct {
	*net.UnixListener
	path string
	file os.FileInfo // the socket file, to tell it from a successor
	// kept is set when the socket was handed to another process, which
	// serves it at path now: Close must leave the file.
	kept atomic.Bool
}

// KeepPath makes Close leave the socket file: another process serves it.
func (u *unixListener) KeepPath() { u.kept.Store(true) }

// Addr is the socket's path, not the temporary name it was bound to.
func (u *unixListener) Addr() net.Addr { return &net.UnixAddr{Name: u.path, Net: "unix"} }

// Close stops listening and removes the socket file, when it is still
// this listener's.
func (u *unixListener) Close() error {
	err := u.UnixListener.Close()
	if u.kept.Load() {
		return err
	}
	if fi, statErr := os.Lstat(u.path); statErr == nil && os.SameFile(fi, u.file) {
		_ = os.Remove(u.path)
	}
	return err
}

// maxSocketPath is the longest unix socket path Linux takes.
const maxSocketPath = 107

// listenUnix creates a unix socket listener at path with perms. The
// socket is bound under a temporary name in the same directory, given its
// mode, owner and group, and only then renamed to path: no client can
// connect before the permissions are set. A socket left at path by a
// process that is gone is replaced; one that a process listens on, or a
// file that is not a socket, is an error naming the path.
func listenUnix(ctx context.Context, path string, perms config.SocketPerms) (net.Listener, error) {
	if err := checkStaleSocket(path); err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	tmp := filepath.Join(dir, fmt.Sprintf(".gw-%d-%d", os.Getpid(), rand.Uint32()))
	if len(tmp) > maxSocketPath {
		tmp = path // no room for a temporary name: bind in place
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("unix socket %s: %w", path, err)
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false) // Close removes path, not tmp
	fail := func(err error) (net.Listener, error) {
		_ = ul.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("unix socket %s: %w", path, err)
	}
	if err := setSocketPerms(tmp, perms); err != nil {
		return fail(err)
	}
	if tmp != path {
		if err := os.Rename(tmp, path); err != nil {
			return fail(err)
		}
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &unixListener{UnixListener: ul, path: path, file: fi}, nil
}

// setSocketPerms sets the mode, owner and group of the socket file path.
func setSocketPerms(path string, perms config.SocketPerms) error {
	if perms.UID != -1 || perms.GID != -1 {
		if err := os.Lchown(path, perms.UID, perms.GID); err != nil {
			return fmt.Errorf("socket-owner, socket-group: %w", err)
		}
	}
	if err := os.Chmod(path, os.FileMode(perms.Mode)); err != nil {
		return fmt.Errorf("socket-mode: %w", err)
	}
	return nil
}

// checkStaleSocket removes path when it is a socket nobody listens on (a
// gateway that crashed left it); it returns an error when a process
// listens on it or it is not a socket.
func checkStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unix socket %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("unix socket %s: a file that is not a socket is in the way: remove it or choose another path", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("unix socket %s: another process listens on it (a gateway still running?): stop it or choose another path", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("unix socket %s: can't tell whether a process listens on it: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unix socket %s: removing the socket left by a gateway that is gone: %w", path, err)
	}
	return nil
}
