package forward

import (
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Accepting in the loops.
//
// Forwarder.Serve registers one listening socket with every loop,
// level-triggered and EPOLLEXCLUSIVE: a new connection wakes one loop,
// not all, and that loop accepts (accept4, non-blocking and close-on-exec)
// until the backlog is empty or a batch is done, asks the Acceptor about
// each connection, registers it, and starts connecting its upstream in the
// same turn (connect_linux.go). One shared socket keeps a handover simple:
// the one descriptor goes to the new process. A loop stops accepting on the
// socket, by taking it out of its epoll set, while the Acceptor says there
// is no room (the descriptor reserve) or after an accept failed, and puts it
// back after a pause; Pause and Resume do the same on every loop (a
// handover), and Stop for good.

const (
	// acceptBatch bounds the connections one loop accepts in a turn.
	acceptBatch = 64
	// roomPoll is how long a loop waits before it asks for room again.
	roomPoll = 20 * time.Millisecond
)

// Service is a listening socket served by a forwarder's loops.
type Service struct {
	f  *Forwarder
	fd int
	a  Acceptor

	mu      sync.Mutex // serialises Pause, Resume and Stop
	paused  bool
	stopped bool
}

// listening is one loop's registration of a Service.
type listening struct {
	s          *Service
	slot       int32 // the epoll data's slot: -2 and down
	registered bool
	paused     bool  // by Service.Pause: not until Resume
	retryAt    int64 // registered again then (loop clock), 0: not waiting
}

// Serve accepts connections on listening socket fd, which it owns from
// then on (Stop closes it), in every loop, and forwards them as a decides
// (see above). It starts paused when paused is set.
func (f *Forwarder) Serve(fd int, a Acceptor, paused bool) (*Service, error) {
	s := &Service{f: f, fd: fd, a: a, paused: paused}
	var errs []error
	s.each(func(l *loop) {
		if err := l.listen(s, paused); err != nil {
			errs = append(errs, err)
		}
	})
	if len(errs) > 0 {
		s.Stop()
		return nil, fmt.Errorf("forward: serve: %w", errs[0])
	}
	return s, nil
}

// each runs fn on every loop's thread and waits for all; fn runs at once
// for a loop that ended.
func (s *Service) each(fn func(*loop)) {
	var wg sync.WaitGroup
	var mu sync.Mutex // fn's of different loops run concurrently
	for _, l := range s.f.loops {
		wg.Add(1)
		l.request(func() {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			fn(l)
		})
	}
	wg.Wait()
}

// Pause stops accepting on every loop: connections wait in the backlog
// until Resume (or another process takes the socket).
func (s *Service) Pause() { s.setPaused(true) }

// Resume accepts again after Pause.
func (s *Service) Resume() { s.setPaused(false) }

// setPaused pauses or resumes every loop's registration, and returns once
// all did.
func (s *Service) setPaused(paused bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.paused == paused {
		return
	}
	s.paused = paused
	s.each(func(l *loop) {
		if ls := l.listeningOf(s); ls != nil {
			ls.paused = paused
			l.arm(ls)
		}
	})
}

// Stop stops accepting for good and closes the socket, once no loop has
// it registered; connections accepted stay.
func (s *Service) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	s.each(func(l *loop) { l.unlisten(s) })
	_ = unix.Close(s.fd)
}

// listen registers s with l, unless paused; on the loop's thread.
func (l *loop) listen(s *Service, paused bool) error {
	slot := int32(-2)
	for l.listeningAt(slot) != nil {
		slot--
	}
	ls := &listening{s: s, slot: slot, paused: paused}
	l.listenings = append(l.listenings, ls)
	if paused {
		return nil
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: slot << 1}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, s.fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	ls.registered = true
	return nil
}

// unlisten forgets s; on the loop's thread.
func (l *loop) unlisten(s *Service) {
	for i, ls := range l.listenings {
		if ls.s == s {
			l.setRegistered(ls, false)
			l.listenings = append(l.listenings[:i], l.listenings[i+1:]...)
			return
		}
	}
}

// listeningOf is l's registration of s, nil when it has none.
func (l *loop) listeningOf(s *Service) *listening {
	for _, ls := range l.listenings {
		if ls.s == s {
			return ls
		}
	}
	return nil
}

