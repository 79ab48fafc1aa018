//go:build !linux

package listener

import "time"

// idleFor would return how long c has been idle; only Linux tells.
func idleFor(controller) (time.Duration, error) { return 0, errIdleUnsupported }
