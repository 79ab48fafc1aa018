//go:build linux

package listener

import (
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// How the forwarder works on Linux.
//
// An idle connection must cost its two sockets and a few hundred bytes of
// heap: no goroutine (a parked goroutine keeps a stack of 4 KiB or more), no
// buffer, no splice pipe. So forwarding is event driven. A Forwarder runs one
// event loop per GOMAXPROCS, each with its own epoll instance; a connection
// pair is registered with one loop, edge-triggered, for its whole life, and
// the loop moves bytes when a socket says it is ready:
//
//   - small data is copied through a buffer from the loop's free list, which
//     goes back as soon as it is written;
//   - when a read fills that buffer, the rest of the burst is spliced (zero
//     copy) through a pipe from the loop's free list, which goes back once
//     the source is drained and the pipe is empty;
//   - what the destination can't take yet waits in the buffer or pipe for the
//     destination's next writable edge, so only a connection that is moving
//     data holds one;
//   - a read shorter than its buffer means the socket is drained (as HAProxy
//     assumes): new data, a FIN or an error after it raises a new edge.
//
// The epoll instance is itself registered in Go's netpoller (as an os.File),
// so a loop with nothing to do parks its goroutine like any network read and
// blocks no OS thread. The sockets stay registered in Go's netpoller too,
// which costs nothing while nobody waits on them. Every syscall on a socket
// runs inside its RawConn.Control, so a concurrent Close can't close the
// descriptor (and let the number be reused) under the loop.

const (
	// copyBufSize is the size of a copy buffer; a read that fills one
	// switches the burst to splice.
	copyBufSize = 16 << 10
	// pipeSize is the capacity asked for a splice pipe; it is also the most
	// one splice call moves.
	pipeSize = 256 << 10
	// burstSize is how much one direction moves before the loop serves its
	// other connections.
	burstSize = 1 << 20
	// Free-list bounds of a loop: what a quiet loop keeps.
	maxFreeBufs  = 16
	maxFreePipes = 2
	maxEvents    = 128
)

// Forwarder forwards connection pairs. Its methods are safe for concurrent
// use. Close it when no connection is forwarded any more.
type Forwarder struct {
	loops     []*loop
	next      atomic.Uint32
	closeOnce sync.Once
	firstBufs sync.Pool // *[]byte of copyBufSize, for sendFirst
}

// NewForwarder starts a forwarder with one event loop per GOMAXPROCS; each
// holds an epoll descriptor and a goroutine.
func NewForwarder() (*Forwarder, error) {
	f := &Forwarder{}
	f.firstBufs.New = func() any {
		b := make([]byte, copyBufSize)
		return &b
	}
	for range runtime.GOMAXPROCS(0) {
		l, err := newLoop()
		if err != nil {
			_ = f.Close()
			return nil, err
		}
		f.loops = append(f.loops, l)
	}
	return f, nil
}

// Start forwards bytes both ways between client and upstream, which must be
// TCP connections, and returns at once. When one side finishes sending
// (EOF) the other side's write half is shut, so a client that closes its
// write side still receives the reply. When either side fails (reset, or
// the returned Closer's Close) both connections are closed at once. When
// both directions have ended and both connections are closed, done is
// called once, from the forwarder's event loop, with the bytes sent to
// upstream and to the client: it must not block, nor call Close on f.
//
// From Start on the connections belong to the forwarder: to end the
// forwarding early, call Close on the returned Closer, never on the
// connections. On error both connections are closed and done is not called.
func (f *Forwarder) Start(client, upstream net.Conn, done func(toUpstream, toClient int64)) (io.Closer, error) {
	return f.StartMetered(client, upstream, Meters{}, done)
}

// StartMetered is Start, counting the bytes into m as they move: each
// event loop counts into its own shard of m's counters, so that a
// connection open for days shows its traffic at once and the loops share
// no counter.
func (f *Forwarder) StartMetered(client, upstream net.Conn, m Meters, done func(toUpstream, toClient int64)) (io.Closer, error) {
	li := int(f.next.Add(1) % uint32(len(f.loops)))
	p := &pair{done: done, meters: m.shards(li)}
	for i, c := range [2]net.Conn{client, upstream} {
		sc, ok := c.(syscall.Conn)
		if !ok { // TLS: no socket to splice or poll; copy with goroutines
			return startCopy(client, upstream, p.meters, done), nil
		}
		raw, err := sc.SyscallConn()
		if err != nil {
			_, _ = client.Close(), upstream.Close()
			return nil, err
		}
		p.sides[i] = side{conn: c, raw: raw, writable: true}
	}
	p.dirs = [2]direction{{src: 0, dst: 1}, {src: 1, dst: 0}}
	p.l = f.loops[li]
	p.withFD[0] = func(fd uintptr) {
		p.fds[0] = int(fd)
		if p.sides[1].raw.Control(p.withFD[1]) != nil {
			p.failed = true
		}
	}
	p.withFD[1] = func(fd uintptr) {
		p.fds[1] = int(fd)
		if p.starting {
			p.start(f)
		} else {
			p.step()
		}
	}
	p.starting = true
	err := p.sides[0].raw.Control(p.withFD[0])
	if err == nil {
		err = p.startErr
	}
	if err == nil && !p.registered {
		err = net.ErrClosed // a connection was closed already
	}
	if err != nil {
		_, _ = client.Close(), upstream.Close()
		return nil, err
	}
	return p, nil
}

// start runs in Start, with both descriptors held: it forwards what the
// client has already sent, then registers the pair with its loop, which
// owns it from then on.
func (p *pair) start(f *Forwarder) {
	p.starting = false
	f.sendFirst(p)
	p.countBytes() // before add: from then on only the loop touches p
	if err := p.l.add(p); err != nil {
		p.startErr = err
		return
	}
	p.registered = true
}

// sendFirst forwards what the client has already sent, from the caller's
// goroutine, before p is registered: clients speak first, and their first
// request is usually waiting by the time the upstream is connected; moving
// it here saves the loop a turn per connection. Registration then reports
// whatever is left: more data, EOF, an error, or a destination to drain.
func (f *Forwarder) sendFirst(p *pair) {
	bp := f.firstBufs.Get().(*[]byte)
	defer f.firstBufs.Put(bp)
	n, err := read(p.fds[0], *bp)
	if n <= 0 {
		// Nothing yet, or EOF (the loop will read it again), or an error:
		// registration reports the socket's state.
		p.failed = err != nil && err != unix.EAGAIN
		return
	}
	w, err := write(p.fds[1], (*bp)[:n])
	if w < 0 {
		w = 0
	}
	d := &p.dirs[0]
	d.n += int64(w)
	switch {
	case err != nil && err != unix.EAGAIN:
		p.failed = true
	case w < n:
		// Keep the rest for the loop, and have the upstream registered
		// for write space, which reports at once if there is some.
		d.buf = make([]byte, copyBufSize)
		d.end = copy(d.buf, (*bp)[w:n])
		p.sides[1].writable = false
		p.sides[1].outArmed = true
	}
}

// Close stops the event loops and waits for them. Connections still being
// forwarded are closed and their done called.
func (f *Forwarder) Close() error {
	f.closeOnce.Do(func() {
		for _, l := range f.loops {
			l.mu.Lock()
			l.stopped = true
			l.mu.Unlock()
			// Wakes the loop; returns once the loop is out of its callback.
			_ = l.file.Close()
		}
		for _, l := range f.loops {
			<-l.exited
		}
	})
	return nil
}

// loop is one event loop: an epoll instance, the pairs registered with it,
// and the free buffers and pipes its pairs share.
type loop struct {
	epfd   int
	file   *os.File // epfd, registered in Go's netpoller
	raw    syscall.RawConn
	exited chan struct{}

	mu      sync.Mutex // guards what follows; held per batch of events, not per event
	stopped bool
	pairs   []*pair // by slot
	free    []int32 // free slots
	gen     int32

	// Owned by the loop's goroutine.
	events []unix.EpollEvent
	batch  []*pair
	again  []*pair // pairs that used their burst with data left to move
	spare  []*pair // the other slice for again
	bufs   [][]byte
	pipes  []pipe
}

type pipe struct{ r, w int }

func newLoop() (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	file := os.NewFile(uintptr(epfd), "epoll")
	raw, err := file.SyscallConn()
	if err != nil {
		_ = file.Close()
		return nil, err
	}
	l := &loop{
		epfd: epfd, file: file, raw: raw, exited: make(chan struct{}),
		events: make([]unix.EpollEvent, maxEvents),
		batch:  make([]*pair, maxEvents),
	}
	go l.run()
	return l, nil
}

// add registers both sockets of p (whose descriptors the caller holds),
// edge-triggered, for their whole life.
// They start with read events only (unless sendFirst left data to write): a
// new socket is writable, and waking the loop to be told so would cost a
// turn per socket.
func (l *loop) add(p *pair) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return net.ErrClosed
	}
	var slot int32
	if n := len(l.free); n > 0 {
		slot, l.free = l.free[n-1], l.free[:n-1]
	} else {
		slot = int32(len(l.pairs))
		l.pairs = append(l.pairs, nil)
	}
	l.gen++
	p.slot, p.gen = slot, l.gen
	for i := range p.sides {
		ev := p.event(i, p.sides[i].outArmed)
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, p.fds[i], &ev); err != nil {
			if i == 1 {
				_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, p.fds[0], nil)
			}
			l.free = append(l.free, slot)
			return os.NewSyscallError("epoll_ctl", err)
		}
	}
	l.pairs[slot] = p
	return nil
}

