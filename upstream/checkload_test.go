package upstream

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// TestSteadyCheckLoadOn34 is issue 25, item 7, on the /health-only path:
// 20 pools in front of 3 members that serve what etcd 3.4 does (with and
// without the JSON gateway's Status) send each member one /health per
// interval once the first round has learned what the member serves (one
// /readyz, one Status), and nothing else.
func TestSteadyCheckLoadOn34(t *testing.T) {
	for _, noStatus := range []bool{true, false} {
		var fs []*fake34
		var addrs []string
		for range 3 {
			f := newFake34(t, noStatus)
			fs, addrs = append(fs, f), append(addrs, f.addr)
		}
		const interval = 50 * time.Millisecond
		hc := HealthCheck{Type: config.CheckEtcd, Interval: interval, Timeout: time.Second, Fall: 1, Rise: 1}
		sharedPools(t, 20, Settings{HealthCheck: hc}, addrs...)
		testutil.WaitFor(t, "a second round of every member", 10*time.Second, func() bool {
			for _, f := range fs {
				if f.counts()[healthPath] < 2 {
					return false
				}
			}
			return true
		})
		before, start := fs[0].counts(), time.Now()
		testutil.WaitFor(t, "10 more rounds", 10*time.Second, func() bool { return fs[0].counts()[healthPath] >= before[healthPath]+10 })
		rounds := int(time.Since(start)/interval) + 1
		for i, f := range fs {
			got := f.counts()
			if got[readyzPath] != 1 || got[statusPath] != 1 {
				t.Errorf("member %d (Status off: %v): %d /readyz and %d Status, want 1 each (the first round)", i, noStatus, got[readyzPath], got[statusPath])
			}
			if len(got) != 3 {
				t.Errorf("member %d was asked %v, want /health, /readyz and Status only", i, got)
			}
		}
		after := fs[0].counts()
		if n := after[healthPath] - before[healthPath]; n > rounds {
			t.Errorf("Status off: %v: %d /health in %d intervals, want one per interval", noStatus, n, rounds)
		}
	}
}

// countingRelay relays connections to target and counts the HTTP requests
// the clients send: the chunks that start with a method.
type countingRelay struct {
	*testutil.Server
	requests atomic.Int64
}

func newCountingRelay(t *testing.T, target string) *countingRelay {
	r := &countingRelay{}
	r.Server = testutil.Serve(t, func(c net.Conn) {
		up, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer up.Close()
		go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			if bytes.HasPrefix(buf[:n], []byte("GET ")) || bytes.HasPrefix(buf[:n], []byte("POST ")) {
				r.requests.Add(1)
			}
			if _, werr := up.Write(buf[:n]); err != nil || werr != nil {
				return
			}
		}
	})
	return r
}

// TestSteadyCheckLoadOnEtcd is issue 25, item 7, with real members (etcd
// 3.7, which has /readyz): 20 pools in front of 3 members send each one
// request per interval in the steady state, counted by a relay; the
// catch-up's Status (lag-max set) is asked only while a member returns.
func TestSteadyCheckLoadOnEtcd(t *testing.T) {
	c := testutil.Cluster(t, 3)
	var relays []*countingRelay
	var addrs []string
	for _, a := range c.ClientAddrs() {
		r := newCountingRelay(t, a)
		relays, addrs = append(relays, r), append(addrs, r.Addr)
	}
	const interval = 100 * time.Millisecond
	hc := HealthCheck{Type: config.CheckEtcd, Interval: interval, Timeout: time.Second, Fall: 1, Rise: 1, LagMax: 1000}
	sharedPools(t, 20, Settings{HealthCheck: hc}, addrs...)
	testutil.WaitFor(t, "a few rounds of every member", 10*time.Second, func() bool {
		for _, r := range relays {
			if r.requests.Load() < 4 {
				return false
			}
		}
		return true
	})
	var before []int64
	for _, r := range relays {
		before = append(before, r.requests.Load())
	}
	start := time.Now()
	testutil.WaitFor(t, "20 more requests", 20*time.Second, func() bool { return relays[0].requests.Load() >= before[0]+20 })
	rounds := int64(time.Since(start)/interval) + 1
	for i, r := range relays {
		n := r.requests.Load() - before[i]
		t.Logf("member %d: %d requests in %d intervals", i, n, rounds)
		if n > rounds+1 {
			t.Errorf("member %d: %d requests in %d intervals, want one per interval", i, n, rounds)
		}
	}
}
