package forward

import (
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// How the forwarder works on Linux.
//
// An idle connection must cost its two sockets and a few hundred bytes of
// heap: no goroutine (a parked goroutine keeps a stack of 4 KiB or more), no
// buffer, no splice pipe. So forwarding is event driven. A Forwarder runs
// event loops (one per GOMAXPROCS but one: see loopCount), each with its
// own epoll instance; a connection pair is registered with one loop,
// edge-triggered, for its whole life, and the loop moves bytes when a
// socket says it is ready:
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
// A loop owns its OS thread (runtime.LockOSThread) and blocks in epoll_wait
// on its own epoll instance, which Go's netpoller doesn't know, with a
// timeout from its timers (connect deadlines, paused listening sockets), or
// none: one epoll_wait per batch of events, then read, write and splice as
// raw system calls, which keep the thread's P. An eventfd in the epoll set
// wakes it for requests from other goroutines (requests, at the end of
// this file), run on its thread between two batches: ExportBatch, Serve's
// pause and stop, Connect's first try, Close of the forwarder.
//
// Pairs hold raw descriptors, which the loop owns and closes, never Go
// objects: a connection the loops accepted (serve_linux.go) or connected
// (connect_linux.go) never had one, one handed to StartMetered as a
// *net.TCPConn is duplicated and the Go object closed (off the hot path),
// and a handover passes the loop's own descriptors (ExportBatch gives them up,
// AdoptFDs takes them). The hazard of a descriptor closed, and its number reused, while
// another goroutine uses it is solved by an owner lock, not by a request
// per call: the loop closes a pair's descriptors (finish) under the pair's
// fdMu, and Close and Control, the only uses from other goroutines, take
// fdMu and use the descriptors only while they are open. Close shuts both
// sockets down, which raises the event that has the loop finish the pair.
//
// The files follow the seams: forwarder_linux.go is the API, this file the
// event loop and its request queue, freelist_linux.go its buffers and
// pipes, timers_linux.go its connect deadlines, pair_linux.go and
// start_linux.go a pair's state and its registration, pump_linux.go one
// direction's steps, connect_linux.go the upstream's connect,
// serve_linux.go accepting, handover_linux.go export and adopt, and
// sys_linux.go the raw syscalls.

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
	// yieldEvery is how often a busy loop hands its goroutine back to Go's
	// scheduler (see yieldIfDue): under sysmonPreempt, so that it yields
	// before sysmon preempts it.
	yieldEvery = 5 * time.Millisecond
	// sysmonPreempt is forcePreemptNS of Go's runtime (runtime/proc.go),
	// which the runtime doesn't export: sysmon preempts a goroutine after
	// this long on one schedule tick, and takes the P of one this long in a
	// system call. yieldIfDue's rules hold only while the two agree:
	// TestSysmonPreemptIsTheRuntimes fails when a Go release changes it.
	sysmonPreempt = 10 * time.Millisecond
)

// loop is one event loop: an epoll instance, the pairs registered with it,
// and the free buffers and pipes its pairs share.
type loop struct {
	index     int // in its forwarder, for the meters' shards
	epfd      int
	file      *os.File // epfd, to close it; not in Go's netpoller
	exited    chan struct{}
	firstBufs sync.Pool // *[]byte of copyBufSize, for sendFirst on callers' goroutines
	// defaultProbes: the kernel's keepalive probe count is ours, so
	// connects don't set it (kernelProbesAreOurs).
	defaultProbes bool

	mu      sync.Mutex // guards what follows; held per batch of events, not per event
	stopped bool
	pairs   []*Pair // by slot
	free    []int32 // free slots
	gen     int32

	// Owned by the loop's thread.
	quit      bool // set by close's request: the loop ends after this turn
	epoch     time.Time
	yielded   int64     // l.now() of the last yieldIfDue
	waited    int64     // nanoseconds the last epoll_wait took
	woke      int64     // l.now() when the last epoll_wait returned: the turn's time for activity
	deadlines deadlines // of the pairs connecting their upstream
	// listenings are the listening sockets the loop accepts on
	// (serve_linux.go), and peer the address accept4 fills.
	listenings []*listening
	peer       unix.RawSockaddrAny
	events     []unix.EpollEvent
	batch      []*Pair
	again      []*Pair // pairs that used their burst with data left to move
	spare      []*Pair // the other slice for again
	freeList
	requests
}