// run is the loop's goroutine. The whole loop runs inside one RawConn.Read
// of the epoll descriptor: Go's netpoller wakes it when the epoll has events,
// and Close of the file ends it.
func (l *loop) run() {
	defer close(l.exited)
	_ = l.raw.Read(func(epfd uintptr) bool {
		for {
			n, err := epollWait(int(epfd), l.events)
			switch {
			case err == unix.EINTR:
				continue
			case err != nil:
				return true // can't happen with a valid epfd; stop
			case n > 0:
				l.dispatch(l.events[:n])
			}
			l.runAgain()
			// Fewer events than room: the ready list was empty when we
			// looked, and anything new raises the netpoller's edge.
			if n < len(l.events) && len(l.again) == 0 {
				return false
			}
		}
	})
	l.stop()
}

// dispatch hands a batch of events to their pairs.
func (l *loop) dispatch(evs []unix.EpollEvent) {
	l.mu.Lock()
	for i := range evs {
		l.batch[i] = nil
		slot := evs[i].Fd >> 1
		if slot >= 0 && int(slot) < len(l.pairs) {
			if p := l.pairs[slot]; p != nil && p.gen == evs[i].Pad {
				l.batch[i] = p
			}
		}
	}
	l.mu.Unlock()
	for i := range evs {
		p := l.batch[i]
		l.batch[i] = nil
		if p == nil || p.finished {
			continue
		}
		p.sides[evs[i].Fd&1].ready(evs[i].Events)
		p.run()
	}
}

