package forward

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Handing a pair to another process.
//
// Exporting asks the pair's loop, woken through an eventfd in its epoll set,
// to quiesce the pair between two of its turns: from then on the loop reads
// neither socket (what the peers send next stays in the kernel's receive
// queues, which move with the descriptors) and writes what the pair holds
// in its buffers and pipes to their destinations; a direction whose source
// ended is passed on (its destination's write side shut). Once nothing is
// held, the loop takes the sockets out of its epoll set, gives up its
// descriptors to the caller (it neither duplicates nor closes them: under
// fdMu, so that Close and Control no longer use them) and calls done, as
// if the pair had ended here. If the destinations don't take the bytes
// within the timeout, the pair is forwarded on as if nothing happened.
// AdoptFDs is the other half: a pair from two descriptors and that state,
// registered without the first read of StartPair.

// exportResult is the outcome of one export, handed from the loop: i is
// the pair's index in its ExportBatch.
type exportResult struct {
	i   int
	ex  Exported
	err error
}

// Movable returns p: a loop's pair may be handed over.
func (p *Pair) Movable() (*Pair, bool) { return p, true }

// ExportBatch quiesces the pairs ps and returns their descriptors and
// state (see above), in the order of ps: one request to each loop and one
// timer for the whole batch, rather than per pair. It waits up to timeout
// for a pair's destinations to take what it holds; on ErrNotExported the
// pair goes on as before, or has ended.
func ExportBatch(ps []*Pair, timeout time.Duration) []ExportResult {
	out := make([]ExportResult, len(ps))
	res := make(chan exportResult, len(ps))
	perLoop(ps, func(p *Pair, i int) { p.quiesce(res, i) })
	got := make([]bool, len(ps))
	n := collect(res, out, got, len(ps), timeout)
	if n < len(ps) {
		perLoop(ps, func(p *Pair, i int) {
			if !got[i] {
				p.unquiesce()
			}
		})
		collect(res, out, got, len(ps)-n, -1)
	}
	return out
}

// perLoop runs fn on each pair of ps, with its index, on the pair's loop:
// one request per loop.
func perLoop(ps []*Pair, fn func(*Pair, int)) {
	byLoop := map[*loop][]int{}
	for i, p := range ps {
		byLoop[p.l] = append(byLoop[p.l], i)
	}
	for l, is := range byLoop {
		l.request(func() {
			for _, i := range is {
				fn(ps[i], i)
			}
		})
	}
}

// collect takes up to n results into out, marking them in got, until
// timeout (none when negative); it returns how many it took.
func collect(res chan exportResult, out []ExportResult, got []bool, n int, timeout time.Duration) int {
	var expire <-chan time.Time
	if timeout >= 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expire = t.C
	}
	for k := range n {
		select {
		case r := <-res:
			out[r.i], got[r.i] = ExportResult{Exported: r.ex, Err: r.err}, true
		case <-expire:
			return k
		}
	}
	return n
}

// quiesce starts exporting p, the i-th of its batch; on the loop's
// goroutine.
func (p *Pair) quiesce(res chan exportResult, i int) {
	if p.finished || p.exporting != nil || p.up != nil || p.l.isStopped() {
		res <- exportResult{i: i, err: ErrNotExported}
		return
	}
	p.exporting, p.exportIdx = res, i
	p.run()
}

// reply hands the outcome of the export to its caller; the pair is no
// longer being exported.
func (p *Pair) reply(r exportResult) {
	r.i = p.exportIdx
	p.exporting <- r
	p.exporting = nil
}

// unquiesce gives up exporting p, whose time is up; on the loop's
// goroutine.
func (p *Pair) unquiesce() {
	if p.exporting == nil || p.finished {
		return
	}
	p.reply(exportResult{err: fmt.Errorf("%w: its destination did not take its bytes in time", ErrNotExported)})
	p.run()
}

// runExport is run for a pair being exported: deliver what it holds, and
// once nothing is held, export it.
func (p *Pair) runExport() {
	if p.closing.Load() {
		p.failed = true
	} else {
		p.flushHeld()
	}
	p.countBytes()
	switch {
	case p.failed, p.dirs[0].done && p.dirs[1].done: // ended here: close sends the FINs
		p.finish()
	case p.held():
		// The destination is full: its write-space event brings us back.
	default:
		p.export()
	}
}

// flushHeld writes what p holds, and passes on the directions whose
// source ended; it reads nothing.
func (p *Pair) flushHeld() {
	for i := range p.dirs {
		d := &p.dirs[i]
		for !d.done {
			var more bool
			var err error
			switch {
			case d.src == 1 && p.h2.goAwayDue():
				more, err = p.flushGoAway(d)
			case d.off < d.end:
				more, err = p.flushBuf(d)
			case d.inPipe > 0:
				more, err = p.flushPipe(d)
			case d.eof:
				err = p.endDirection(d)
			}
			if err != nil {
				p.failed = true
				return
			}
			if !more {
				break
			}
		}
	}
}

