//go:build !unix

package listener

// openFileLimit is 0 where there is no RLIMIT_NOFILE: the accept loops
// never pause for descriptors.
func openFileLimit() int64 { return 0 }
