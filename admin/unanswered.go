package admin

import (
	"context"
	"net"
	"net/http"
	"sync"
)

// unanswered counts the connections the server accepted that are not
// idle: new (no request read yet) or active. net/http's Shutdown drops a
// request it reads after Shutdown began, closing the connection without a
// word. A gateway that hands its admin socket to a new process accepted
// such connections just before it stopped accepting, and their clients
// must get an answer, so Shutdown first waits for them (see
// Server.Shutdown).
type unanswered struct {
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	changed chan struct{} // closed and replaced at each change
}

func newUnanswered() *unanswered {
	return &unanswered{conns: map[net.Conn]struct{}{}, changed: make(chan struct{})}
}

// track is the server's ConnState hook.
func (u *unanswered) track(c net.Conn, st http.ConnState) {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch st {
	case http.StateNew, http.StateActive:
		u.conns[c] = struct{}{}
	default:
		delete(u.conns, c)
	}
	close(u.changed)
	u.changed = make(chan struct{})
}

// wait returns once no connection is new or active, or ctx is done.
func (u *unanswered) wait(ctx context.Context) {
	for {
		u.mu.Lock()
		n, changed := len(u.conns), u.changed
		u.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}