// runAgain gives another turn to the pairs that used up their burst.
func (l *loop) runAgain() {
	if len(l.again) == 0 {
		return
	}
	// Two slices in turn: a pair may queue itself again while this turn
	// runs.
	again := l.again
	l.again = l.spare[:0]
	for _, p := range again {
		p.queued = false
		p.run()
	}
	clear(again)
	l.spare = again[:0]
}

// stop finishes every pair left when the loop ends, and frees the pipes.
func (l *loop) stop() {
	l.mu.Lock()
	l.stopped = true
	var left []*pair
	for _, p := range l.pairs {
		if p != nil {
			left = append(left, p)
		}
	}
	l.mu.Unlock()
	for _, p := range left {
		p.finish()
	}
	for _, pp := range l.pipes {
		closePipe(pp)
	}
	l.pipes, l.bufs = nil, nil
	_ = l.file.Close()
}

func (l *loop) getBuf() []byte {
	if n := len(l.bufs); n > 0 {
		b := l.bufs[n-1]
		l.bufs = l.bufs[:n-1]
		return b
	}
	return make([]byte, copyBufSize)
}

func (l *loop) putBuf(b []byte) {
	if len(l.bufs) < maxFreeBufs {
		l.bufs = append(l.bufs, b)
	}
}

func (l *loop) getPipe() (pipe, error) {
	if n := len(l.pipes); n > 0 {
		pp := l.pipes[n-1]
		l.pipes = l.pipes[:n-1]
		return pp, nil
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return pipe{}, err
	}
	// A bigger pipe moves a bulk transfer in fewer calls; if the system
	// refuses, the default (64 KiB) works too.
	_, _ = unix.FcntlInt(uintptr(fds[1]), unix.F_SETPIPE_SZ, pipeSize)
	return pipe{r: fds[0], w: fds[1]}, nil
}