// newLoop starts an event loop on its own epoll instance; defaultProbes
// is kernelProbesAreOurs.
func newLoop(index int, defaultProbes bool) (*loop, error) {
	l := &loop{
		index:         index,
		defaultProbes: defaultProbes,
		epoch:         time.Now(),
		exited:        make(chan struct{}),
		events:        make([]unix.EpollEvent, maxEvents),
		batch:         make([]*Pair, maxEvents),
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	// Blocking, so os.NewFile leaves it out of Go's netpoller.
	l.epfd, l.file = epfd, os.NewFile(uintptr(epfd), "epoll")
	if err := l.openWake(); err != nil {
		_ = l.file.Close()
		return nil, err
	}
	l.firstBufs.New = func() any {
		b := make([]byte, copyBufSize)
		return &b
	}
	go l.run()
	return l, nil
}

// close makes the loop stop taking pairs and wakes it to finish them.
func (l *loop) close() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	l.request(func() { l.quit = true })
}

// add registers both sockets of p (whose descriptors the caller holds),
// edge-triggered, for their whole life.
// They start with read events only (unless sendFirst left data to write): a
// new socket is writable, and waking the loop to be told so would cost a
// turn per socket.
func (l *loop) add(p *Pair) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return net.ErrClosed
	}
	p.slot, p.gen = l.takeSlot()
	if err := l.watch(p); err != nil {
		l.free = append(l.free, p.slot)
		return err
	}
	l.pairs[p.slot] = p
	return nil
}

// watch registers both sockets of p with the epoll instance; on error
// neither stays registered.
func (l *loop) watch(p *Pair) error {
	for i := range p.sides {
		if p.fds[i] < 0 { // an upstream not connected yet
			continue
		}
		ev := p.event(i, p.sides[i].outArmed)
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, p.fds[i], &ev); err != nil {
			if i == 1 {
				_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, p.fds[0], nil)
			}
			return os.NewSyscallError("epoll_ctl", err)
		}
	}
	return nil
}

// takeSlot returns a free slot of l.pairs and a new generation, which
// tells a late event of the slot's last pair from one of the new pair.
// l.mu is held.
func (l *loop) takeSlot() (slot, gen int32) {
	if n := len(l.free); n > 0 {
		slot, l.free = l.free[n-1], l.free[:n-1]
	} else {
		slot = int32(len(l.pairs))
		l.pairs = append(l.pairs, nil)
	}
	l.gen++
	return slot, l.gen
}

// remove frees p's slot.
func (l *loop) remove(p *Pair) {
	l.mu.Lock()
	l.pairs[p.slot] = nil
	l.free = append(l.free, p.slot)
	l.mu.Unlock()
}

// run is the loop's goroutine, locked to its OS thread for its whole
// life: it blocks in epoll_wait, serves what is ready, and starts again,
// until close's request ends it.
func (l *loop) run() {
	runtime.LockOSThread() // never unlocked: the thread ends with the loop
	defer close(l.exited)
	for !l.quit {
		l.turn()
	}
	l.stop()
}

// turn waits for events, at most until the next timer is due (not at all
// when pairs wait for another turn), and serves them: one epoll_wait per
// batch.
func (l *loop) turn() {
	now := l.now()
	l.yieldIfDue(now)
	timeout := earliest(l.deadlines.waitMillis(now), l.listenWait(now))
	if len(l.again) > 0 {
		timeout = 0
	}
	n, err := unix.EpollWait(l.epfd, l.events, timeout)
	l.waited = l.now() - now
	l.woke = now + l.waited
	switch {
	case err == unix.EINTR:
	case err != nil:
		l.quit = true // can't happen with a valid epfd; stop
		return
	case n > 0:
		l.dispatch(l.events[:n])
	}
	l.runRequests()
	l.expire()
	l.runAgain()
}

// yieldIfDue gives the loop's goroutine back to Go's scheduler when it
// has been busy for yieldEvery. A goroutine that only enters and leaves
// system calls keeps its P's schedule tick, so after sysmonPreempt Go's
// sysmon takes it for one that runs too long: a SIGURG to the loop's
// thread, its P taken away, and sysmon back to polling at its fastest,
// which every round trip pays for in CPU and context switches. A yield
// costs two hand-offs of the locked thread's P. After a wait of
// sysmonPreempt or more the count restarts instead: sysmon has taken the
// P during that wait anyway (which is why the threshold must be the
// runtime's), and a yield right after it wakes the scheduler's idle
// threads too, which costs a lightly loaded loop more than it saves.
// docs/performance.md ("Second pass") has the figures.
func (l *loop) yieldIfDue(now int64) {
	switch {
	case l.waited >= int64(sysmonPreempt):
		l.yielded = now
	case now-l.yielded >= int64(yieldEvery):
		l.yielded = now
		runtime.Gosched()
	}
}

