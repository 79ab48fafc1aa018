package listener

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// peerCred returns the credentials of the process at the other end of
// unix socket sock, as the kernel recorded them when it connected.
func peerCred(sock controller) (Cred, error) {
	if sock == nil {
		return Cred{}, errNoPeerCred
	}
	var ucred *unix.Ucred
	var credErr error
	if err := sock.Control(func(fd uintptr) {
		ucred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Cred{}, fmt.Errorf("peer credentials: %w", err)
	}
	if credErr != nil {
		return Cred{}, fmt.Errorf("peer credentials: SO_PEERCRED: %w", credErr)
	}
	return Cred{PID: ucred.Pid, UID: ucred.Uid, GID: ucred.Gid}, nil
}
