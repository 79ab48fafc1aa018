package forward

import "golang.org/x/sys/unix"

// pump moves bytes from d's source to its destination until the source is
// drained, the destination is full, the burst is used up or the source
// ended. Each pass takes one step: deliver what is held, end the direction
// at EOF, or read more. An error means the pair must be closed.
func (p *Pair) pump(d *direction) error {
	d.again, d.burst = false, 0
	for {
		more, err := p.pumpStep(d)
		if !more || err != nil {
			return err
		}
	}
}

// pumpStep takes the next step of d, and reports whether to take another.
func (p *Pair) pumpStep(d *direction) (more bool, err error) {
	switch {
	case d.src == 1 && p.h2.goAwayDue(): // between two frames: before the rest
		return p.flushGoAway(d)
	case d.off < d.end: // deliver what was read before reading more
		return p.flushBuf(d)
	case d.inPipe > 0:
		return p.flushPipe(d)
	case d.eof:
		return false, p.endDirection(d)
	case !p.sides[d.src].readable:
		d.releasePipe(&p.l.freeList) // quiet: the pipe goes back
		return false, nil
	case d.burst >= burstSize: // the loop's other pairs get their turn
		d.again = true
		return false, nil
	case d.hasPipe:
		return true, p.spliceIn(d)
	default:
		return true, p.readBuf(d)
	}
}

// flushBuf writes d's buffered bytes; the buffer goes back once empty.
func (p *Pair) flushBuf(d *direction) (more bool, err error) {
	if !p.sides[d.dst].writable {
		return false, nil
	}
	end := d.end
	if d.src == 1 && p.h2.goAwayHeld() {
		end = d.off + min(end-d.off, p.h2.untilBoundary())
	}
	n, err := write(p.fds[d.dst], d.buf[d.off:end])
	if n > 0 {
		if d.src == 1 && p.h2.following() {
			p.h2.toClient(d.buf[d.off : d.off+n])
		}
		d.off += n
	}
	more, err = p.wrote(d, n, err)
	if more && d.off == d.end {
		p.l.putBuf(d.buf)
		d.buf, d.off, d.end = nil, 0, 0
	}
	return more, err
}

// flushPipe splices the bytes in d's pipe to the destination.
func (p *Pair) flushPipe(d *direction) (more bool, err error) {
	if !p.sides[d.dst].writable {
		return false, nil
	}
	n, err := splice(d.pipe.r, p.fds[d.dst], d.inPipe)
	if n > 0 {
		d.inPipe -= n
	}
	return p.wrote(d, n, err)
}

// wrote counts n bytes written to d's destination and reports whether to
// go on: not when the destination is full (then it waits for write space)
// or failed.
func (p *Pair) wrote(d *direction, n int, err error) (more bool, _ error) {
	if n > 0 {
		d.n += int64(n)
		d.burst += n
		p.act.wrote(d.src, p.l.woke)
	}
	switch {
	case err == unix.EAGAIN:
		return false, p.waitWritable(d.dst)
	case err != nil:
		return false, err
	}
	return true, nil
}

// endDirection passes d's EOF on, once all it read is written: it shuts
// the destination's write side.
func (p *Pair) endDirection(d *direction) error {
	d.releasePipe(&p.l.freeList)
	// When the other direction is over, the pair is about to be closed,
	// and close sends the FIN: no need to shut first.
	if !p.dirs[d.dst].done {
		if err := shutdown(p.fds[d.dst], unix.SHUT_WR); err != nil {
			return err
		}
	}
	d.done = true
	return nil
}

// readBuf reads from d's source into a buffer. A read that fills it is a
// burst: d gets a pipe, if one can be had, to splice the rest.
func (p *Pair) readBuf(d *direction) error {
	src := &p.sides[d.src]
	buf := p.l.getBuf()
	n, err := read(p.fds[d.src], buf)
	if n <= 0 {
		p.l.putBuf(buf)
		return d.nothingRead(src, err)
	}
	d.buf, d.end = buf, n
	if d.src == 0 {
		p.fromClient(buf[:n])
	}
	switch {
	case n < len(buf) && !src.rdhup && !src.broken:
		src.readable = false // drained: the next edge tells
	case n == len(buf) && p.maySplice(d):
		if pp, err := p.l.getPipe(); err == nil {
			d.pipe, d.hasPipe = pp, true
		}
	}
	return nil
}

// spliceIn splices from d's source into its empty pipe.
func (p *Pair) spliceIn(d *direction) error {
	n, err := splice(p.fds[d.src], d.pipe.w, pipeSize)
	if n <= 0 {
		return d.nothingRead(&p.sides[d.src], err)
	}
	d.inPipe = n
	return nil
}

// nothingRead handles a read or splice from src that brought no bytes:
// the source is drained (EAGAIN), failed, or at EOF.
func (d *direction) nothingRead(src *side, err error) error {
	switch {
	case err == unix.EAGAIN:
		src.readable = false
		return nil
	case err != nil:
		return err
	}
	d.eof = true
	return nil
}

// releasePipe gives d's empty pipe back to fl.
func (d *direction) releasePipe(fl *freeList) {
	if d.hasPipe && d.inPipe == 0 {
		fl.putPipe(d.pipe)
		d.hasPipe = false
	}
}

// flushGoAway writes the GOAWAY a move asked for (Pair.GoAway) to the
// client, at a frame boundary; a short write keeps the rest for the
// client's next write space, and the member's bytes wait behind it.
func (p *Pair) flushGoAway(d *direction) (more bool, err error) {
	if !p.sides[d.dst].writable {
		return false, nil
	}
	n, err := write(p.fds[d.dst], []byte(h2GoAway[p.h2.out:]))
	if n > 0 {
		p.h2.out += n
	}
	return p.wrote(d, n, err)
}

// maySplice reports whether d may splice a burst: a splice hides the
// bytes, so the member's frames to an HTTP/2 client are copied instead,
// and a connection not known to speak HTTP/2 by then stops being
// followed.
func (p *Pair) maySplice(d *direction) bool {
	if d.src == 0 || p.h2.state == h2No {
		return true
	}
	if p.h2.state == h2Unknown {
		p.h2.state = h2No
		return true
	}
	return false
}

// fromClient reads the client's first bytes for the HTTP/2 preface.
func (p *Pair) fromClient(b []byte) {
	if p.h2.prefaceSeen(b) {
		p.speaksH2.Store(true)
	}
}
