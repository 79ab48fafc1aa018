package handover

import (
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/etcd-gateway/etcd-gateway/listener"
)

// restored is the new side of the store transport: what systemd's file
// descriptor store gave back at start (fdstore.go has the names).
type restored struct {
	sockets []Socket
	conns   []Conn
	names   []string // every name received, to remove from the store
	notify  func(string)
	log     logrus.FieldLogger
}

// restore reads the store's descriptors of sd; nil when there are none.
func restore(sd *Systemd, notify func(string), log logrus.FieldLogger) *restored {
	if sd == nil || len(sd.store) == 0 {
		return nil
	}
	r := &restored{notify: notify, log: log}
	halves := map[string]*connHalves{}
	for _, p := range sd.store {
		switch {
		case strings.HasPrefix(p.name, storeListenerPrefix):
			r.socket(p.name, p.fd)
		case strings.HasPrefix(p.name, storeConnPrefix):
			r.connSide(halves, p.name, p.fd)
		}
	}
	r.pairUp(halves)
	if len(r.names) == 0 {
		return nil
	}
	return r
}

// connHalves are the sides of one stored connection found so far (-1 for
// a side not found yet), and what its names say of it.
type connHalves struct {
	fds  [2]int // the client's, the upstream's
	meta connMeta
}

// socket receives the stored listening socket fd, named name; one whose
// name can't be read is closed.
func (r *restored) socket(name string, fd int) {
	r.names = append(r.names, name)
	var sk Socket
	if err := decodeName(strings.TrimPrefix(name, storeListenerPrefix), &sk); err != nil {
		r.log.WithError(err).WithField("fdname", name).Warn("fd store: a descriptor with a bad name; closed")
		_ = unix.Close(fd)
		return
	}
	sk.File = os.NewFile(uintptr(fd), sk.Addr)
	r.sockets = append(r.sockets, sk)
}

// connSide receives fd, named name, as one side of a stored connection
// into halves, by the connection's number; one whose name can't be read
// is closed.
func (r *restored) connSide(halves map[string]*connHalves, name string, fd int) {
	r.names = append(r.names, name)
	parts := strings.SplitN(strings.TrimPrefix(name, storeConnPrefix), ".", 3)
	var m connMeta
	if len(parts) != 3 || (parts[1] != "c" && parts[1] != "u") || decodeName(parts[2], &m) != nil {
		r.log.WithField("fdname", name).Warn("fd store: a descriptor with a bad name; closed")
		_ = unix.Close(fd)
		return
	}
	_ = unix.SetNonblock(fd, true) // as the forwarder's loops need
	h := halves[parts[0]]
	if h == nil {
		h = &connHalves{fds: [2]int{-1, -1}}
		halves[parts[0]] = h
	}
	side := 0
	if parts[1] == "u" {
		side = 1
	}
	h.fds[side] = fd
	h.meta = m
}

// pairUp makes connections of the halves, in the order of their numbers;
// the side found of a connection missing the other is closed.
func (r *restored) pairUp(halves map[string]*connHalves) {
	for _, id := range slices.Sorted(maps.Keys(halves)) {
		h := halves[id]
		if h.fds[0] < 0 || h.fds[1] < 0 {
			for _, fd := range h.fds {
				if fd >= 0 {
					_ = unix.Close(fd)
				}
			}
			continue
		}
		r.conns = append(r.conns, h.meta.conn(h.fds[0], h.fds[1]))
	}
}

// Sockets are the listening sockets restored. Their files belong to the
// caller.
func (r *restored) Sockets() []Socket { return r.sockets }

// Abort closes the connections restored: the start failed.
func (r *restored) Abort() { closeConns(r.conns) }

// Finish ends a start from the store: the sockets claimed accept, the
// connections are adopted, and everything received leaves the store.
func (r *restored) Finish(in *Received, lns map[string]*listener.Listener) (Summary, bool) {
	unused := in.CloseUnclaimed()
	in.Resume()
	adopted := adoptAll(lns, r.conns, r.log, "fd store: a stored connection")
	for _, name := range r.names {
		r.notify("FDSTOREREMOVE=1\nFDNAME=" + name)
	}
	sum := Summary{Via: ViaStore, Listeners: len(r.sockets) - unused, Unused: unused, Conns: len(r.conns), Adopted: adopted}
	r.log.WithFields(logrus.Fields{"listeners": sum.Listeners, "unused": unused, "conns-adopted": adopted, "conns-closed": sum.Conns - adopted}).
		Infof("restored from systemd's file descriptor store: %d listener socket(s), %d connection(s) adopted", sum.Listeners, adopted)
	return sum, true
}