// now is the loop's clock: monotonic nanoseconds since it started.
func (l *loop) now() int64 { return since(l.epoch) }

// earliest is the shorter of two epoll_wait timeouts, -1 meaning none.
func earliest(a, b int) int {
	if a < 0 || (b >= 0 && b < a) {
		return b
	}
	return a
}

// expire fails the connects whose deadline passed, and puts back the
// listening sockets whose pause is over.
func (l *loop) expire() {
	if len(l.deadlines) == 0 && len(l.listenings) == 0 {
		return
	}
	now := l.now()
	for p := l.deadlines.due(now); p != nil; p = l.deadlines.due(now) {
		p.timedOut()
	}
	l.retryListenings(now)
}

// dispatch hands a batch of events to their pairs.
func (l *loop) dispatch(evs []unix.EpollEvent) {
	l.lookUp(evs)
	for i := range evs {
		p := l.batch[i]
		l.batch[i] = nil
		if p == nil {
			if ls := l.listeningAt(evs[i].Fd >> 1); ls != nil {
				l.acceptOn(ls)
			}
			continue
		}
		if p.finished {
			continue
		}
		p.sides[evs[i].Fd&1].ready(evs[i].Events)
		p.run()
	}
}

// lookUp fills l.batch with the pair of each event, nil for an event of a
// pair that is gone: one lock per batch.
func (l *loop) lookUp(evs []unix.EpollEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range evs {
		l.batch[i] = nil
		slot := evs[i].Fd >> 1
		if slot >= 0 && int(slot) < len(l.pairs) {
			if p := l.pairs[slot]; p != nil && p.gen == evs[i].Pad {
				l.batch[i] = p
			}
		}
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
	var left []*Pair
	for _, p := range l.pairs {
		if p != nil {
			left = append(left, p)
		}
	}
	l.mu.Unlock()
	for _, p := range left {
		p.finish()
	}
	l.closeWake()
	l.freeList.release()
	_ = l.file.Close()
}

// requests is how other goroutines reach a loop: a queue of functions the
// loop runs on its own goroutine between two batches of events, and the
// eventfd in its epoll set that wakes it for them. ExportBatch, Serve's
// pause and stop, Connect's first try and the forwarder's Close use it.
type requests struct {
	wakeFD     int
	reqMu      sync.Mutex // guards what follows
	reqs       []func()
	wakeClosed bool
}

// wakeSlot is the slot in the epoll data of the loop's eventfd: no pair has
// it, so dispatch finds no pair for its event.
const wakeSlot = -1

// openWake makes the eventfd through which other goroutines wake l to run
// their requests on its goroutine.
func (l *loop) openWake() error {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: wakeSlot << 1}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		_ = unix.Close(fd)
		return os.NewSyscallError("epoll_ctl", err)
	}
	l.wakeFD = fd
	return nil
}

// request runs fn on l's goroutine at its next turn; at once when the
// loop has ended.
func (l *loop) request(fn func()) {
	l.reqMu.Lock()
	if l.wakeClosed {
		l.reqMu.Unlock()
		fn()
		return
	}
	l.reqs = append(l.reqs, fn)
	one := [8]byte{1}
	_, _ = unix.Write(l.wakeFD, one[:]) // under reqMu: closeWake can't close it meanwhile
	l.reqMu.Unlock()
}

// runRequests runs the requests queued; on l's goroutine.
// The eventfd is drained before the queue is taken: a request queued
// after the drain leaves the eventfd readable, so its wake-up is never
// lost (draining after taking the queue lost one, and the loop slept in
// epoll_wait with a request waiting).
func (l *loop) runRequests() {
	l.reqMu.Lock()
	pending := len(l.reqs) > 0
	l.reqMu.Unlock()
	if !pending {
		return
	}
	var b [8]byte
	_, _ = unix.Read(l.wakeFD, b[:])
	l.reqMu.Lock()
	reqs := l.reqs
	l.reqs = nil
	l.reqMu.Unlock()
	for _, fn := range reqs {
		fn()
	}
}

// closeWake closes the eventfd, failing the requests that will never run.
func (l *loop) closeWake() {
	l.reqMu.Lock()
	reqs := l.reqs
	l.reqs = nil
	l.wakeClosed = true
	l.reqMu.Unlock()
	for _, fn := range reqs {
		fn() // each sees its pair finished
	}
	_ = unix.Close(l.wakeFD)
}
