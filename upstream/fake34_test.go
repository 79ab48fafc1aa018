package upstream

import (
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// fake34 is a loopback HTTP server that serves what etcd 3.4 before
// 3.4.29 serves the checks: /health and, through its JSON gateway, the
// Status RPC (unless noStatus), and no /readyz. It counts the requests it
// gets, by path.
type fake34 struct {
	*httptest.Server
	addr     string
	learner  atomic.Bool
	noStatus bool

	mu       sync.Mutex
	requests map[string]int
}

func newFake34(t *testing.T, noStatus bool) *fake34 {
	t.Helper()
	f := &fake34{noStatus: noStatus, requests: map[string]int{}}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.Start()
	f.addr = f.Listener.Addr().String()
	t.Cleanup(f.Close)
	return f
}

func (f *fake34) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests[r.URL.Path]++
	f.mu.Unlock()
	switch {
	case r.URL.Path == healthPath:
		_, _ = io.WriteString(w, `{"health":"true"}`)
	case r.URL.Path == statusPath && !f.noStatus:
		learner := ""
		if f.learner.Load() {
			learner = `, "isLearner": true`
		}
		_, _ = fmt.Fprintf(w, `{"header":{"member_id":"7","revision":"3"}, "leader":"7", "raftIndex":"9", "raftAppliedIndex":"9"%s}`, learner)
	default:
		http.NotFound(w, r)
	}
}

// counts returns the requests so far, by path.
func (f *fake34) counts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.requests)
}
