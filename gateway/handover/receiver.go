package handover

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

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/listener"
)

// receiver is the new side of the socket transport, in progress: the
// sockets the old process gave, the connections it gives, and the rest of
// the conversation.
type receiver struct {
	c       conn
	log     logrus.FieldLogger
	start   time.Time
	sockets []Socket
	conns   []Conn
	pid     int
}

// dial asks the gateway listening on path for its sockets. It returns nil
// and no error when no gateway listens there (no file, or a stale one):
// the caller binds its own. Its error means a gateway answered but the
// handover could not start; that gateway serves on.
func dial(ctx context.Context, path string, log logrus.FieldLogger) (*receiver, error) {
	start := time.Now()
	d := net.Dialer{}
	c, err := d.DialContext(ctx, "unixpacket", path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, nil
		}
		return nil, fmt.Errorf("upgrade-socket %q: %w", path, err)
	}
	r := &receiver{c: conn{c.(*net.UnixConn)}, log: log, start: start}
	if err := r.receiveSockets(); err != nil {
		r.Abort()
		return nil, fmt.Errorf("upgrade-socket %q: %w", path, err)
	}
	return r, nil
}

// receiveSockets says hello and receives the sockets.
func (r *receiver) receiveSockets() error {
	if err := r.c.send(message{Op: opHello, PID: os.Getpid()}, nil); err != nil {
		return err
	}
	for {
		m, fds, err := r.c.recv(opSockets)
		if err != nil {
			return err
		}
		if len(fds) != len(m.Sockets) {
			closeAll(fds)
			return fmt.Errorf("handover: %d sockets described, %d descriptors passed", len(m.Sockets), len(fds))
		}
		for i := range m.Sockets {
			m.Sockets[i].File = os.NewFile(uintptr(fds[i]), m.Sockets[i].Addr)
		}
		r.sockets = append(r.sockets, m.Sockets...)
		r.pid = m.PID
		if !m.More {
			hook("new:sockets")
			return nil
		}
	}
}

// Sockets are the sockets received. Their files belong to the caller.
func (r *receiver) Sockets() []Socket { return r.sockets }

// Abort ends the handover before serving: the old process accepts again,
// and adopts again the connections it gave. Sockets the caller claimed are
// its to close.
func (r *receiver) Abort() { _ = r.c.c.Close() }

// Finish tells the old gateway that this one is built, receives its
// connections, says "serving", and has lns adopt them; at once if the old
// one is gone (this one serves what it received, and bound the rest). in
// holds the sockets received: those unclaimed are closed, the others
// accept from "serving" on. false: the handover failed, and this process
// serves without the connections.
func (r *receiver) Finish(in *Received, lns map[string]*listener.Listener) (Summary, bool) {
	cpu := cpuTime()
	unused := in.CloseUnclaimed()
	defer in.Resume()
	if err := r.ready(); err != nil {
		r.Abort()
		r.log.WithError(err).Warn("upgrade: the old gateway failed mid-handover; this one serves what it took and bound the rest")
		return Summary{}, false
	}
	t0 := time.Now()
	err := r.receiveConns()
	receive := time.Since(t0)
	if !ours(err) {
		r.Abort()
		closeConns(r.conns)
		r.log.WithError(err).Warn("upgrade: the handover of the connections failed; the old gateway takes them back, and this one serves without them")
		return Summary{}, false
	}
	if err != nil {
		r.log.WithError(err).Warn("upgrade: the old gateway failed while handing its connections over; this one serves, with the connections it took")
	}
	sum, err := r.serving()
	if err != nil {
		r.log.WithError(err).Warn("upgrade: the old gateway did not hear that this one serves")
	}
	in.Resume()
	t0 = time.Now()
	sum.Adopted = adoptAll(lns, r.conns, r.log, "upgrade: a connection handed over")
	sum.Unused, sum.Receive, sum.Adopt = unused, receive, time.Since(t0)
	sum.Duration, sum.CPU = time.Since(r.start), cpuTime()-cpu
	r.logReceived(sum)
	return sum, true
}

// ready tells the old process that the new gateway is built, its sockets
// paused, and waits until the old one stopped accepting. After an error
// the old process is gone or failed: the caller serves what it has.
func (r *receiver) ready() error {
	if err := r.c.send(message{Op: opReady}, nil); err != nil {
		return err
	}
	_, _, err := r.c.recv(opPaused)
	return err
}

// serving tells the old process that the new one accepts and forwards the
// connections receiveConns received, ends the conversation, and returns
// the summary. An error means the old process is gone: the new one serves
// anyway.
func (r *receiver) serving() (Summary, error) {
	hook("new:serving")
	err := r.c.send(message{Op: opServing}, nil)
	_ = r.c.c.Close()
	sum := Summary{Via: ViaSocket, PID: r.pid, Conns: len(r.conns)}
	sum.countSockets(r.sockets)
	return sum, err
}

// logReceived logs the summary line of a handover received.
func (r *receiver) logReceived(sum Summary) {
	r.log.WithFields(logrus.Fields{
		"old-pid": sum.PID, "listeners": sum.Listeners, "admin": sum.Admin, "unused": sum.Unused,
		"conns": sum.Conns, "conns-adopted": sum.Adopted, "conns-closed": sum.Conns - sum.Adopted, "duration": sum.Duration.String(),
		"receive": sum.Receive.String(), "adopt": sum.Adopt.String(), "cpu": sum.CPU.String(),
	}).Infof("took over from the running gateway (pid %d): %d listener socket(s) passed, admin %v, %d connection(s) adopted, in %s",
		sum.PID, sum.Listeners, sum.Admin, sum.Adopted, sum.Duration.Round(time.Microsecond))
}

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
