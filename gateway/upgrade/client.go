package upgrade

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Takeover is the new side of a handover in progress: the sockets the old
// process passed, and the rest of the conversation.
type Takeover struct {
	c       conn
	start   time.Time
	sockets []Socket
	pid     int
}

// Dial asks the gateway listening on path for its sockets. It returns nil
// and no error when no gateway listens there (no file, or a stale one):
// the caller binds its own. Its error means a gateway answered but the
// handover could not start; that gateway serves on.
func Dial(ctx context.Context, path string) (*Takeover, error) {
	d := net.Dialer{}
	c, err := d.DialContext(ctx, "unixpacket", path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, nil
		}
		return nil, fmt.Errorf("upgrade-socket %q: %w", path, err)
	}
	t := &Takeover{c: conn{c.(*net.UnixConn)}, start: time.Now()}
	if err := t.receive(); err != nil {
		t.Abort()
		return nil, fmt.Errorf("upgrade-socket %q: %w", path, err)
	}
	return t, nil
}

// receive says hello and takes the sockets.
func (t *Takeover) receive() error {
	if err := t.c.send(message{Op: opHello, PID: os.Getpid()}, nil); err != nil {
		return err
	}
	for {
		m, fds, err := t.c.recv(opSockets)
		if err != nil {
			return err
		}
		if len(fds) != len(m.Sockets) {
			closeAll(fds)
			return fmt.Errorf("upgrade: %d sockets described, %d descriptors passed", len(m.Sockets), len(fds))
		}
		for i := range m.Sockets {
			m.Sockets[i].File = os.NewFile(uintptr(fds[i]), m.Sockets[i].Addr)
		}
		t.sockets = append(t.sockets, m.Sockets...)
		t.pid = m.PID
		if !m.More {
			hook("new:sockets")
			return nil
		}
	}
}

// Sockets are the sockets passed. Their files belong to the caller.
func (t *Takeover) Sockets() []Socket { return t.sockets }

// Ready tells the old process that the new gateway is built, its sockets
// paused, and waits until the old one stopped accepting. After an error
// the old process is gone or failed: the caller serves what it has.
func (t *Takeover) Ready() error {
	if err := t.c.send(message{Op: opReady}, nil); err != nil {
		return err
	}
	_, _, err := t.c.recv(opPaused)
	return err
}

// Serving tells the old process that the new one accepts and forwards the
// connections ReceiveConns took, ends the conversation, and returns the
// summary. An error means the old process is gone: the new one serves
// anyway.
func (t *Takeover) Serving() (Summary, error) {
	hook("new:serving")
	err := t.c.send(message{Op: opServing}, nil)
	_ = t.c.c.Close()
	sum := Summary{PID: t.pid, Duration: time.Since(t.start)}
	sum.countSockets(t.sockets)
	return sum, err
}

// Abort ends the handover before Serving: the old process accepts again,
// and forwards again the connections it passed. Sockets the caller took
// are its to close.
func (t *Takeover) Abort() { _ = t.c.c.Close() }

// SocketPath resolves the upgrade socket's path: the --upgrade-socket flag,
// else the upgrade-socket key, else, under systemd with a RuntimeDirectory=
// (which systemd keeps across a restart only with
// RuntimeDirectoryPreserve=), upgrade.sock in it; else "" (off).
func SocketPath(flag, key string, getenv func(string) string) string {
	switch {
	case flag != "":
		return flag
	case key != "":
		return key
	}
	dir, _, _ := strings.Cut(getenv("RUNTIME_DIRECTORY"), ":")
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "upgrade.sock")
}