// putPipe takes back an empty pipe.
func (l *loop) putPipe(pp pipe) {
	if len(l.pipes) < maxFreePipes {
		l.pipes = append(l.pipes, pp)
		return
	}
	closePipe(pp)
}

func closePipe(pp pipe) {
	_ = unix.Close(pp.r)
	_ = unix.Close(pp.w)
}

// pair is one client connection and its upstream. Apart from Close, only
// its loop's goroutine touches it once it is registered.
type pair struct {
	l         *loop
	slot, gen int32
	sides     [2]side      // client, upstream
	dirs      [2]direction // client→upstream, upstream→client: dirs[i] reads sides[i]
	done      func(toUpstream, toClient int64)
	closing   atomic.Bool
	meters    meterShards // where bytes are counted as they move
	counted   [2]int64    // of dirs[i].n, what meters have been told

	fds      [2]int              // valid inside withFD only
	withFD   [2]func(fd uintptr) // run step with both descriptors held
	failed   bool
	finished bool
	queued   bool // in l.again

	// Used by Start only, before the loop owns the pair.
	starting   bool
	registered bool
	startErr   error
}

// side is one socket of a pair and what its last events said.
type side struct {
	conn     net.Conn
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

	buf      []byte
	off, end int
	pipe     pipe
	hasPipe  bool
	inPipe   int

	eof   bool // src reached EOF: shut dst's write side once all is written
	done  bool // dst's write side is shut
	again bool // stopped after a full burst with data left
}

// event is the registration of side i: read events, and write events too
// once a write to it had to wait.
func (p *pair) event(i int, out bool) unix.EpollEvent {
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
func (p *pair) waitWritable(i int) error {
	s := &p.sides[i]
	s.writable = false
	if s.outArmed {
		return nil
	}
	s.outArmed = true
	ev := p.event(i, true)
	_, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(p.l.epfd), unix.EPOLL_CTL_MOD, uintptr(p.fds[i]), uintptr(unsafe.Pointer(&ev)), 0, 0)
	return errnoErr(errno)
}

// Close ends the forwarding at once: both connections are closed and done
// is called from the event loop. It may be called from any goroutine, any
// number of times.
func (p *pair) Close() error {
	if p.closing.Swap(true) {
		return nil
	}
	// Shutting both sockets down raises an event that makes the loop see
	// closing, whatever state the pair is in.
	for i := range p.sides {
		_ = p.sides[i].raw.Control(func(fd uintptr) { _ = unix.Shutdown(int(fd), unix.SHUT_RDWR) })
	}
	return nil
}

