package listener

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pausable is a listening socket whose Accept a deadline interrupts:
// *net.TCPListener and *net.UnixListener.
type pausable interface {
	net.Listener
	syscall.Conn
	SetDeadline(t time.Time) error
}

// Gate is a listening socket whose accepting can be paused and resumed
// without closing it. A gateway handing its sockets to a new process
// (gateway/handover) pauses them once the new process is ready, and resumes
// them if the new process fails before it serves: meanwhile the kernel
// queues new connections in the backlog, so that no connect is refused or
// reset at any step. A paused Accept blocks; Close ends it.
type Gate struct {
	ln     pausable
	mu     sync.Mutex
	wait   chan struct{} // closed by Resume; nil while accepting
	closed chan struct{}
	// onPause, when set, is told of every Pause and Resume: the
	// forwarder's loops accept on the socket, not Accept.
	onPause func(paused bool)
	once    sync.Once
	// raw is the Gate's own descriptor of the socket once Go's listener
	// was closed for the loops (dropGoListener); -1 before. File,
	// SyscallConn and Close use it then.
	raw int
}

// NewGate wraps ln, which must be a TCP or unix listening socket; it
// starts accepting at once, or paused.
func NewGate(ln net.Listener, paused bool) (*Gate, error) {
	p, ok := ln.(pausable)
	if !ok {
		return nil, fmt.Errorf("gate: %T can't be paused", ln)
	}
	g := &Gate{ln: p, closed: make(chan struct{}), raw: -1}
	if paused {
		g.Pause()
	}
	return g, nil
}

// Accept waits for a connection while the gate is open.
func (g *Gate) Accept() (net.Conn, error) {
	for {
		g.mu.Lock()
		wait := g.wait
		g.mu.Unlock()
		if wait != nil {
			select {
			case <-wait:
			case <-g.closed:
				return nil, net.ErrClosed
			}
			continue
		}
		c, err := g.ln.Accept()
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			continue // paused meanwhile (or paused and resumed): look again
		}
		return c, err
	}
}

// Pause stops accepting: an Accept in progress returns (a connection the
// kernel completed just before stays with this process), and later ones
// wait for Resume.
func (g *Gate) Pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.wait != nil {
		return
	}
	g.wait = make(chan struct{})
	_ = g.ln.SetDeadline(time.Unix(1, 0)) // in the past: wakes a blocked Accept
	if g.onPause != nil {
		g.onPause(true)
	}
}

// Resume accepts again after Pause.
func (g *Gate) Resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.wait == nil {
		return
	}
	_ = g.ln.SetDeadline(time.Time{})
	close(g.wait)
	g.wait = nil
	if g.onPause != nil {
		g.onPause(false)
	}
}

// serveWith hands the accepting to start, which is told whether the gate
// is paused now and returns what to tell of each later Pause and Resume;
// under the gate's lock, so that none is missed in between.
func (g *Gate) serveWith(start func(paused bool) (onPause func(paused bool))) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.onPause = start(g.wait != nil)
}

// Close closes this process's descriptor of the socket; another process
// that holds one (after a handover) goes on accepting.
func (g *Gate) Close() error {
	g.once.Do(func() { close(g.closed) })
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.raw >= 0 {
		closeFD(g.raw)
		g.raw = -1
		return nil
	}
	return g.ln.Close()
}

// KeepPath makes Close leave a unix socket's path in place: the socket
// was handed to another process, which serves it there now.
func (g *Gate) KeepPath() {
	switch ln := g.ln.(type) {
	case interface{ KeepPath() }: // a socket whose owner removes its file
		ln.KeepPath()
	case *net.UnixListener:
		ln.SetUnlinkOnClose(false)
	}
}

// Addr is the socket's address.
func (g *Gate) Addr() net.Addr { return g.ln.Addr() }

// SyscallConn gives the socket's descriptor, for socket options and for
// passing it to another process.
func (g *Gate) SyscallConn() (syscall.RawConn, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.raw >= 0 {
		return gateRaw{g}, nil
	}
	return g.ln.SyscallConn()
}

// gateRaw is the RawConn of a Gate whose Go listener was closed: Control
// runs with its own descriptor, under its lock, so that Close can't close
// it meanwhile.
type gateRaw struct{ g *Gate }

// Control runs fn with the descriptor, unless the Gate was closed.
func (r gateRaw) Control(fn func(fd uintptr)) error {
	r.g.mu.Lock()
	defer r.g.mu.Unlock()
	if r.g.raw < 0 {
		return net.ErrClosed
	}
	fn(uintptr(r.g.raw))
	return nil
}

// Read is not supported: nobody reads a listening socket.
func (r gateRaw) Read(func(fd uintptr) bool) error { return errors.ErrUnsupported }

// Write is not supported: nobody writes a listening socket.
func (r gateRaw) Write(func(fd uintptr) bool) error { return errors.ErrUnsupported }

// Gate returns the listener's socket as a Gate; nil when it was not made
// one (tests that hand New a plain net.Listener).
func (l *Listener) Gate() *Gate {
	g, _ := l.ln.(*Gate)
	return g
}

// File returns a new descriptor of the socket, close-on-exec, to pass to
// another process; the caller closes it.
func (g *Gate) File() (*os.File, error) {
	raw, err := g.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("gate: %w", err)
	}
	var fd int
	var dupErr error
	if err := raw.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, fmt.Errorf("gate: %w", err)
	}
	if dupErr != nil {
		return nil, fmt.Errorf("gate: dup: %w", dupErr)
	}
	return os.NewFile(uintptr(fd), g.ln.Addr().String()), nil
}
