package unixsock

import (
	"errors"
	"syscall"
)

// Cred is the identity of the process at the other end of a unix socket,
// as the kernel recorded it when that process connected.
type Cred struct {
	PID      int32
	UID, GID uint32
}

// ErrNoCred says that a connection carries no credentials: it is not a
// unix socket.
var ErrNoCred = errors.New("the client's credentials can't be read: not a unix socket")

// PeerCred returns the credentials of the process at the other end of
// sock, a unix socket.
func PeerCred(sock syscall.Conn) (Cred, error) {
	if sock == nil {
		return Cred{}, ErrNoCred
	}
	raw, err := sock.SyscallConn()
	if err != nil {
		return Cred{}, err
	}
	return peerCred(raw)
}
