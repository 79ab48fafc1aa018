package gateway

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/etcd-gateway/etcd-gateway/gateway/upgrade"
	"github.com/etcd-gateway/etcd-gateway/listener"
	"github.com/etcd-gateway/etcd-gateway/listener/forward"
)

// systemd's file descriptor store (FileDescriptorStoreMax=, systemd 254 or
// later for $FDSTORE and FileDescriptorStorePreserve=): at a stop the
// gateway pauses its listening sockets, quiesces its plain connections as
// for a handover, and gives all their descriptors to systemd (FDSTORE=1)
// instead of closing them; systemd keeps the sockets open (a connect waits
// in the backlog) and passes them to the next start (LISTEN_FDS), which
// takes them as it takes a running gateway's, and removes them from the
// store (FDSTOREREMOVE=1). Each descriptor's FDNAME says what it is:
//
//	egw-l.<base64url(JSON of upgrade.Socket)>                 a listening socket
//	egw-c.<n>.<c|u>.<base64url(JSON of the connection's state)> one side of connection n
//
// Descriptors with other names (socket units) are left alone.
const (
	// storeBatch is how many connections are quiesced together on their
	// way to the store.
	storeBatch          = 100
	storeListenerPrefix = upgrade.StoreNamePrefix + "l."
	storeConnPrefix     = upgrade.StoreNamePrefix + "c."
	// maxFDName is systemd's limit on an FDNAME.
	maxFDName = 255
)

// storedConn is what an FDNAME says of a connection.
type storedConn struct {
	Listener string            `json:"listener"`
	Endpoint string            `json:"endpoint"`
	State    forward.PairState `json:"state"`
}

// stored is what the file descriptor store gave back at start.
type stored struct {
	sockets []upgrade.Socket
	conns   []upgrade.Conn
	names   []string // every name taken, to remove from the store
}

// fromStore reads the descriptors systemd passed (LISTEN_PID, LISTEN_FDS,
// LISTEN_FDNAMES) whose names are the gateway's own; nil when there are
// none.
func fromStore(log logrus.FieldLogger) *stored {
	passed := upgrade.PassedBySystemd()
	if len(passed) == 0 {
		return nil
	}
	st := &stored{}
	halves := map[string]*connHalves{}
	for _, p := range passed {
		switch {
		case strings.HasPrefix(p.Name, storeListenerPrefix):
			st.takeSocket(log, p.Name, p.FD)
		case strings.HasPrefix(p.Name, storeConnPrefix):
			st.takeConnSide(log, halves, p.Name, p.FD)
		}
	}
	st.pairUp(halves)
	if len(st.names) == 0 {
		return nil
	}
	return st
}

// connHalves are the sides of one stored connection found so far (-1 for
// a side not found yet), and what its names say of it.
type connHalves struct {
	fds  [2]int // the client's, the upstream's
	meta storedConn
}

// takeSocket takes the stored listening socket fd, named name; one whose
// name can't be read is closed.
func (st *stored) takeSocket(log logrus.FieldLogger, name string, fd int) {
	st.names = append(st.names, name)
	var sk upgrade.Socket
	if err := decodeName(strings.TrimPrefix(name, storeListenerPrefix), &sk); err != nil {
		log.WithError(err).WithField("fdname", name).Warn("fd store: a descriptor with a bad name; closed")
		_ = unix.Close(fd)
		return
	}
	unix.CloseOnExec(fd)
	sk.File = os.NewFile(uintptr(fd), sk.Addr)
	st.sockets = append(st.sockets, sk)
}

// takeConnSide takes fd, named name, as one side of a stored connection
// into halves, by the connection's number; one whose name can't be read
// is closed.
func (st *stored) takeConnSide(log logrus.FieldLogger, halves map[string]*connHalves, name string, fd int) {
	st.names = append(st.names, name)
	parts := strings.SplitN(strings.TrimPrefix(name, storeConnPrefix), ".", 3)
	var sc storedConn
	if len(parts) != 3 || (parts[1] != "c" && parts[1] != "u") || decodeName(parts[2], &sc) != nil {
		log.WithField("fdname", name).Warn("fd store: a descriptor with a bad name; closed")
		_ = unix.Close(fd)
		return
	}
	unix.CloseOnExec(fd)
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
	h.meta = sc
}

