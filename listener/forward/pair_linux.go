package forward

import (
	"net"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Pair is one client connection and its upstream, forwarded by an event
// loop. Apart from Close and Control, only its loop's thread touches it
// once it is registered.
//
// All of a pair's state is in this one struct: its two sockets and what
// their last events said, per direction what is read but not yet written
// (in a buffer or a pipe) and whether it reached EOF, and the bytes moved.
// That is what an upgrade that hands connections to a new process needs:
// ExportBatch quiesces pairs, each between two turns of its loop, and
// returns their descriptors with that state, and AdoptFDs registers them
// in another forwarder (handover_linux.go).
type Pair struct {
	l         *loop
	slot, gen int32
	sides     [2]side      // client, upstream
	dirs      [2]direction // client→upstream, upstream→client: dirs[i] reads sides[i]
	done      func(toUpstream, toClient int64)
	closing   atomic.Bool
	meters    loopMeters // where bytes are counted as they move
	act       activity   // when bytes last moved each way
	counted   [2]int64   // of dirs[i].n, what meters have been told

	// h2 follows the HTTP/2 framing, on the loop's thread; speaksH2 tells
	// other goroutines once the client's preface was seen (h2.go).
	h2       h2Conn
	speaksH2 atomic.Bool

	// fds are the two sockets' descriptors, which the pair owns until it
	// ends or is exported. fdMu guards their closing: the loop closes them
	// (finish), or gives them up to an export (giveUpFDs), under it, and
	// Close and Control, from other goroutines, use them under it only
	// while fdsClosed is false, so that no descriptor number is used
	// after it was closed (and perhaps reused) or handed over.
	fds       [2]int
	fdMu      sync.Mutex
	fdsClosed bool
	failed    bool
	finished  bool
	queued    bool // in l.again

	// While the upstream is being connected (connect_linux.go): up says
	// where to, and timer is the pair's place in the loop's deadlines
	// (-1: none), due at deadline.
	up       Upstream
	opts     ConnectOptions
	timer    int
	deadline int64

	// exporting is set while the pair is quiesced for ExportBatch, and
	// adopted for a pair made by AdoptFDs; see handover_linux.go.
	exporting chan exportResult
	exportIdx int // the pair's index in its ExportBatch
	adopted   bool
}

// side is what the last events of one socket of a pair said.
type side struct {
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

// Activity reports when the pair last moved bytes each way; any goroutine
// may call it.
func (p *Pair) Activity() Activity { return p.act.at(p.l.epoch) }

// Close ends the forwarding at once: both connections are closed and done
// is called from the event loop. It may be called from any goroutine, any
// number of times.
func (p *Pair) Close() error {
	if p.closing.Swap(true) {
		return nil
	}
	// Shutting both sockets down raises an event that makes the loop see
	// closing, whatever state the pair is in.
	for i := range p.fds {
		_ = p.Control(i, shutdownBoth)
	}
	return nil
}

// shutdownBoth shuts down both halves of socket fd.
func shutdownBoth(fd uintptr) { _ = shutdown(int(fd), unix.SHUT_RDWR) }

// Control runs fn with the descriptor of side i (0 the client, 1 the
// upstream), for a socket option or TCP_INFO, from any goroutine; it
// returns net.ErrClosed, without running fn, once the pair has ended.
func (p *Pair) Control(i int, fn func(fd uintptr)) error {
	p.fdMu.Lock()
	defer p.fdMu.Unlock()
	if p.fdsClosed || p.fds[i] < 0 {
		return net.ErrClosed
	}
	fn(uintptr(p.fds[i]))
	return nil
}

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
	if p.up != nil {
		p.runConnect()
		return
	}
	if p.exporting != nil {
		p.runExport()
		return
	}
	if p.closing.Load() {
		p.failed = true
	} else {
		p.step()
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

// step runs both directions.
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
// slot and calls done. It runs on the loop's thread.
func (p *Pair) finish() {
	p.finished = true
	p.l.deadlines.remove(p)
	if p.exporting != nil { // ended while being exported
		p.reply(exportResult{err: ErrNotExported})
	}
	for i := range p.dirs {
		p.dirs[i].giveBack(&p.l.freeList)
	}
	p.closeFDs()
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

// closeFDs closes both sockets, under fdMu: see fds.
func (p *Pair) closeFDs() {
	p.fdMu.Lock()
	defer p.fdMu.Unlock()
	p.fdsClosed = true
	for _, fd := range p.fds {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
	}
}
