package unixsock

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerCred reads SO_PEERCRED of raw.
func peerCred(raw syscall.RawConn) (Cred, error) {
	var ucred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		ucred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Cred{}, fmt.Errorf("peer credentials: %w", err)
	}
	if credErr != nil {
		return Cred{}, fmt.Errorf("peer credentials: SO_PEERCRED: %w", credErr)
	}
	return Cred{PID: ucred.Pid, UID: ucred.Uid, GID: ucred.Gid}, nil
}