// pairUp makes connections of the halves, in the order of their numbers;
// the side found of a connection missing the other is closed.
func (st *stored) pairUp(halves map[string]*connHalves) {
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
		st.conns = append(st.conns, upgrade.Conn{Listener: h.meta.Listener, ExportedConn: listener.ExportedConn{
			Endpoint: h.meta.Endpoint, Exported: forward.Exported{Client: h.fds[0], Upstream: h.fds[1], State: h.meta.State},
		}})
	}
}

// encodeName is v as a part of an FDNAME.
func encodeName(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// decodeName reads a part of an FDNAME made by encodeName into v.
func decodeName(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("fd name: %w", err)
	}
	return json.Unmarshal(b, v)
}

// restoreFromStore ends a start from the store: the sockets taken accept,
// the connections are adopted, and everything taken leaves the store.
func (g *Gateway) restoreFromStore(st *stored) {
	in := g.up.inherited
	g.up.inherited = nil
	unused := in.CloseRest()
	in.Resume()
	lns := g.group.Listeners()
	adopted, dropped := 0, 0
	for _, c := range st.conns {
		l := lns[c.Listener]
		if l == nil {
			c.Close()
			dropped++
			continue
		}
		if err := l.Adopt(c.ExportedConn); err != nil {
			g.log.WithError(err).Warn("fd store: a stored connection could not be adopted; closed")
			dropped++
			continue
		}
		adopted++
	}
	for _, name := range st.names {
		g.notify("FDSTOREREMOVE=1\nFDNAME=" + name)
	}
	g.up.stats.fromStore(len(st.sockets)-unused, adopted)
	g.log.WithFields(logrus.Fields{"listeners": len(st.sockets) - unused, "unused": unused, "conns-adopted": adopted, "conns-closed": dropped}).
		Infof("restored from systemd's file descriptor store: %d listener socket(s), %d connection(s) adopted", len(st.sockets)-unused, adopted)
}

// toStore gives the listening sockets and the plain connections to
// systemd's file descriptor store, when the gateway runs under systemd
// with one ($FDSTORE, and NOTIFY_SOCKET): called at the start of Shutdown.
// What doesn't fit in the store, or can't be quiesced, drains as usual.
func (g *Gateway) toStore() {
	room, err := strconv.Atoi(os.Getenv("FDSTORE"))
	notifySock := os.Getenv("NOTIFY_SOCKET")
	if err != nil || room <= 0 || notifySock == "" {
		return
	}
	if g.lockApply() != nil {
		return // handed over to a new process already
	}
	defer g.up.mu.Unlock()
	c, err := dialNotify(notifySock)
	if err != nil {
		g.log.WithError(err).Warn("fd store: can't reach systemd; draining instead")
		return
	}
	defer c.Close()
	socks, gates, err := g.storedSockets()
	if err != nil {
		g.log.WithError(err).Warn("fd store: draining instead")
		return
	}
	s := &fdStore{c: c, room: room}
	for _, gate := range gates {
		gate.Pause()
	}
	listeners := g.storeListeners(s, socks)
	for _, gate := range gates {
		gate.KeepPath()
	}
	stored, left := g.storeConns(s)
	g.up.stats.toStore(listeners, stored)
	g.log.WithFields(logrus.Fields{"listeners": listeners, "conns": stored, "left": left}).
		Infof("stored %d listening socket(s) and %d connection(s) in systemd's file descriptor store", listeners, stored)
}

// fdStore is systemd's file descriptor store as toStore fills it: the
// connection to systemd, and how many descriptors it still takes.
type fdStore struct {
	c    notifyConn
	room int
}

// storedSockets returns the listening sockets to store, the admin
// server's among them, and their gates.
func (g *Gateway) storedSockets() ([]upgrade.Socket, []*listener.Gate, error) {
	socks, gates, err := g.group.Sockets()
	if err != nil {
		return nil, nil, err
	}
	if gate := g.up.adminGate.Load(); gate != nil {
		if f, err := gate.File(); err == nil {
			socks = append(socks, upgrade.Socket{Kind: upgrade.KindAdmin, ConfigAddr: g.Current().AdminAddr, Addr: gate.Addr().String(), File: f})
			gates = append(gates, gate)
		}
	}
	return socks, gates, nil
}

