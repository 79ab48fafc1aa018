package forward

import (
	"time"

	"golang.org/x/sys/unix"
)

// GoAway asks the loop to write a GOAWAY to the client at the next frame
// boundary of the member's bytes, and reports whether the connection
// speaks plaintext HTTP/2; for any other nothing is written. A client
// told so sends its new requests on a new connection and closes this one
// when its streams end: no request of its fails.
func (p *Pair) GoAway() bool {
	if !p.speaksH2.Load() {
		return false
	}
	p.l.request(p.askGoAway)
	return true
}

// askGoAway is GoAway on the loop's thread: the pair runs at once, so
// that a pair at a boundary writes it now.
func (p *Pair) askGoAway() {
	if p.finished || p.h2.asked {
		return
	}
	p.h2.asked = true
	if p.up == nil && p.exporting == nil {
		p.run()
	}
}

// CloseIfQuiet closes the connection, as Close does, only when nothing is
// in flight: Activity is Quiet for window, the pair holds no bytes either
// way, and neither socket has bytes the loop has not read yet. The check
// and the close run on the loop's thread, where no byte can move between
// them; it reports whether it closed.
func (p *Pair) CloseIfQuiet(window time.Duration) bool {
	if !p.Activity().Quiet(time.Now(), window) { // spares the loop a request
		return false
	}
	closed := make(chan bool, 1)
	p.l.request(func() { closed <- p.closeIfQuiet(window) })
	return <-closed
}

// closeIfQuiet is CloseIfQuiet on the loop's thread.
func (p *Pair) closeIfQuiet(window time.Duration) bool {
	if p.finished || p.closing.Load() || p.up != nil || p.exporting != nil || p.holds() {
		return false
	}
	if !p.Activity().Quiet(time.Now(), window) || unread(p.fds[0]) || unread(p.fds[1]) {
		return false
	}
	return p.Close() == nil
}

// holds reports whether the pair has read bytes it has not written yet,
// either way, or owes the client a GOAWAY.
func (p *Pair) holds() bool { return p.held() || p.h2.goAwayHeld() }

// unread reports whether socket fd has received bytes not read yet; an
// error counts as some, so that a move errs on the side of waiting.
func unread(fd int) bool {
	n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	return err != nil || n > 0
}
