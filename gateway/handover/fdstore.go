package handover

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/etcd-gateway/etcd-gateway/listener"
)

// The store transport: systemd's file descriptor store
// (FileDescriptorStoreMax=, systemd 254 or later for $FDSTORE and
// FileDescriptorStorePreserve=). At a stop the gateway pauses its listening
// sockets, exports its plain connections as for the socket transport, and
// gives all their descriptors to systemd (FDSTORE=1) instead of closing
// them; systemd keeps the sockets open (a connect waits in the backlog)
// and passes them to the next start (LISTEN_FDS, read by Systemd), which
// receives them as it receives a running gateway's, and removes them from
// the store (FDSTOREREMOVE=1). Each descriptor's FDNAME says what it is:
//
//	egw-l.<base64url(JSON of Socket)>                      a listening socket
//	egw-c.<n>.<c|u>.<base64url(JSON of connMeta)>          one side of connection n
//
// Descriptors with other names (socket units) are left alone.
const (
	// storeBatch is how many connections are exported together on their
	// way to the store.
	storeBatch          = 100
	storeListenerPrefix = storePrefix + "l."
	storeConnPrefix     = storePrefix + "c."
	// maxFDName is systemd's limit on an FDNAME.
	maxFDName = 255
)

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

// ToStore gives the listening sockets and the plain connections of h to
// systemd's file descriptor store, when the gateway runs under systemd
// with one ($FDSTORE, and NOTIFY_SOCKET); ok is false when it doesn't.
// What doesn't fit in the store, or can't be exported, drains as usual.
// The caller holds reloads off (as Host.Lock does) meanwhile, and calls
// it at the start of its shutdown: h's sockets stay paused.
func ToStore(h Host, notify func(string), log logrus.FieldLogger) (sum Summary, ok bool) {
	room, err := strconv.Atoi(os.Getenv("FDSTORE"))
	notifySock := os.Getenv("NOTIFY_SOCKET")
	if err != nil || room <= 0 || notifySock == "" {
		return Summary{}, false
	}
	c, err := dialNotify(notifySock)
	if err != nil {
		log.WithError(err).Warn("fd store: can't reach systemd; draining instead")
		return Summary{}, false
	}
	defer c.Close()
	gates := h.Gates()
	socks, err := gather(gates)
	if err != nil {
		log.WithError(err).Warn("fd store: draining instead")
		return Summary{}, false
	}
	s := &fdStore{c: c, room: room, notify: notify, log: log}
	pause(gates)
	sum = Summary{Via: ViaStore, Listeners: s.storeListeners(socks)}
	keepPaths(gates)
	sum.Conns, sum.Left = s.storeConns(h.Listeners())
	log.WithFields(logrus.Fields{"listeners": sum.Listeners, "conns": sum.Conns, "left": sum.Left}).
		Infof("stored %d listening socket(s) and %d connection(s) in systemd's file descriptor store", sum.Listeners, sum.Conns)
	return sum, true
}

// fdStore is systemd's file descriptor store as ToStore fills it: the
// connection to systemd, and how many descriptors it still takes.
type fdStore struct {
	c      notifyConn
	room   int
	notify func(string)
	log    logrus.FieldLogger
}

// storeListeners stores the listening sockets socks that fit, and closes
// this process's descriptors of all of them; it returns how many it
// stored.
func (s *fdStore) storeListeners(socks []Socket) int {
	n := 0
	for _, sk := range socks {
		file := sk.File
		sk.File = nil
		ok, err := s.storeListener(sk, file)
		if ok {
			n++
		}
		if err != nil {
			s.log.WithError(err).WithField("addr", sk.Addr).Warn("fd store: a listening socket could not be stored")
		}
		_ = file.Close()
	}
	return n
}

// storeListener stores file, the listening socket sk; false with no error
// when the store has no room left or sk's name is too long for it.
func (s *fdStore) storeListener(sk Socket, file *os.File) (bool, error) {
	name, err := encodeName(sk)
	if err != nil {
		return false, err
	}
	name = storeListenerPrefix + name
	if s.room <= 0 || len(name) > maxFDName {
		return false, nil
	}
	if err := s.c.store(name, int(file.Fd())); err != nil {
		return false, err
	}
	s.room--
	return true, nil
}

// storeConns exports the plain connections of lns as for a handover and
// stores those that fit, closing this process's descriptors of them; the
// others are adopted again here. It returns how many it stored and how
// many stay.
func (s *fdStore) storeConns(lns map[string]*listener.Listener) (stored, left int) {
	var back []Conn
	i := 0
	left = exportConns(lns, storeBatch, func(b []Conn) bool {
		for _, cn := range b {
			if s.room < 2 || s.storeConn(i, cn) != nil {
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
	adoptAll(lns, back, s.log, "fd store: a connection the store did not take")
	return stored, left + len(back)
}

// storeConn stores both sides of connection i.
func (s *fdStore) storeConn(i int, cn Conn) error {
	meta, err := encodeName(cn.meta())
	if err != nil {
		return err
	}
	base := fmt.Sprintf("%s%d.", storeConnPrefix, i)
	if len(base)+2+len(meta) > maxFDName {
		return errors.New("fd name too long")
	}
	if err := s.c.store(base+"c."+meta, cn.Client); err != nil {
		return err
	}
	if err := s.c.store(base+"u."+meta, cn.Upstream); err != nil {
		// The client side is stored without its other half: the next
		// start closes it. Keep the connection here.
		s.notify("FDSTOREREMOVE=1\nFDNAME=" + base + "c." + meta)
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

// store sends FDSTORE=1 with name and descriptor fd.
func (c notifyConn) store(name string, fd int) error {
	msg := "FDSTORE=1\nFDNAME=" + name
	if err := unix.Sendmsg(c.fd, []byte(msg), unix.UnixRights(fd), c.to, 0); err != nil {
		return fmt.Errorf("fd store: %w", err)
	}
	return nil
}
