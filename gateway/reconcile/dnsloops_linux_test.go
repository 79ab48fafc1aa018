package reconcile

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/listener"
)

// The forwarder's loops connect the upstreams of listeners fed by DNS:
// SRV targets and static host names, at their cached addresses.

// hostListener is a listener in front of name:port.
func hostListener(name, host string, port int) config.Listener {
	return listenerConfig(name, []string{net.JoinHostPort(host, strconv.Itoa(port))})
}

// reachedInLoops is reached, and checks that the listener's loops, not a
// goroutine, connected the upstream.
func reachedInLoops(t *testing.T, l *listener.Listener) string {
	t.Helper()
	before := l.LoopDialled()
	name := reached(t, l.Addr().String())
	if name != "" && l.LoopDialled() == before {
		t.Fatalf("listener %s: the upstream of a client was not connected by the loops", l.Name())
	}
	return name
}

// closedAtOnce checks that a client of l is closed without an upstream,
// and returns the reason logged.
func closedAtOnce(t *testing.T, l *listener.Listener, hook *logtest.Hook) string {
	t.Helper()
	c := testutil.Dial(t, l.Addr().String())
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("a client without upstream: read %d, %v; want it closed", n, err)
	}
	var why string
	testutil.WaitFor(t, "the reason to be logged", 5*time.Second, func() bool {
		for _, e := range hook.AllEntries() {
			if err, ok := e.Data["error"].(error); ok && e.Message == "no upstream for client; closing it" {
				why = err.Error()
			}
		}
		return why != ""
	})
	return why
}

// TestSRVAndHostNameListenersServedInTheLoops: an SRV listener and a
// static host-name listener have their upstreams connected by the loops;
// when DNS moves the name, new connections follow it.
func TestSRVAndHostNameListenersServedInTheLoops(t *testing.T) {
	t.Parallel()
	d := testutil.DNS(t)
	port := testutil.SharedPort(t, "127.0.0.1", "127.0.0.2")
	identityServer(t, "127.0.0.1", "old", port)
	identityServer(t, "127.0.0.2", "new", port)
	plainSRV(d, "example.test", "m.example.test", port)
	g, _ := applySRV(t, d, srvListener("srv", "example.test"), hostListener("static", "m.example.test", port))
	for _, name := range []string{"srv", "static"} {
		if got := reachedInLoops(t, g.Listeners()[name]); got != "old" {
			t.Fatalf("%s reached %q, want old", name, got)
		}
	}
	d.SetAddr("m.example.test", "127.0.0.2")
	for _, name := range []string{"srv", "static"} {
		l := g.Listeners()[name]
		testutil.WaitFor(t, name+" to reach the new address", 10*time.Second, func() bool { return reachedInLoops(t, l) == "new" })
	}
}

// TestNameWhoseFirstAddressRefuses: of a name's two addresses, the first
// refuses: clients are connected through the second, by the loops, and
// the endpoint stays up.
func TestNameWhoseFirstAddressRefuses(t *testing.T) {
	t.Parallel()
	d := testutil.DNS(t)
	port := identityServer(t, "127.0.0.3", "second", testutil.SharedPort(t, "127.0.0.2", "127.0.0.3")) // 127.0.0.2 refuses
	d.SetAddr("m.example.test", "127.0.0.2", "127.0.0.3")
	g, _ := applySRV(t, d, hostListener("main", "m.example.test", port))
	l := g.Listeners()["main"]
	for range 3 {
		if got := reachedInLoops(t, l); got != "second" {
			t.Fatalf("reached %q, want second", got)
		}
	}
	if ep := l.Pool().Endpoints()[0]; !ep.Stats().Active || l.Pool().Stats().Failovers != 0 {
		t.Fatalf("endpoint active %v, %d failovers: want it up, no failover", ep.Stats().Active, l.Pool().Stats().Failovers)
	}
}

// TestNameWithNoAddressClosesClientsWithTheReason: a name whose answer
// expired (dns-stale-max, DNS failing) leaves its endpoint without an
// address: clients are closed, the reason logged, the endpoint not
// marked down; a name gone (NXDOMAIN) leaves the pool, its clients are
// closed with the reason too.
func TestNameWithNoAddressClosesClientsWithTheReason(t *testing.T) {
	t.Parallel()
	d := testutil.DNS(t)
	port := identityServer(t, "127.0.0.1", "A", 0)
	d.SetAddr("gone.example.test", "127.0.0.1")
	d.SetAddr("stale.example.test", "127.0.0.1")
	log := testutil.Logger(t)
	hook := logtest.NewLocal(log)
	g := newGroup(t, log)
	g.minRefresh = time.Millisecond
	t.Cleanup(func() { _ = g.Shutdown(context.Background()) })
	snap := &config.Snapshot{ShutdownTimeout: time.Second, DNSServer: d.Addr, DNSStaleMax: 100 * time.Millisecond,
		Listeners: []config.Listener{hostListener("gone", "gone.example.test", port), hostListener("stale", "stale.example.test", port)}}
	if _, err := g.Apply(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	gone, stale := g.Listeners()["gone"], g.Listeners()["stale"]
	for _, l := range []*listener.Listener{gone, stale} {
		if got := reachedInLoops(t, l); got != "A" {
			t.Fatalf("%s reached %q, want A", l.Name(), got)
		}
	}
	ep := stale.Pool().Endpoints()[0]

	d.Delete("gone.example.test")
	testutil.WaitFor(t, "the gone name to leave the pool", 10*time.Second, func() bool { return len(gone.Pool().Endpoints()) == 0 })
	if why := closedAtOnce(t, gone, hook); !strings.Contains(why, "no endpoints") {
		t.Fatalf("reason logged %q, want the pool's emptiness", why)
	}

	hook.Reset()
	d.SetSilent(true)
	testutil.WaitFor(t, "the stale answer to expire", 20*time.Second, func() bool {
		st, _ := g.hosts.Load().State("stale.example.test")
		return st.Expired
	})
	if why := closedAtOnce(t, stale, hook); !strings.Contains(why, "host name has no address") || !strings.Contains(why, "dns-stale-max") {
		t.Fatalf("reason logged %q, want the name's lack of address", why)
	}
	if !ep.Stats().Active || ep.Stats().Removed {
		t.Fatalf("the endpoint of a name without address: active %v, removed %v; want it kept up", ep.Stats().Active, ep.Stats().Removed)
	}
}

// TestPoolWaitingForDNSAtStartIsServedInTheLoops: an SRV listener that
// starts while DNS is down closes its clients with the reason, then,
// once DNS answers, is served by the loops.
func TestPoolWaitingForDNSAtStartIsServedInTheLoops(t *testing.T) {
	t.Parallel()
	d := testutil.DNS(t)
	plainSRV(d, "example.test", "a.example.test", identityServer(t, "127.0.0.1", "A", 0))
	d.Stop()
	g, hook := applySRV(t, d, srvListener("main", "example.test"))
	l := g.Listeners()["main"]
	if why := closedAtOnce(t, l, hook); !strings.Contains(why, "no endpoints yet") {
		t.Fatalf("reason logged %q, want the wait for DNS", why)
	}
	if err := d.Restart(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the listener to serve", 20*time.Second, func() bool { return reachedInLoops(t, l) == "A" })
}
