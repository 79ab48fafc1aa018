package forward

import (
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Pair is one client connection and its upstream, forwarded by an event
// loop. Apart from Close, only its loop's goroutine touches it once it is
// registered.
//
// All of a pair's state is in this one struct: its two sockets and what
// their last events said, per direction what is read but not yet written
// (in a buffer or a pipe) and whether it reached EOF, and the bytes moved.
// That is what an upgrade that hands connections to a new process needs:
// Export quiesces a pair between two turns of its loop and returns its two
// descriptors with that state, and AdoptPair registers them in another
// forwarder (handover_linux.go).
type Pair struct {
	l         *loop
	slot, gen int32
	sides     [2]side      // client, upstream
	dirs      [2]direction // client→upstream, upstream→client: dirs[i] reads sides[i]
	done      func(toUpstream, toClient int64)
	closing   atomic.Bool
	meters    meterShards // where bytes are counted as they move
	counted   [2]int64    // of dirs[i].n, what meters have been told

	fds      [2]int // valid inside withFDs only
	hold     fdHold
	failed   bool
	finished bool
	queued   bool  // in l.again
	startErr error // registration's outcome, for start

	// exporting is set while the pair is quiesced for Export, and
	// adopted for a pair made by AdoptPair; see handover_linux.go.
	exporting chan exportResult
	exportIdx int // the pair's index in its ExportBatch
	adopted   bool
}

// side is one socket of a pair and what its last events said.
type side struct {
	conn     Socket
	raw      syscall.RawConn
	readable bool // may have data (or EOF, or an error) to read
	writable bool // may take data
	rdhup    bool // the peer has shut its write side: reads end in EOF
	broken   bool // the socket has an error
	outArmed bool // registered for write events too
}

// ready records the events epoll reported for s.
func (s *side) ready(ev uint32) {
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		s.readable = true
	}
	if ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		s.writable = true
	}
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		s.rdhup = true
	}
	if ev&unix.EPOLLERR != 0 {
		s.broken = true
	}
}

// direction is the bytes moving from one side of a pair to the other, and
// what is read but not yet written: buf[off:end], or inPipe bytes in pipe.
type direction struct {
	src, dst int
	n        int64 // bytes written to dst
	burst    int   // bytes written to dst in this turn of the pair

	buf      []byte
	off, end int
	pipe     pipe
	hasPipe  bool
	inPipe   int

	eof   bool // src reached EOF: shut dst's write side once all is written
	done  bool // dst's write side is shut
	again bool // stopped after a full burst with data left
}

// Close ends the forwarding at once: both connections are closed and done
// is called from the event loop. It may be called from any goroutine, any
// number of times.
func (p *Pair) Close() error {
	if p.closing.Swap(true) {
		return nil
	}
	// Shutting both sockets down raises an event that makes the loop see
	// closing, whatever state the pair is in.
	for i := range p.sides {
		_ = p.sides[i].raw.Control(shutdownBoth)
	}
	return nil
}

// shutdownBoth shuts down both halves of socket fd.
func shutdownBoth(fd uintptr) { _ = unix.Shutdown(int(fd), unix.SHUT_RDWR) }

// event is the registration of side i: read events, and write events too
// once a write to it had to wait.
func (p *Pair) event(i int, out bool) unix.EpollEvent {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: p.slot<<1 | int32(i), Pad: p.gen}
	if out {
		ev.Events |= unix.EPOLLOUT
	}
	return ev
}

// waitWritable notes that side i is full and makes sure its registration
// reports when it drains. Edge-triggered, the next write-space edge comes
// after the EAGAIN that got us here; if it came in between, epoll_ctl
// reports it at once.
func (p *Pair) waitWritable(i int) error {
	s := &p.sides[i]
	s.writable = false
	if s.outArmed {
		return nil
	}
	s.outArmed = true
	ev := p.event(i, true)
	return epollMod(p.l.epfd, p.fds[i], &ev)
}

