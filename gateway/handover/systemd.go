package handover

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// storePrefix begins the name of every descriptor the gateway puts in
// systemd's file descriptor store, so that a socket unit's descriptors,
// passed beside them, are told apart.
const storePrefix = "egw-"

// Systemd is what systemd passed this process (LISTEN_PID, LISTEN_FDS,
// LISTEN_FDNAMES), read once and split once: the socket units' listening
// sockets, by their FileDescriptorName, for `systemd:` listen addresses,
// and the descriptors of the gateway's own file descriptor store (named
// with storePrefix), for the store transport. It is the one reader of
// those variables. A nil *Systemd is a process systemd passed nothing.
type Systemd struct {
	units map[string]*os.File
	names []string   // the units', in the order systemd passed them
	store []passedFD // the store's, as plain descriptors
}

// passedFD is a descriptor systemd passed, with its FileDescriptorName or
// FDNAME.
type passedFD struct {
	fd   int
	name string
}

// FromSystemd reads what systemd passed this process; nil when it passed
// nothing.
func FromSystemd() *Systemd {
	passed := passedFDs()
	if len(passed) == 0 {
		return nil
	}
	s := &Systemd{units: map[string]*os.File{}}
	for _, p := range passed {
		syscall.CloseOnExec(p.fd)
		if strings.HasPrefix(p.name, storePrefix) {
			// Kept as a plain descriptor: a second *os.File of it would
			// close it when collected.
			s.store = append(s.store, p)
			continue
		}
		if _, dup := s.units[p.name]; !dup {
			s.names = append(s.names, p.name)
		}
		s.units[p.name] = os.NewFile(uintptr(p.fd), p.name)
	}
	return s
}

// passedFDs returns the descriptors systemd passed this process, in
// order; nil when it passed none.
func passedFDs() []passedFD {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return nil
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n <= 0 {
		return nil
	}
	names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
	out := make([]passedFD, n)
	for i := range n {
		out[i] = passedFD{fd: 3 + i, name: "LISTEN_FD_" + strconv.Itoa(3+i)}
		if i < len(names) && names[i] != "" {
			out[i].name = names[i]
		}
	}
	return out
}

// Listener returns a listener on the socket a socket unit passed as name:
// a duplicate of the descriptor, so that the socket stays open for a later
// reload after the listener that used it is removed.
func (s *Systemd) Listener(name string) (net.Listener, error) {
	var f *os.File
	if s != nil {
		f = s.units[name]
	}
	if f == nil {
		passed := "none (LISTEN_FDS is not set for this process: it was not started by a socket unit)"
		if s != nil && len(s.names) > 0 {
			passed = strings.Join(slices.Clone(s.names), ", ")
		}
		return nil, fmt.Errorf("systemd passed no socket named %q (FileDescriptorName=); it passed: %s", name, passed)
	}
	ln, err := net.FileListener(f) // a duplicate of the descriptor
	if err != nil {
		return nil, fmt.Errorf("systemd socket %q is not a listening stream socket: %w", name, err)
	}
	return ln, nil
}
