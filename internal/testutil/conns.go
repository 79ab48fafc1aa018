package testutil

import (
	"net"
	"net/http"
	"sync/atomic"
)

// ConnCounter counts the connections an HTTP server accepts and those
// still open, so that a test can see how many connections a client keeps
// (the health checks' keep-alive connections, say). Set Hook as the
// server's ConnState.
type ConnCounter struct {
	Accepted, Open atomic.Int32
}

// Hook is an http.Server ConnState hook that counts.
func (c *ConnCounter) Hook(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		c.Accepted.Add(1)
		c.Open.Add(1)
	case http.StateClosed, http.StateHijacked:
		c.Open.Add(-1)
	}
}
