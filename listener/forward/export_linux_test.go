//go:build linux

package forward

import (
	"os"
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
