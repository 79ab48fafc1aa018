package reconcile

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// healthServer is a fake etcd /health endpoint that counts the connections
// it accepts and holds open, to see how many check connections the
// gateway keeps.
type healthServer struct {
	*httptest.Server
	sick     atomic.Bool
	requests atomic.Int32
	conns    testutil.ConnCounter
}

func newHealthServer(t *testing.T) *healthServer {
	t.Helper()
	h := &healthServer{}
	h.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h.requests.Add(1)
		if h.sick.Load() {
			http.Error(w, `{"health":"false","reason":"RAFT NO LEADER"}`, http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, `{"health":"true","reason":""}`)
	}))
	h.Config.ConnState = h.conns.Hook
	h.Start()
	t.Cleanup(h.Close)
	return h
}

// checkedListeners returns n listeners in front of addrs, checking them
// every 20ms with fall as given.
func checkedListeners(prefix string, n, fall int, addrs []string) []config.Listener {
	var ls []config.Listener
	for i := range n {
		lc := listenerConfig(fmt.Sprintf("%s%d", prefix, i), addrs)
		lc.HealthCheck = config.HealthCheck{Type: "etcd", Interval: 20 * time.Millisecond, Timeout: time.Second, Fall: fall, Rise: 1}
		ls = append(ls, lc)
	}
	return ls
}

// waitVerdict waits until every listener of g says healthy as want of addr.
func waitVerdict(t *testing.T, g *Group, addr string, want bool) {
	t.Helper()
	testutil.WaitFor(t, fmt.Sprintf("%s healthy=%v in every listener", addr, want), 10*time.Second, func() bool {
		for _, st := range g.Status() {
			for _, ep := range st.Endpoints {
				if ep.Endpoint.Addr == addr && ep.Healthy != want {
					return false
				}
			}
		}
		return true
	})
}

// TestListenersShareHealthChecks is issue 13, item 7: 20 listeners in
// front of the same 3 members hold one check connection per member, not
// 20; a verdict change reaches every listener; different check settings
// get their own checker; a listener removed by a reload lets go of its
// checker, which stops when no listener uses it.
func TestListenersShareHealthChecks(t *testing.T) {
	t.Parallel()
	var hs []*healthServer
	var addrs []string
	for range 3 {
		h := newHealthServer(t)
		hs = append(hs, h)
		addrs = append(addrs, h.Listener.Addr().String())
	}
	shared := checkedListeners("shared-", 20, 1, addrs)
	g := startGroup(t, shared...)
	testutil.WaitFor(t, "3 checks of every member", 10*time.Second, func() bool {
		return hs[0].requests.Load() >= 3 && hs[1].requests.Load() >= 3 && hs[2].requests.Load() >= 3
	})
	for i, h := range hs {
		if n := h.conns.Accepted.Load(); n != 1 {
			t.Errorf("member %d: %d check connections for 20 listeners, want 1", i, n)
		}
	}

	hs[0].sick.Store(true)
	waitVerdict(t, g, addrs[0], false)
	hs[0].sick.Store(false)
	waitVerdict(t, g, addrs[0], true)

	// Different check settings: a checker of their own.
	other := checkedListeners("other-", 1, 2, addrs)
	applyListeners(t, g, append(shared, other...)...)
	testutil.WaitFor(t, "the other listener's checks", 10*time.Second, func() bool { return hs[0].conns.Accepted.Load() == 2 })
	// The shared listeners removed: their checker stops.
	applyListeners(t, g, other...)
	testutil.WaitFor(t, "the removed listeners' checker to close its connection", 10*time.Second, func() bool {
		return hs[0].conns.Open.Load() == 1 && hs[1].conns.Open.Load() == 1 && hs[2].conns.Open.Load() == 1
	})
	for i, h := range hs {
		if n := h.conns.Accepted.Load(); n != 2 {
			t.Errorf("member %d: %d check connections accepted in all, want 2", i, n)
		}
	}
}

// applyListeners applies a snapshot of ls to g.
func applyListeners(t *testing.T, g *Group, ls ...config.Listener) {
	t.Helper()
	mustApply(t, g, ls...)
}