// run moves what can be moved now, and finishes the pair when both
// directions have ended or anything failed.
func (p *pair) run() {
	if p.finished {
		return
	}
	if p.closing.Load() || p.sides[0].raw.Control(p.withFD[0]) != nil {
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
func (p *pair) countBytes() {
	up, down := p.dirs[0].n-p.counted[0], p.dirs[1].n-p.counted[1]
	if up == 0 && down == 0 {
		return
	}
	p.counted = [2]int64{p.dirs[0].n, p.dirs[1].n}
	p.meters.add(up, down)
}

// step runs both directions, with both descriptors held.
func (p *pair) step() {
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

// pump moves bytes from d's source to its destination until the source is
// drained, the destination is full, the burst is used up or the source
// ended. An error means the pair must be closed.
func (p *pair) pump(d *direction) error {
	l := p.l
	src, dst := &p.sides[d.src], &p.sides[d.dst]
	sfd, dfd := p.fds[d.src], p.fds[d.dst]
	d.again = false
	moved := 0
	for {
		// Deliver what was read before reading more.
		if d.off < d.end {
			if !dst.writable {
				return nil
			}
			n, err := write(dfd, d.buf[d.off:d.end])
			if n > 0 {
				d.off += n
				d.n += int64(n)
				moved += n
			}
			switch {
			case err == unix.EAGAIN:
				return p.waitWritable(d.dst)
			case err != nil:
				return err
			case d.off < d.end:
				continue
			}
			l.putBuf(d.buf)
			d.buf, d.off, d.end = nil, 0, 0
		}
		if d.inPipe > 0 {
			if !dst.writable {
				return nil
			}
			n, err := splice(d.pipe.r, dfd, d.inPipe)
			if n > 0 {
				d.inPipe -= n
				d.n += int64(n)
				moved += n
			}
			if err == unix.EAGAIN {
				return p.waitWritable(d.dst)
			}
			if err != nil {
				return err
			}
			continue
		}
		if d.eof {
			d.releasePipe(l)
			// When the other direction is over, the pair is about to be
			// closed, and close sends the FIN: no need to shut first.
			if !p.dirs[d.dst].done {
				if err := shutdown(dfd, unix.SHUT_WR); err != nil {
					return err
				}
			}
			d.done = true
			return nil
		}
		if !src.readable {
			d.releasePipe(l) // quiet: the pipe goes back
			return nil
		}
		if moved >= burstSize {
			d.again = true
			return nil
		}
		if !d.hasPipe {
			buf := l.getBuf()
			n, err := read(sfd, buf)
			switch {
			case err == unix.EAGAIN:
				l.putBuf(buf)
				src.readable = false
			case err != nil:
				l.putBuf(buf)
				return err
			case n == 0:
				l.putBuf(buf)
				d.eof = true
			default:
				d.buf, d.end = buf, n
				if n < len(buf) && !src.rdhup && !src.broken {
					src.readable = false // drained: the next edge tells
				} else if n == len(buf) {
					// A big burst: splice the rest, if a pipe can be had.
					if pp, err := l.getPipe(); err == nil {
						d.pipe, d.hasPipe = pp, true
					}
				}
			}
			continue
		}
		n, err := splice(sfd, d.pipe.w, pipeSize)
		switch {
		case err == unix.EAGAIN:
			src.readable = false
		case err != nil:
			return err
		case n == 0:
			d.eof = true
		default:
			d.inPipe = n
		}
	}
}

// releasePipe gives d's empty pipe back to the loop.
func (d *direction) releasePipe(l *loop) {
	if d.hasPipe && d.inPipe == 0 {
		l.putPipe(d.pipe)
		d.hasPipe = false
	}
}

// finish closes both connections, gives back what the pair held, frees its
// slot and calls done. It runs on the loop's goroutine, outside Control.
func (p *pair) finish() {
	p.finished = true
	l := p.l
	for i := range p.dirs {
		d := &p.dirs[i]
		if d.buf != nil {
			l.putBuf(d.buf)
			d.buf = nil
		}
		if d.hasPipe {
			if d.inPipe == 0 {
				l.putPipe(d.pipe)
			} else {
				closePipe(d.pipe)
			}
			d.hasPipe = false
		}
	}
	_ = p.sides[0].conn.Close()
	_ = p.sides[1].conn.Close()
	l.mu.Lock()
	l.pairs[p.slot] = nil
	l.free = append(l.free, p.slot)
	l.mu.Unlock()
	p.done(p.dirs[0].n, p.dirs[1].n)
}

// The loop's syscalls are all non-blocking, so they are made raw: a raw
// syscall keeps the loop goroutine's P. Through syscall.Syscall, one that
// takes longer than the scheduler's 20 µs tick (loopback TCP work is done
// inside the sender's syscall) hands the P to another thread, and the loop
// then waits in the run queue to get one back, with every connection it
// serves.

func read(fd int, b []byte) (int, error) {
	for {
		n, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if errno != unix.EINTR {
			return int(n), errnoErr(errno)
		}
	}
}

func write(fd int, b []byte) (int, error) {
	for {
		n, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if errno != unix.EINTR {
			return int(n), errnoErr(errno)
		}
	}
}

func splice(from, to, n int) (int, error) {
	for {
		m, _, errno := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(from), 0, uintptr(to), 0, uintptr(n), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
		if errno != unix.EINTR {
			return int(m), errnoErr(errno)
		}
	}
}

func shutdown(fd, how int) error {
	_, _, errno := unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), uintptr(how), 0)
	return errnoErr(errno)
}

func epollWait(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	return int(n), errnoErr(errno)
}

// errnoErr turns a raw syscall's errno into an error, nil for 0.
func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// loopsExited returns a channel per event loop, closed when it has exited.
func (f *Forwarder) loopsExited() []<-chan struct{} {
	var chs []<-chan struct{}
	for _, l := range f.loops {
		chs = append(chs, l.exited)
	}
	return chs
}
