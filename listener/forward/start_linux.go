package forward

import (
	"net"

	"golang.org/x/sys/unix"
)

// newPair returns the pair of client and upstream, to be forwarded on l.
func newPair(l *loop, client, upstream Socket, m meterShards, done func(toUpstream, toClient int64)) (*Pair, error) {
	p := &Pair{l: l, done: done, meters: m}
	for i, c := range [2]Socket{client, upstream} {
		raw, err := c.SyscallConn()
		if err != nil {
			return nil, err
		}
		p.sides[i] = side{conn: c, raw: raw, writable: true}
	}
	p.dirs = [2]direction{{src: 0, dst: 1}, {src: 1, dst: 0}}
	p.hold.init(p)
	return p, nil
}

// start forwards what the client has already sent, then registers p with
// its loop, which owns it from then on. An error means p was not
// registered: a socket was closed already, or the loop is stopped.
func (p *Pair) start() error {
	p.startErr = net.ErrClosed // unless register runs: a socket is closed
	if err := p.withFDs((*Pair).register); err != nil {
		return err
	}
	return p.startErr
}

// register runs with both descriptors held, before the loop knows p.
func (p *Pair) register() {
	if !p.adopted {
		p.sendFirst()
	}
	p.countBytes() // before add: from then on only the loop touches p
	p.startErr = p.l.add(p)
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
	w, err := write(p.fds[1], (*bp)[:n])
	w = max(w, 0)
	p.dirs[0].n += int64(w)
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
