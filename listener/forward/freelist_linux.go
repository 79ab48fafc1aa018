package forward

import "golang.org/x/sys/unix"

// freeList is a loop's free buffers and pipes, shared by its pairs: a
// pair holds one only while it has data in flight. Only the loop's
// goroutine uses it.
type freeList struct {
	bufs  [][]byte
	pipes []pipe
}

// pipe is a splice pipe's two descriptors.
type pipe struct{ r, w int }

// getBuf returns a copy buffer, from the list when it has one.
func (fl *freeList) getBuf() []byte {
	if n := len(fl.bufs); n > 0 {
		b := fl.bufs[n-1]
		fl.bufs = fl.bufs[:n-1]
		return b
	}
	return make([]byte, copyBufSize)
}

// putBuf takes back a buffer, unless the list is full.
func (fl *freeList) putBuf(b []byte) {
	if len(fl.bufs) < maxFreeBufs {
		fl.bufs = append(fl.bufs, b)
	}
}

// getPipe returns an empty pipe, from the list when it has one.
func (fl *freeList) getPipe() (pipe, error) {
	if n := len(fl.pipes); n > 0 {
		pp := fl.pipes[n-1]
		fl.pipes = fl.pipes[:n-1]
		return pp, nil
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return pipe{}, err
	}
	// A bigger pipe moves a bulk transfer in fewer calls; if the system
	// refuses, the default (64 KiB) works too.
	_, _ = unix.FcntlInt(uintptr(fds[1]), unix.F_SETPIPE_SZ, pipeSize)
	return pipe{r: fds[0], w: fds[1]}, nil
}

// putPipe takes back an empty pipe; one past the list's bound is closed.
func (fl *freeList) putPipe(pp pipe) {
	if len(fl.pipes) < maxFreePipes {
		fl.pipes = append(fl.pipes, pp)
		return
	}
	pp.close()
}

// release closes the pipes and drops the buffers, when the loop ends.
func (fl *freeList) release() {
	for _, pp := range fl.pipes {
		pp.close()
	}
	fl.pipes, fl.bufs = nil, nil
}

// close closes both ends of the pipe.
func (pp pipe) close() {
	_ = unix.Close(pp.r)
	_ = unix.Close(pp.w)
}