// storeListeners stores the listening sockets socks that fit, and closes
// this process's descriptors of all of them; it returns how many it
// stored.
func (g *Gateway) storeListeners(s *fdStore, socks []upgrade.Socket) int {
	n := 0
	for _, sk := range socks {
		file := sk.File
		sk.File = nil
		ok, err := s.storeListener(sk, file)
		if ok {
			n++
		}
		if err != nil {
			g.log.WithError(err).WithField("addr", sk.Addr).Warn("fd store: a listening socket could not be stored")
		}
		_ = file.Close()
	}
	return n
}

// storeListener stores file, the listening socket sk; false with no error
// when the store has no room left or sk's name is too long for it.
func (s *fdStore) storeListener(sk upgrade.Socket, file *os.File) (bool, error) {
	name, err := encodeName(sk)
	if err != nil {
		return false, err
	}
	name = storeListenerPrefix + name
	if s.room <= 0 || len(name) > maxFDName {
		return false, nil
	}
	if err := storeFDs(s.c, name, int(file.Fd())); err != nil {
		return false, err
	}
	s.room--
	return true, nil
}

// storeConns quiesces the plain connections as for a handover and stores
// those that fit, closing this process's descriptors of them; the others
// are forwarded again here. It returns how many it stored and how many
// stay.
func (g *Gateway) storeConns(s *fdStore) (stored, left int) {
	var back []upgrade.Conn
	i := 0
	left = upgradeHost{g}.ExportConns(storeBatch, func(b []upgrade.Conn) bool {
		for _, cn := range b {
			if s.room < 2 || g.storeConn(s.c, i, cn) != nil {
				back = append(back, cn)
			} else {
				s.room -= 2
				stored++
				cn.Close()
			}
			i++
		}
		return true
	})
	upgradeHost{g}.TakeBack(back)
	return stored, left + len(back)
}

// storeConn stores both sides of connection i.
func (g *Gateway) storeConn(c notifyConn, i int, cn upgrade.Conn) error {
	meta, err := encodeName(storedConn{Listener: cn.Listener, Endpoint: cn.Endpoint, State: cn.State})
	if err != nil {
		return err
	}
	base := fmt.Sprintf("%s%d.", storeConnPrefix, i)
	if len(base)+2+len(meta) > maxFDName {
		return errors.New("fd name too long")
	}
	if err := storeFDs(c, base+"c."+meta, cn.Client); err != nil {
		return err
	}
	if err := storeFDs(c, base+"u."+meta, cn.Upstream); err != nil {
		// The client side is stored without its other half: the next
		// start closes it. Keep the connection here.
		g.notify("FDSTOREREMOVE=1\nFDNAME=" + base + "c." + meta)
		return err
	}
	return nil
}

// notifyConn is a datagram socket to systemd's notify socket (a path, or
// an abstract name starting with @), made with raw system calls: Go's
// net package sends descriptors on an unconnected datagram socket only
// from a bound one.
type notifyConn struct {
	fd int
	to *unix.SockaddrUnix
}

// dialNotify opens a notifyConn to path.
func dialNotify(path string) (notifyConn, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err != nil {
		return notifyConn{}, fmt.Errorf("notify socket: %w", err)
	}
	unix.CloseOnExec(fd)
	return notifyConn{fd: fd, to: &unix.SockaddrUnix{Name: path}}, nil
}

// Close closes the socket.
func (c notifyConn) Close() error { return unix.Close(c.fd) }

// storeFDs sends FDSTORE=1 with name and descriptor fd.
func storeFDs(c notifyConn, name string, fd int) error {
	msg := "FDSTORE=1\nFDNAME=" + name
	if err := unix.Sendmsg(c.fd, []byte(msg), unix.UnixRights(fd), c.to, 0); err != nil {
		return fmt.Errorf("fd store: %w", err)
	}
	return nil
}
