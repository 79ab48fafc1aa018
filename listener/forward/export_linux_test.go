//go:build linux

package forward

import (
	"net"
	"os"
	"runtime"
	"time"
)

// Test hooks: what the tests in package forward_test may see of the
// event loops.

// CopyBufSize is the size of a copy buffer: a read that fills one
// switches the burst to splice.
const CopyBufSize = copyBufSize

// MaxFreePipes is how many pipes a quiet loop keeps.
const MaxFreePipes = maxFreePipes

// EpollFiles returns each loop's epoll descriptor, to check that Close
// closes them.
func (f *Forwarder) EpollFiles() []*os.File {
	files := make([]*os.File, len(f.loops))
	for i, l := range f.loops {
		files[i] = l.file
	}
	return files
}

// Export exports p alone: see ExportBatch.
func (p *Pair) Export(timeout time.Duration) (Exported, error) {
	r := ExportBatch([]*Pair{p}, timeout)[0]
	return r.Exported, r.Err
}

// Sync returns once p's loop ran a request queued after every earlier
// one: what GoAway asked is done by then.
func (p *Pair) Sync() {
	ran := make(chan struct{})
	p.l.request(func() { close(ran) })
	<-ran
}

// CloseIfQuietAfter sends b to the pair's client socket, as its client
// would, and checks CloseIfQuiet on the loop's thread before the loop
// can read them: the request a quiet look from elsewhere misses.
func (p *Pair) CloseIfQuietAfter(client net.Conn, b []byte, window time.Duration) (closed bool, err error) {
	ran := make(chan struct{})
	p.l.request(func() {
		defer close(ran)
		if _, err = client.Write(b); err != nil {
			return
		}
		deadline := time.Now().Add(5 * time.Second)
		for !unread(p.fds[0]) && time.Now().Before(deadline) {
			runtime.Gosched()
		}
		closed = p.closeIfQuiet(window)
	})
	<-ran
	return closed, err
}
