//go:build unix

package listener

import "syscall"

// openFileLimit is the soft RLIMIT_NOFILE, or 0 when it can't be read.
func openFileLimit() int64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<40 {
		return 0 // unknown, or unlimited
	}
	return int64(r.Cur)
}
