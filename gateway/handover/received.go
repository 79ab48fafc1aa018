package handover

import (
	"fmt"
	"net"
	"sync"

	"github.com/etcd-gateway/etcd-gateway/listener"
)

// Received holds the sockets a new process received, by either
// transport, until its configuration claims them: reconcile's bind for
// listeners, the admin server for its own. A claimed socket starts paused,
// and accepts once the old process has stopped (Resume).
type Received struct {
	mu      sync.Mutex
	socks   []Socket
	claimed []bool
	gates   []*listener.Gate
}

// NewReceived holds socks.
func NewReceived(socks []Socket) *Received {
	return &Received{socks: socks, claimed: make([]bool, len(socks))}
}

// claim returns, paused, the received socket of that kind for the listener
// name (ignored for the admin server) at addr, as configured or as bound:
// a listener is matched by name and address, else by address alone (a
// renamed listener keeps its socket; its address can't be bound twice
// anyway). ok is false when none matches: the caller binds addr.
func (in *Received) claim(kind, name, addr string) (_ *listener.Gate, ok bool, _ error) {
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
	in.claimed[i] = true
	f := in.socks[i].File
	ln, err := net.FileListener(f) // a copy of the descriptor
	_ = f.Close()
	if err != nil {
		return nil, false, fmt.Errorf("received socket %s: %w", in.socks[i].Addr, err)
	}
	g, err := listener.NewGate(ln, true)
	if err != nil {
		_ = ln.Close()
		return nil, false, fmt.Errorf("received socket %s: %w", in.socks[i].Addr, err)
	}
	in.gates = append(in.gates, g)
	return g, true, nil
}

// find returns the index of the socket not claimed yet that matches, by
// name too when byName; -1 when none does.
func (in *Received) find(kind, name, addr string, byName bool) int {
	for i, sk := range in.socks {
		if in.claimed[i] || sk.Kind != kind || (byName && sk.Name != name) {
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
func (in *Received) Drained(name string) []string {
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

// Resume makes every socket claimed accept.
func (in *Received) Resume() {
	if in == nil {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, g := range in.gates {
		g.Resume()
	}
}

// CloseUnclaimed closes the sockets no configuration claimed (a listener the
// new configuration no longer has) and returns how many there were.
func (in *Received) CloseUnclaimed() int {
	if in == nil {
		return 0
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for i, sk := range in.socks {
		if !in.claimed[i] {
			in.claimed[i] = true
			_ = sk.File.Close()
			n++
		}
	}
	return n
}

// ClaimOrBind returns the socket of kind, name and addr that the previous
// process gave, or, when it gave none, a new one from bind, as a Gate that
// a later handover can pause and give on. A nil Received always binds.
func (in *Received) ClaimOrBind(kind, name, addr string, bind func() (net.Listener, error)) (net.Listener, error) {
	gate, ok, err := in.claim(kind, name, addr)
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
