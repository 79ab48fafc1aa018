//go:build !linux

package unixsock

// InGroup reports whether the process of c has group gid as its primary
// group; outside Linux its supplementary groups are not read.
func (c Cred) InGroup(gid uint32) bool { return c.GID == gid }
