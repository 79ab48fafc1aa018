//go:build failpoints

package handover

import (
	"fmt"
	"os"
	"time"
)

// HookEnv names the failpoint of the handover, in builds with the
// failpoints tag only (as etcd builds its gofail points): a process whose
// environment sets it to the name of a step of a handover stops there,
// writes "upgrade test hook: stopped at <step>" to stderr, and waits, so
// that a test can kill it at that step for real (SIGKILL). The steps:
// "new:sockets" (the new process received the listening sockets), "new:conns"
// (it received the first of several batches of connections), "new:serving"
// (it received the last, and is about to say "serving"); "old:ready" (the old
// process heard "ready", and is about to pause), "old:conns" (it sent its
// first batch of connections).
const HookEnv = "ETCD_GATEWAY_TEST_UPGRADE_STOP"

// hook stops the process at step when HookEnv says so (see there).
func hook(step string) {
	if os.Getenv(HookEnv) != step {
		return
	}
	fmt.Fprintf(os.Stderr, "upgrade test hook: stopped at %s\n", step)
	for {
		time.Sleep(time.Hour) // a timer: never taken for a deadlock
	}
}
