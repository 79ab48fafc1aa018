package unixsock

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// InGroup reports whether the process of c has group gid, as its primary
// group or a supplementary one (read from /proc: SO_PEERCRED has only the
// primary group). A process gone since it connected has no groups.
func (c Cred) InGroup(gid uint32) bool {
	if c.GID == gid {
		return true
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.PID))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(status), "\n") {
		if groups, ok := strings.CutPrefix(line, "Groups:"); ok {
			return hasGroup(strings.Fields(groups), gid)
		}
	}
	return false
}

// hasGroup reports whether the group numbers fields hold gid.
func hasGroup(fields []string, gid uint32) bool {
	for _, f := range fields {
		if n, err := strconv.ParseUint(f, 10, 32); err == nil && uint32(n) == gid {
			return true
		}
	}
	return false
}
