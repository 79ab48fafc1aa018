package forward

import (
	"net/netip"
	"time"
)

// Upstream is a client's upstream as a loop connects it (Forwarder.Connect):
// the addresses to try, in turn, and what came of each. The loop calls it
// on its thread: it must not block.
type Upstream interface {
	// Next returns the next address to connect to; false when none is
	// left, and the client is closed (done is called with no bytes).
	Next() (netip.AddrPort, bool)
	// Failed tells that connecting to the address Next gave last failed
	// with err.
	Failed(err error)
	// Connected tells that the address Next gave last answered, and
	// returns the meters the pair counts its bytes into from now on.
	Connected() Meters
}

// ConnectOptions are the settings of an upstream socket a loop connects.
type ConnectOptions struct {
	// Timeout bounds one try; 0 means 30 s.
	Timeout time.Duration
	// KeepAlive is the TCP keepalive period of the socket; 0 leaves it
	// off.
	KeepAlive time.Duration
}

// defaultConnectTimeout bounds a try when ConnectOptions has no timeout.
const defaultConnectTimeout = 30 * time.Second
