package listener

import (
	"errors"
	"slices"
	"time"

	"github.com/sirupsen/logrus"
)

// Peers is who may connect to a listener, by the connecting process's
// credentials, which the kernel gives for a unix socket (SO_PEERCRED). A
// client is let in when its user is in UIDs or its group in GIDs.
type Peers struct {
	UIDs, GIDs []uint32
}

// allows reports whether a process of user uid and group gid may connect.
func (p *Peers) allows(uid, gid uint32) bool {
	return slices.Contains(p.UIDs, uid) || slices.Contains(p.GIDs, gid)
}

// Cred is the identity of the process that connected to a unix socket.
type Cred struct {
	PID      int32
	UID, GID uint32
}

// errNoPeerCred says that a connection carries no credentials: it is not
// a unix socket, so an allow-list can't let it in.
var errNoPeerCred = errors.New("the client's credentials can't be read: not a unix socket")

// admitPeer decides on a client socket just accepted when the listener
// has an allow-list: a client whose credentials are not in it, or can't
// be read (unixClient false: not a unix socket), is counted and logged,
// and the caller closes it. It reports whether the client may be served.
func (l *Listener) admitPeer(sock controller, unixClient bool, p *Peers) bool {
	if p == nil {
		return true
	}
	var c Cred
	err := errNoPeerCred
	if unixClient {
		c, err = peerCred(sock)
	}
	if err == nil && p.allows(c.UID, c.GID) {
		return true
	}
	n := l.counters.denied.Add(1)
	now := time.Now().UnixNano()
	last := l.counters.lastDeniedLog.Load()
	if now-last < int64(time.Second) || !l.counters.lastDeniedLog.CompareAndSwap(last, now) {
		return false
	}
	fields := logrus.Fields{"denied-total": n}
	if err != nil {
		fields["error"] = err.Error()
	} else {
		fields["uid"], fields["gid"], fields["pid"] = c.UID, c.GID, c.PID
	}
	l.log.WithFields(fields).Warn("connection refused: the client's user and group are not in allowed-uids or allowed-gids")
	return false
}
