package forward

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// newPair returns the pair of the sockets client and upstream, whose
// descriptors it owns from now on, to be forwarded on l.
func newPair(l *loop, client, upstream int, m loopMeters, done func(toUpstream, toClient int64)) *Pair {
	p := &Pair{l: l, done: done, meters: m, fds: [2]int{client, upstream}, timer: -1}
	p.sides = [2]side{{writable: true}, {writable: true}}
	p.dirs = [2]direction{{src: 0, dst: 1}, {src: 1, dst: 0}}
	p.act.begin(l.now())
	return p
}

// takeFDs takes the descriptors of two sockets from their Go objects: a
// duplicate of each, which shares its open file (non-blocking) and which
// Go's netpoller doesn't know, then each object is closed. Off the hot
// path: a connection the loops accepted or connected themselves has a
// raw descriptor from the start. On error both are closed and no
// descriptor is left.
func takeFDs(client, upstream Socket) (fds [2]int, err error) {
	for i, c := range [2]Socket{client, upstream} {
		if fds[i], err = dupSocket(c); err != nil {
			if i == 1 {
				_ = unix.Close(fds[0])
			}
			break
		}
	}
	_, _ = client.Close(), upstream.Close()
	return fds, err
}

// dupSocket returns a close-on-exec duplicate of c's descriptor.
func dupSocket(c Socket) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, dupErr := -1, error(nil)
	if err := raw.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	if dupErr != nil {
		return -1, os.NewSyscallError("dup", dupErr)
	}
	return fd, nil
}

// start forwards what the client has already sent, then registers p with
// its loop, which owns it from then on. An error means p was not
// registered: the loop is stopped; the caller closes the descriptors.
func (p *Pair) start() error {
	if !p.adopted {
		p.sendFirst()
	}
	p.countBytes() // before add: from then on only the loop touches p
	return p.l.add(p)
}

// sendFirst forwards what the client has already sent, from the caller's
// goroutine, before p is registered: clients speak first, and their first
// request is usually waiting by the time the upstream is connected; moving
// it here saves the loop a turn per connection. Registration then reports
// whatever is left: more data, EOF, an error, or a destination to drain.
func (p *Pair) sendFirst() {
	bp := p.l.firstBufs.Get().(*[]byte)
	defer p.l.firstBufs.Put(bp)
	n, err := read(p.fds[0], *bp)
	if n <= 0 {
		// Nothing yet, or EOF (the loop will read it again), or an error:
		// registration reports the socket's state.
		p.failed = err != nil && err != unix.EAGAIN
		return
	}
	p.fromClient((*bp)[:n])
	w, err := write(p.fds[1], (*bp)[:n])
	w = max(w, 0)
	p.dirs[0].n += int64(w)
	if w > 0 {
		p.act.wrote(toUpstream, p.l.now())
	}
	switch {
	case err != nil && err != unix.EAGAIN:
		p.failed = true
	case w < n:
		p.keepFirst((*bp)[w:n])
	}
}

// keepFirst keeps the rest of the first request for the loop, and has the
// upstream registered for write space, which reports at once if there is
// some.
func (p *Pair) keepFirst(rest []byte) {
	d := &p.dirs[0]
	d.buf = make([]byte, copyBufSize)
	d.end = copy(d.buf, rest)
	p.sides[1].writable = false
	p.sides[1].outArmed = true
}
