//go:build linux

package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"testing"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// runEcho, in the test binary run as an echo member, takes the open-file
// limit nofileEnv names and echoes every connection to addr until the
// process is killed.
func runEcho(addr string) {
	if err := setNofile(); err != nil {
		exitWith("echo", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		exitWith("echo", err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			exitWith("echo", err)
		}
		go func() {
			defer c.Close()
			// Not io.Copy(c, c): its splice would hold a pipe (two more
			// descriptors) per connection.
			_, _ = io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c})
		}()
	}
}

// startEcho starts an echo server in a child process with the given
// open-file limit and returns its address.
func startEcho(t *testing.T, nofile int) string {
	t.Helper()
	addr := testutil.ListenAddr(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), echoEnv+"="+addr, fmt.Sprintf("%s=%d", nofileEnv, nofile), raceExitEnv())
	launch(t, cmd, "echo", dialable(addr))
	return addr
}
