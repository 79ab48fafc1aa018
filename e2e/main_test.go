//go:build linux

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestMain builds the gateway binary for the run, unless the test binary
// runs as a child of a test: an echo member, an etcd member
// (robustness_member_test.go), or the setup of a child gateway
// (setup_test.go).
func TestMain(m *testing.M) {
	if addr := os.Getenv(echoEnv); addr != "" {
		runEcho(addr)
	}
	if config := os.Getenv(memberEnv); config != "" {
		runMember(config)
	}
	if os.Getenv(setupEnv) != "" {
		execGateway()
	}
	os.Exit(runTests(m))
}

// runTests builds the gateway binary, with the failpoints tag, into a
// directory of its own, names it in binaryEnv for the tests and their
// children, runs the tests and removes the directory.
func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "etcd-gateway-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)
	// Every user may run the binary: a test runs a gateway as nobody.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	bin := filepath.Join(dir, "etcd-gateway")
	if err := build(bin, "failpoints"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := os.Setenv(binaryEnv, bin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return m.Run()
}
