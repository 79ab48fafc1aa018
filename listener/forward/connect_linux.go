package forward

import (
	"fmt"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// Connecting the upstream in the loop.
//
// Forwarder.Connect takes a client socket and an Upstream, the addresses
// to try in turn, and registers the client at once. The loop then makes a
// non-blocking socket, sets TCP_NODELAY (and the keepalive, when asked)
// once, starts connect, and registers the socket for write space: its
// first writable (or error) event ends the try, which SO_ERROR tells. A
// failed try closes the socket, tells the Upstream, which marks the
// endpoint as the pool's Dial would, and the next address is tried at
// once; a try that takes longer than the timeout, from the loop's queue of
// deadlines, fails the same way. Once connected, the pair is forwarded like
// any other: the client's first request, which waited in its socket, is
// read by the loop's first turn of the pair. Until then the pair reads
// nothing; Close ends it, and its done is called, as for any pair.

// LoopsConnect tells whether the loops connect upstreams and accept
// clients themselves (Connect, Serve): they do on Linux.
const LoopsConnect = true

// Connect forwards between client and an upstream that one of the loops
// connects, trying up's addresses in turn (see above), and returns at once
// with the pair, which Close ends at any time. done is called once the
// pair has ended, as for StartMetered, also when no address answered. On error
// client is closed and done is not called.
func (f *Forwarder) Connect(client Socket, up Upstream, o ConnectOptions, done func(toUpstream, toClient int64)) (*Pair, error) {
	fd, err := dupSocket(client)
	_ = client.Close()
	if err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	l := f.loops[f.pickLoop()]
	p, err := l.connecting(fd, up, o, done)
	if err != nil {
		return nil, err
	}
	l.request(p.dialNext)
	return p, nil
}

// connecting registers a pair of client socket fd, whose upstream is to
// be connected, with l; on error it closes fd.
func (l *loop) connecting(fd int, up Upstream, o ConnectOptions, done func(toUpstream, toClient int64)) (*Pair, error) {
	p := newPair(l, fd, -1, loopMeters{}, done)
	p.up, p.opts = up, o
	p.sides[1] = side{} // no try yet: nothing to hear from
	if p.opts.Timeout <= 0 {
		p.opts.Timeout = defaultConnectTimeout
	}
	if err := l.add(p); err != nil {
		p.closeFDs()
		return nil, fmt.Errorf("forward: %w", err)
	}
	return p, nil
}

// dialNext starts connecting to the next address that takes a try; when
// none is left, the pair ends. On the loop's thread.
func (p *Pair) dialNext() {
	if p.finished {
		return
	}
	for {
		addr, ok := p.up.Next()
		if !ok {
			p.failed = true
			p.finish()
			return
		}
		err := p.startConnect(addr)
		if err == nil {
			return
		}
		p.up.Failed(err)
	}
}

// startConnect opens the upstream socket and starts its connect to addr;
// the socket is registered for the event that ends the try.
func (p *Pair) startConnect(addr netip.AddrPort) error {
	fd, err := tcpSocket(addr, keepAlive{p.opts.KeepAlive, p.l.defaultProbes})
	if err != nil {
		return err
	}
	if err := connect(fd, addr); err != nil && err != unix.EINPROGRESS {
		_ = unix.Close(fd)
		return os.NewSyscallError("connect", err)
	}
	p.setUpstream(fd)
	p.sides[1] = side{}
	// On loopback the handshake is done inside connect: then the socket is
	// registered as a connected one, and forwarding starts at once,
	// without waiting for its writable event.
	established := addr.Addr().IsLoopback() && isEstablished(fd)
	p.sides[1].outArmed = !established
	ev := p.event(1, !established)
	if err := unix.EpollCtl(p.l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.setUpstream(-1)
		return os.NewSyscallError("epoll_ctl", err)
	}
	if established {
		p.connected()
		return nil
	}
	p.l.deadlines.add(p, p.l.now()+int64(p.opts.Timeout))
	return nil
}

// setUpstream makes fd the pair's upstream socket, closing the one it had
// (a failed try's); under fdMu, for Control.
func (p *Pair) setUpstream(fd int) {
	p.fdMu.Lock()
	defer p.fdMu.Unlock()
	if p.fds[1] >= 0 {
		_ = unix.Close(p.fds[1])
	}
	p.fds[1] = fd
}

// runConnect is run for a pair whose upstream is connecting: on the
// upstream's first writable or error event, the try is over.
func (p *Pair) runConnect() {
	switch {
	case p.closing.Load():
		p.failed = true
		p.finish()
	case p.fds[1] >= 0 && (p.sides[1].writable || p.sides[1].broken):
		soErr, err := unix.GetsockoptInt(p.fds[1], unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case err != nil:
			p.retry(os.NewSyscallError("getsockopt", err))
		case soErr != 0:
			p.retry(os.NewSyscallError("connect", unix.Errno(soErr)))
		default:
			p.connected()
		}
	}
}

// retry ends a failed try: its socket is closed, the Upstream told, and
// the next address tried.
func (p *Pair) retry(err error) {
	p.l.deadlines.remove(p)
	p.setUpstream(-1)
	p.up.Failed(err)
	p.dialNext()
}

// timedOut fails the try whose deadline passed.
func (p *Pair) timedOut() {
	if p.up != nil && !p.finished {
		p.retry(fmt.Errorf("connect: %w", os.ErrDeadlineExceeded))
	}
}

// connected starts forwarding once the upstream answered: its
// registration drops write events if it had them (a connected socket has
// write space until a write says otherwise), and the pair's first turn
// reads the client's request.
func (p *Pair) connected() {
	p.l.deadlines.remove(p)
	m := p.up.Connected()
	p.up = nil
	p.meters = m.of(p.l.index)
	if p.sides[1].outArmed {
		p.sides[1].outArmed = false
		ev := p.event(1, false)
		if err := epollMod(p.l.epfd, p.fds[1], &ev); err != nil {
			p.failed = true
		}
	}
	p.sides[1].writable = true
	// Clients speak first: the request is most likely waiting already,
	// and reading it now saves a turn of the loop (EAGAIN if not).
	p.sides[0].readable = true
	p.run()
}
