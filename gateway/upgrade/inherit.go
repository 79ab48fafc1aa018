package upgrade

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/etcd-gateway/etcd-gateway/listener"
)

// Inherited holds the sockets a new process took over until its
// configuration claims them: reconcile's bind for listeners, the admin
// server for its own. A claimed socket starts paused, and accepts once the
// old process has stopped (Resume).
type Inherited struct {
	mu    sync.Mutex
	socks []Socket
	taken []bool
	gates []*listener.Gate
}

// NewInherited holds socks.
func NewInherited(socks []Socket) *Inherited {
	return &Inherited{socks: socks, taken: make([]bool, len(socks))}
}

// Take returns, paused, the passed socket of that kind for the listener
// name (ignored for the admin server) at addr, as configured or as bound:
// a listener is matched by name and address, else by address alone (a
// renamed listener keeps its socket; its address can't be bound twice
// anyway). ok is false when none matches: the caller binds addr.
func (in *Inherited) Take(kind, name, addr string) (_ *listener.Gate, ok bool, _ error) {
	if in == nil {
		return nil, false, nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	i := in.find(kind, name, addr, true)
	if i < 0 {
		i = in.find(kind, name, addr, false)
	}
	if i < 0 {
		return nil, false, nil
	}
	in.taken[i] = true
	f := in.socks[i].File
	ln, err := net.FileListener(f) // a copy of the descriptor
	_ = f.Close()
	if err != nil {
		return nil, false, fmt.Errorf("passed socket %s: %w", in.socks[i].Addr, err)
	}
	g, err := listener.NewGate(ln, true)
	if err != nil {
		_ = ln.Close()
		return nil, false, fmt.Errorf("passed socket %s: %w", in.socks[i].Addr, err)
	}
	in.gates = append(in.gates, g)
	return g, true, nil
}

// find returns the index of the socket not taken yet that matches, by
// name too when byName; -1 when none does.
func (in *Inherited) find(kind, name, addr string, byName bool) int {
	for i, sk := range in.socks {
		if in.taken[i] || sk.Kind != kind || (byName && sk.Name != name) {
			continue
		}
		if sk.ConfigAddr == addr || sk.Addr == addr {
			return i
		}
	}
	return -1
}

// Drained returns the drained endpoints the old process's listener of
// that name had; none for a listener it did not have.
func (in *Inherited) Drained(name string) []string {
	if in == nil {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, sk := range in.socks {
		if sk.Kind == KindListener && sk.Name == name {
			return sk.Drained
		}
	}
	return nil
}

// Resume makes every socket taken accept.
func (in *Inherited) Resume() {
	if in == nil {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, g := range in.gates {
		g.Resume()
	}
}

// CloseRest closes the sockets no configuration claimed (a listener the
// new configuration no longer has) and returns how many there were.
func (in *Inherited) CloseRest() int {
	if in == nil {
		return 0
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for i, sk := range in.socks {
		if !in.taken[i] {
			in.taken[i] = true
			_ = sk.File.Close()
			n++
		}
	}
	return n
}

// TakeOrBind returns the socket of kind, name and addr that the previous
// process passed, or, when it passed none, a new one from bind, as a Gate
// that a later handover can pause and pass on. A nil Inherited always
// binds.
func (in *Inherited) TakeOrBind(kind, name, addr string, bind func() (net.Listener, error)) (net.Listener, error) {
	gate, ok, err := in.Take(kind, name, addr)
	if err != nil || ok {
		return gate, err
	}
	ln, err := bind()
	if err != nil {
		return nil, err
	}
	gate, err = listener.NewGate(ln, false)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	return gate, nil
}

// Passed is a descriptor systemd passed this process (LISTEN_FDS), with
// its FileDescriptorName or FDNAME.
type Passed struct {
	FD   int
	Name string
}

// PassedBySystemd returns the descriptors systemd passed this process
// (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES), in order; nil when it passed
// none. The socket units' and the file descriptor store's come together:
// their names (StoreNamePrefix) tell them apart.
func PassedBySystemd() []Passed {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return nil
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n <= 0 {
		return nil
	}
	names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
	out := make([]Passed, n)
	for i := range n {
		out[i] = Passed{FD: 3 + i, Name: "LISTEN_FD_" + strconv.Itoa(3+i)}
		if i < len(names) && names[i] != "" {
			out[i].Name = names[i]
		}
	}
	return out
}