// held reports whether p still holds bytes to write: a GOAWAY begun is
// some, since the new process would write the member's bytes into its
// middle; one not begun is dropped, and a later move asks again.
func (p *Pair) held() bool {
	for i := range p.dirs {
		if d := &p.dirs[i]; d.off < d.end || d.inPipe > 0 {
			return true
		}
	}
	return p.h2.out > 0 && p.h2.goAwayHeld()
}

// export takes p out of its loop and hands its descriptors to the
// caller of ExportBatch. It first claims p against Close: a Close from now on
// does nothing (its shutdown would end the connections the caller now
// holds), and a Close that came first wins.
func (p *Pair) export() {
	if err := p.claim(); err != nil {
		p.reply(exportResult{err: fmt.Errorf("%w: %v", ErrNotExported, err)})
		p.failed = true
		p.finish()
		return
	}
	for i := range p.fds {
		_ = unix.EpollCtl(p.l.epfd, unix.EPOLL_CTL_DEL, p.fds[i], nil)
	}
	fds := p.giveUpFDs()
	ex := Exported{Client: fds[0], Upstream: fds[1]}
	ex.State = PairState{Done: [2]bool{p.dirs[0].done, p.dirs[1].done}, Bytes: [2]int64{p.dirs[0].n, p.dirs[1].n}}
	res, i := p.exporting, p.exportIdx
	p.exporting = nil
	p.finish() // closes nothing: the descriptors are the caller's
	res <- exportResult{i: i, ex: ex}
}

// Why a pair is not exported: it was closed as it was exported, or one
// of its sockets failed.
var (
	errClosing = errors.New("closed meanwhile")
	errFailed  = errors.New("a socket failed")
)

// claim takes p from Close for the export, unless p failed or a Close
// came first.
func (p *Pair) claim() error {
	switch {
	case p.failed:
		return errFailed
	case p.closing.Swap(true):
		return errClosing
	}
	return nil
}

// giveUpFDs returns p's descriptors, which p no longer owns: under fdMu,
// as if closed (see Pair.fds), so that Control and Close never use them
// again, nor finish close them.
func (p *Pair) giveUpFDs() [2]int {
	p.fdMu.Lock()
	defer p.fdMu.Unlock()
	fds := p.fds
	p.fds = [2]int{-1, -1}
	p.fdsClosed = true
	return fds
}

// AdoptFDs forwards between two connected sockets of a pair exported by
// another process (or taken back), in the state it had: the directions
// that ended stay ended, and the byte counts go on from where they were
// (the meters count only what moves here). The descriptors are the
// forwarder's from the call on; they must be non-blocking, as ExportBatch left
// them. Nothing is read before the loop has them: what the peers sent
// meanwhile waits in the sockets, and the registration reports it. On
// error both descriptors are closed and done is not called.
func (f *Forwarder) AdoptFDs(client, upstream int, st PairState, m Meters, done func(toUpstream, toClient int64)) (*Pair, error) {
	li := f.pickLoop()
	p := newPair(f.loops[li], client, upstream, m.of(li), done)
	p.adopted = true
	p.h2.state = h2No // its frames began in another process
	for i := range p.dirs {
		d := &p.dirs[i]
		d.n = st.Bytes[i]
		d.eof, d.done = st.Done[i], st.Done[i]
		if d.eof {
			p.sides[d.src].rdhup = true
		}
	}
	p.counted = st.Bytes
	// A new registration reports what is ready at once: unread bytes,
	// EOF, write space.
	p.sides[0].readable, p.sides[1].readable = true, true
	if err := p.start(); err != nil {
		p.closeFDs()
		return nil, fmt.Errorf("forward: adopt: %w", err)
	}
	return p, nil
}

// Peer returns the address of the peer of socket fd (getpeername), and
// whether fd is a unix socket (whose peer has no address): what an
// adopted connection's logs and idle checks need, which an accept would
// have told.
func Peer(fd int) (peer netip.AddrPort, unixSocket bool, err error) {
	var sa unix.RawSockaddrAny
	size := uint32(unsafe.Sizeof(sa))
	_, _, errno := unix.RawSyscall(unix.SYS_GETPEERNAME, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&size)))
	if errno != 0 {
		return netip.AddrPort{}, false, os.NewSyscallError("getpeername", errno)
	}
	return peerAddr(&sa), sa.Addr.Family == unix.AF_UNIX, nil
}

// isStopped reports whether l takes no more pairs.
func (l *loop) isStopped() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stopped
}
