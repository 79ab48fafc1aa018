//go:build linux

package e2e

import (
	"fmt"
	"os/exec"
	"strings"
)

// gatewayPackage is the gateway's main package.
const gatewayPackage = "github.com/etcd-gateway/etcd-gateway"

// build builds the gateway binary at out with tags, and with the race
// detector when the tests run with it: the packages that the tests' own
// build compiled the same way come from the build cache.
func build(out string, tags ...string) error {
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	args = append(args, gatewayPackage)
	// go test puts its own go first in the PATH of the tests.
	if output, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, output)
	}
	return nil
}