// listeningAt is l's registration whose events carry slot, or nil.
func (l *loop) listeningAt(slot int32) *listening {
	for _, ls := range l.listenings {
		if ls.slot == slot {
			return ls
		}
	}
	return nil
}

// arm registers ls's socket when it should be (not paused, not waiting
// for a retry), and takes it out when it should not.
func (l *loop) arm(ls *listening) {
	l.setRegistered(ls, !ls.paused && ls.retryAt == 0)
}

// setRegistered adds or deletes ls's socket in l's epoll set.
func (l *loop) setRegistered(ls *listening, on bool) {
	if ls.registered == on {
		return
	}
	ls.registered = on
	if !on {
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, ls.s.fd, nil)
		return
	}
	// With EPOLLEXCLUSIVE a socket can only be added, not modified.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: ls.slot << 1}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, ls.s.fd, &ev); err != nil {
		ls.registered = false
		l.retry(ls, roomPoll) // try again later
	}
}

// retry takes ls's socket out for d, after which retryListenings puts it
// back.
func (l *loop) retry(ls *listening, d time.Duration) {
	ls.retryAt = l.now() + int64(d)
	l.setRegistered(ls, false)
}

// retryListenings puts back the sockets whose pause is over.
func (l *loop) retryListenings(now int64) {
	for _, ls := range l.listenings {
		if ls.retryAt != 0 && ls.retryAt <= now {
			ls.retryAt = 0
			l.arm(ls)
		}
	}
}

// listenWait is how long epoll_wait may wait for the next retry of a
// paused socket, in whole milliseconds; -1 when none waits.
func (l *loop) listenWait(now int64) int {
	wait := -1
	for _, ls := range l.listenings {
		if ls.retryAt != 0 {
			ms := max(int((ls.retryAt-now+int64(time.Millisecond)-1)/int64(time.Millisecond)), 0)
			if wait < 0 || ms < wait {
				wait = ms
			}
		}
	}
	return wait
}

// acceptOn accepts what waits on ls's socket, up to a batch.
func (l *loop) acceptOn(ls *listening) {
	if !ls.registered {
		return // a late event of a socket taken out in this batch
	}
	for range acceptBatch {
		if !ls.s.a.Room() {
			l.retry(ls, roomPoll)
			return
		}
		fd, peer, err := l.accept(ls.s.fd)
		switch {
		case err == unix.EAGAIN:
			return
		case err == unix.EINTR || err == unix.ECONNABORTED:
			continue
		case err != nil:
			l.retry(ls, ls.s.a.Error(os.NewSyscallError("accept4", err)))
			return
		}
		l.serveClient(ls.s.a, fd, peer)
	}
}

// serveClient hands an accepted client to a, and connects its upstream.
func (l *loop) serveClient(a Acceptor, fd int, peer netip.AddrPort) {
	c, keep := a.Accept(fd, peer)
	switch {
	case !keep:
		_ = unix.Close(fd)
		return
	case c.Upstream == nil: // taken
		return
	}
	p, err := l.connecting(fd, c.Upstream, c.Options, c.Done)
	if err != nil {
		c.Done(0, 0)
		return
	}
	c.Started(p)
	p.dialNext()
}

// accept takes a connection from listening socket lfd: its descriptor,
// non-blocking and close-on-exec, and the peer's address.
func (l *loop) accept(lfd int) (int, netip.AddrPort, error) {
	size := uint32(unsafe.Sizeof(l.peer))
	fd, _, errno := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(&l.peer)), uintptr(unsafe.Pointer(&size)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if errno != 0 {
		return -1, netip.AddrPort{}, errno
	}
	return int(fd), peerAddr(&l.peer), nil
}

// peerAddr is the IP address and port in sa, the zero value for another
// family (a unix socket's peer).
func peerAddr(sa *unix.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case unix.AF_INET:
		in := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(in.Addr), port(in.Port))
	case unix.AF_INET6:
		in := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom16(in.Addr), port(in.Port))
	}
	return netip.AddrPort{}
}

// port turns a port in network byte order into a number.
func port(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}
