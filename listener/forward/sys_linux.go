package forward

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The loop's syscalls are all non-blocking, so they are made raw: a raw
// syscall keeps the loop goroutine's P. Through syscall.Syscall, one that
// takes longer than the scheduler's 20 µs tick (loopback TCP work is done
// inside the sender's syscall) hands the P to another thread, and the loop
// then waits in the run queue to get one back, with every connection it
// serves.

// read reads from fd into b, which must not be empty.
func read(fd int, b []byte) (int, error) {
	for {
		n, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if errno != unix.EINTR {
			return int(n), errnoErr(errno)
		}
	}
}

// write writes b, which must not be empty, to fd.
func write(fd int, b []byte) (int, error) {
	for {
		n, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if errno != unix.EINTR {
			return int(n), errnoErr(errno)
		}
	}
}

// splice moves up to n bytes from one descriptor to another, one of them
// a pipe.
func splice(from, to, n int) (int, error) {
	for {
		m, _, errno := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(from), 0, uintptr(to), 0, uintptr(n), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
		if errno != unix.EINTR {
			return int(m), errnoErr(errno)
		}
	}
}

// shutdown shuts down part of socket fd's connection.
func shutdown(fd, how int) error {
	_, _, errno := unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), uintptr(how), 0)
	return errnoErr(errno)
}

// epollWait returns the events ready on epfd, without waiting.
func epollWait(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	return int(n), errnoErr(errno)
}

// epollMod changes fd's registration in epfd to ev.
func epollMod(epfd, fd int, ev *unix.EpollEvent) error {
	_, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), unix.EPOLL_CTL_MOD, uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	return errnoErr(errno)
}

// errnoErr turns a raw syscall's errno into an error, nil for 0.
func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}
