package listener

import "time"

// workerIdle is how long a handler goroutine waits for its next connection
// before it exits.
const workerIdle = 10 * time.Second

// workers runs the handling of new connections (TLS handshake, dial,
// forwarding start) on goroutines that outlive one connection. A new
// goroutine's stack starts small and grows, by copying, through the dial's
// deep call chain, on every connection; a reused one has grown already. A
// goroutine that finds no work for workerIdle exits, so a burst leaves
// nothing behind for long.
type workers struct {
	handle func(*proxyConn)
	work   chan *proxyConn // unbuffered: only an idle worker takes from it
	stop   <-chan struct{} // closed when no more work will come
}

func newWorkers(handle func(*proxyConn), stop <-chan struct{}) *workers {
	return &workers{handle: handle, work: make(chan *proxyConn), stop: stop}
}

// run hands pc to an idle worker, or to a new one when all are busy.
func (w *workers) run(pc *proxyConn) {
	select {
	case w.work <- pc:
	default:
		go w.loop(pc)
	}
}

func (w *workers) loop(pc *proxyConn) {
	timer := time.NewTimer(workerIdle)
	defer timer.Stop()
	for {
		w.handle(pc)
		timer.Reset(workerIdle)
		var next *proxyConn // nil: stop or idle too long
		select {
		case next = <-w.work:
		case <-timer.C:
		case <-w.stop:
		}
		if next == nil {
			return
		}
		pc = next
	}
}