// run moves what can be moved now, and finishes the pair when both
// directions have ended or anything failed.
func (p *Pair) run() {
	if p.finished {
		return
	}
	if p.exporting != nil {
		p.runExport()
		return
	}
	if p.closing.Load() || p.withFDs((*Pair).step) != nil {
		p.failed = true
	}
	p.countBytes()
	if p.failed || (p.dirs[0].done && p.dirs[1].done) {
		p.finish()
		return
	}
	if (p.dirs[0].again || p.dirs[1].again) && !p.queued {
		p.queued = true
		p.l.again = append(p.l.again, p)
	}
}

// countBytes tells the meters what moved since it last ran: once per
// turn of the pair, not per write.
func (p *Pair) countBytes() {
	up, down := p.dirs[0].n-p.counted[0], p.dirs[1].n-p.counted[1]
	if up == 0 && down == 0 {
		return
	}
	p.counted = [2]int64{p.dirs[0].n, p.dirs[1].n}
	p.meters.add(up, down)
}

// step runs both directions, with both descriptors held.
func (p *Pair) step() {
	for i := range p.dirs {
		if d := &p.dirs[i]; !d.done {
			if err := p.pump(d); err != nil {
				p.failed = true
				return
			}
		}
	}
	// A socket in error whose own direction is over can't deliver anything
	// more: nothing would ever tell us about it again.
	for i := range p.sides {
		if p.sides[i].broken && p.dirs[i].done {
			p.failed = true
		}
	}
}

// finish closes both connections, gives back what the pair held, frees its
// slot and calls done. It runs on the loop's goroutine, outside Control.
func (p *Pair) finish() {
	p.finished = true
	if p.exporting != nil { // ended while being exported
		p.reply(exportResult{err: ErrNotExported})
	}
	for i := range p.dirs {
		p.dirs[i].giveBack(&p.l.freeList)
	}
	_ = p.sides[0].conn.Close()
	_ = p.sides[1].conn.Close()
	p.l.remove(p)
	p.done(p.dirs[0].n, p.dirs[1].n)
}

// giveBack returns d's buffer and pipe to fl; a pipe with bytes left in it
// is closed instead.
func (d *direction) giveBack(fl *freeList) {
	if d.buf != nil {
		fl.putBuf(d.buf)
		d.buf = nil
	}
	if d.hasPipe {
		if d.inPipe == 0 {
			fl.putPipe(d.pipe)
		} else {
			d.pipe.close()
		}
		d.hasPipe = false
	}
}

// fdHold runs a function with both of a pair's descriptors held: inside
// each socket's RawConn.Control, one within the other, so that a
// concurrent Close can't close a descriptor (and let its number be reused)
// while it runs. Its callbacks are method values made once per pair, so a
// call allocates nothing.
type fdHold struct {
	p            *Pair
	fn           func(*Pair)
	outer, inner func(fd uintptr)
}

// init makes h's callbacks for p.
func (h *fdHold) init(p *Pair) {
	h.p = p
	h.outer, h.inner = h.holdClient, h.holdUpstream
}

// holdClient runs inside the client's Control, and holds the upstream. A
// closed upstream fails the pair.
func (h *fdHold) holdClient(fd uintptr) {
	h.p.fds[0] = int(fd)
	if h.p.sides[1].raw.Control(h.inner) != nil {
		h.p.failed = true
	}
}

// holdUpstream runs inside both Controls, and runs the function.
func (h *fdHold) holdUpstream(fd uintptr) {
	h.p.fds[1] = int(fd)
	h.fn(h.p)
}

// withFDs runs fn(p) with both descriptors held, in p.fds. When a socket
// is closed already fn does not run: an error for the client, p.failed for
// the upstream. Nothing of p is touched after fn, which may hand p to its
// loop.
func (p *Pair) withFDs(fn func(*Pair)) error {
	p.hold.fn = fn
	return p.sides[0].raw.Control(p.hold.outer)
}
