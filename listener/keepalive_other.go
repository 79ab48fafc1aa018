//go:build !linux

package listener

import (
	"errors"
	"time"
)

// setListenerKeepAlive reports false: accepted connections get their
// keepalive one by one on this system.
func setListenerKeepAlive(controller, time.Duration) bool { return false }

// setSocketKeepAlive fails here: Go's net package sets keepalives.
func setSocketKeepAlive(controller, time.Duration) error {
	return errors.New("keepalive: set through the net package on this system")
}
