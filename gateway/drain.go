package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
)

// MaxDrainTimeout bounds a drain's timeout: a drain that waits longer for
// its connections to fall quiet is a call nobody watches any more.
const MaxDrainTimeout = time.Hour

// DrainRequest asks the running gateway to drain an endpoint of a
// listener (`etcd-gateway drain`): no new connections, the open ones
// closed as each falls quiet, and those still open at Timeout closed then.
type DrainRequest struct {
	Listener string `json:"listener"`
	// Endpoint is the address as the file has it, or one of the IP
	// addresses its host name resolves to, with the port.
	Endpoint string `json:"endpoint"`
	// Timeout is a Go duration ("30s"), above zero and at most
	// MaxDrainTimeout.
	Timeout string `json:"timeout"`
}

// DrainAnswer is what a drain did.
type DrainAnswer struct {
	Listener string `json:"listener"`
	// Endpoint is the address as the listener's pool has it.
	Endpoint string `json:"endpoint"`
	// Moved counts the connections closed while quiet, Closed those
	// closed at the timeout, Open those the endpoint still holds.
	Moved  int   `json:"moved"`
	Closed int   `json:"closed"`
	Open   int64 `json:"open"`
}

// UndrainRequest asks the running gateway to let a drained endpoint take
// new connections again (`etcd-gateway undrain`).
type UndrainRequest struct {
	Listener string `json:"listener"`
	Endpoint string `json:"endpoint"`
}

// UndrainAnswer names the endpoint undrained as its pool has it.
type UndrainAnswer struct {
	Listener string `json:"listener"`
	Endpoint string `json:"endpoint"`
}

// ParseDrainTimeout reads a drain's timeout and checks its bounds.
func ParseDrainTimeout(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Errorf("timeout %q: %w", s, err)
	case d <= 0 || d > MaxDrainTimeout:
		return 0, fmt.Errorf("timeout %s: must be above 0s and at most %s", d, MaxDrainTimeout)
	}
	return d, nil
}

// drainFromControl answers a DrainRequest. The drain runs its whole
// timeout even when the caller hangs up: its connections are closed at
// the end, as the caller asked, whoever waits for the answer.
func (g *Gateway) drainFromControl(ctx context.Context, req DrainRequest) (DrainAnswer, error) {
	timeout, err := ParseDrainTimeout(req.Timeout)
	if err != nil {
		return DrainAnswer{}, err
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	d, err := g.group.Drain(dctx, req.Listener, req.Endpoint)
	if err != nil && d.Endpoint == "" {
		return DrainAnswer{}, err
	}
	g.log.WithFields(logrus.Fields{"listener": req.Listener, "endpoint": d.Endpoint, "moved": d.Moved, "closed": d.Closed, "open": d.Open}).
		Info("endpoint drained: it takes no new connections until undrained")
	a := DrainAnswer{Listener: req.Listener, Endpoint: d.Endpoint, Moved: d.Moved, Closed: d.Closed, Open: d.Open}
	return a, err
}

// undrainFromControl answers an UndrainRequest.
func (g *Gateway) undrainFromControl(_ context.Context, req UndrainRequest) (UndrainAnswer, error) {
	addr, err := g.group.Undrain(req.Listener, req.Endpoint)
	if err != nil {
		return UndrainAnswer{}, err
	}
	g.log.WithFields(logrus.Fields{"listener": req.Listener, "endpoint": addr}).Info("endpoint undrained: it takes new connections again")
	return UndrainAnswer{Listener: req.Listener, Endpoint: addr}, nil
}
