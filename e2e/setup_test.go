//go:build linux

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// Environment of the tests' children. The gateway binary TestMain built
// is named for the tests and for the children that exec it; the others
// make the test binary, re-executed, a child of a test: the setup of a
// child gateway, an echo member, or an etcd member.
const (
	binaryEnv = "ETCD_GATEWAY_E2E_BINARY"
	// setupEnv makes the test binary apply a setup (nofileEnv,
	// listenPIDSelfEnv) and exec the gateway binary with its arguments.
	setupEnv = "ETCD_GATEWAY_E2E_SETUP"
	// nofileEnv is the open-file limit of the child.
	nofileEnv = "ETCD_GATEWAY_E2E_NOFILE"
	// listenPIDSelfEnv makes the child set LISTEN_PID to its own pid.
	listenPIDSelfEnv = "ETCD_GATEWAY_E2E_LISTEN_PID_SELF"
	// echoEnv makes the test binary an echo server on the address it
	// names: a member in a process of its own, with an open-file limit of
	// its own.
	echoEnv = "ETCD_GATEWAY_E2E_ECHO"
	// memberEnv makes the test binary an etcd member configured by the
	// JSON it holds (memberConfig): one member in a process of its own,
	// which a test can kill or freeze.
	memberEnv = "ETCD_GATEWAY_E2E_ETCD"
)

// setup is what a child gateway needs that only the child can do before
// the gateway runs. The test binary does it, then execs the gateway in the
// same process: what a test sees of the child (its pid, descriptors,
// signals, exit status) is the gateway's.
type setup struct {
	nofile uint64 // the open-file limit; 0: inherited
	// listenPIDSelf plays systemd, which sets LISTEN_PID to the service's
	// own pid: the test can't know it before the fork.
	listenPIDSelf bool
}

// env is the environment that asks the test binary for s.
func (s setup) env() []string {
	env := []string{setupEnv + "=1"}
	if s.nofile > 0 {
		env = append(env, fmt.Sprintf("%s=%d", nofileEnv, s.nofile))
	}
	if s.listenPIDSelf {
		env = append(env, listenPIDSelfEnv+"=1")
	}
	return env
}

// gatewayCommand runs the gateway binary with args, through the test
// binary when s asks for a setup.
func gatewayCommand(s setup, args ...string) *exec.Cmd {
	name, env := os.Getenv(binaryEnv), []string{raceExitEnv()}
	if s != (setup{}) {
		name, env = os.Args[0], append(env, s.env()...)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// raceExitEnv returns GORACE as the test has it, but for the pause of a
// second that the race detector makes at every exit (atexit_sleep_ms,
// for other goroutines to finish reporting): a test that waits for a child
// gateway's exit, twenty times, would wait twenty seconds for nothing. A
// race found in the child still fails it (exit code 66).
func raceExitEnv() string {
	return "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")
}

// execGateway, in the test binary run as a child's setup, applies the
// setup and execs the gateway binary with the child's arguments.
func execGateway() {
	if err := setNofile(); err != nil {
		exitWith("setup", err)
	}
	if os.Getenv(listenPIDSelfEnv) != "" {
		if err := os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid())); err != nil {
			exitWith("setup", err)
		}
	}
	bin := os.Getenv(binaryEnv)
	exitWith("exec "+bin, syscall.Exec(bin, append([]string{bin}, os.Args[1:]...), os.Environ()))
}

// setNofile sets the open-file limit that nofileEnv names, if any. It
// holds across exec: Go restores the limit it found at start only when
// the program set none.
func setNofile() error {
	s := os.Getenv(nofileEnv)
	if s == "" {
		return nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%s=%q: %w", nofileEnv, s, err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		return fmt.Errorf("setrlimit: %w", err)
	}
	return nil
}

// exitWith ends a child of a test that failed at what.
func exitWith(what string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
	os.Exit(2)
}
