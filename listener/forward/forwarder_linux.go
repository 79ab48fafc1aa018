package forward

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
)

// Forwarder forwards connection pairs. Its methods are safe for concurrent
// use. Close it when no connection is forwarded any more. A process needs
// one, shared by all its listeners: its loops are sized for the machine
// (loopCount), not for a listener.
type Forwarder struct {
	loops     []*loop
	next      atomic.Uint32
	closeOnce sync.Once
}

// Socket is a connection the event loop can forward: it polls and splices
// through its descriptor, and closes it when the forwarding ends.
// *net.TCPConn is one; a TLS connection is not.
type Socket interface {
	syscall.Conn
	io.Closer
}

// NewForwarder starts a forwarder with one event loop per GOMAXPROCS but
// one (see loopCount); each holds an epoll descriptor and an OS thread.
func NewForwarder() (*Forwarder, error) {
	f := &Forwarder{}
	defaultProbes := kernelProbesAreOurs()
	for i := range loopCount() {
		l, err := newLoop(i, defaultProbes)
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("forwarder: %w", err)
		}
		f.loops = append(f.loops, l)
	}
	return f, nil
}

// StartMetered forwards bytes both ways between client and upstream and
// returns at once, counting them into m as they move (each loop as itself:
// see Meter), so that a connection open for days shows its traffic at
// once. When one side finishes sending (EOF) the other side's write half
// is shut, so a client that closes its write side still receives the
// reply. When either side fails (reset, or the returned Forwarding's Close)
// both connections are closed at once. When both directions have ended
// and both connections are closed, done is called once, from the
// forwarder's event loop, with the bytes sent to upstream and to the
// client: it must not block, nor call Close on f.
//
// From StartMetered on the connections belong to the forwarder: to end the
// forwarding early, call Close on the returned Forwarding, never on the
// connections. On error both connections are closed and done is not called.
// Sockets go to an event loop (StartPair); anything else, such as TLS, is
// copied by two goroutines.
func (f *Forwarder) StartMetered(client, upstream net.Conn, m Meters, done func(toUpstream, toClient int64)) (Forwarding, error) {
	cs, ok1 := client.(Socket)
	us, ok2 := upstream.(Socket)
	if !ok1 || !ok2 { // TLS: no socket to splice or poll
		return startCopy(client, upstream, m.of(f.pickLoop()), done), nil
	}
	p, err := f.StartPair(cs, us, m, done)
	if err != nil {
		return nil, err // not a nil *Pair in a Forwarding
	}
	return p, nil
}

// StartPair is StartMetered for two sockets: it registers them with one of
// the event loops as a Pair, the handle that ends the forwarding. The
// loop forwards between duplicates of their descriptors, which it owns;
// client and upstream themselves are closed at once.
func (f *Forwarder) StartPair(client, upstream Socket, m Meters, done func(toUpstream, toClient int64)) (*Pair, error) {
	fds, err := takeFDs(client, upstream)
	if err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	return f.startFDs(fds, m, done)
}

// startFDs forwards between two socket descriptors, which it owns from
// then on: on error it closes them.
func (f *Forwarder) startFDs(fds [2]int, m Meters, done func(toUpstream, toClient int64)) (*Pair, error) {
	li := f.pickLoop()
	p := newPair(f.loops[li], fds[0], fds[1], m.of(li), done)
	if err := p.start(); err != nil {
		p.closeFDs()
		return nil, fmt.Errorf("forward: %w", err)
	}
	return p, nil
}

// loopCount is how many loops a forwarder runs: GOMAXPROCS less one, and
// at least one. A loop blocked in epoll_wait holds its P (a system call
// keeps it); while another P is idle, Go's sysmon leaves it there, but
// when every P is in a loop's epoll_wait, sysmon keeps taking a P back
// from a loop and the loop takes one again when it wakes: those thread
// switches cost more than the P left to Go's own goroutines (the admin
// server, health checks, GC) does (docs/design.md, "The listener").
func loopCount() int { return max(runtime.GOMAXPROCS(0)-1, 1) }

// pickLoop returns the index of the loop a new connection goes to: each
// in turn.
func (f *Forwarder) pickLoop() int {
	return int(f.next.Add(1) % uint32(len(f.loops)))
}

// Close stops the event loops and waits for them. Connections still being
// forwarded are closed and their done called.
func (f *Forwarder) Close() error {
	f.closeOnce.Do(func() {
		for _, l := range f.loops {
			l.close()
		}
		for _, l := range f.loops {
			<-l.exited
		}
	})
	return nil
}

// Stopped reports whether every event loop has exited, so that an owner
// that closed the forwarder from another goroutine can tell when its
// descriptors are freed.
func (f *Forwarder) Stopped() bool {
	for _, l := range f.loops {
		select {
		case <-l.exited:
		default:
			return false
		}
	}
	return true
}
