package resolver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"

	"github.com/miekg/dns"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/etcd-gateway/etcd-gateway/internal/dnstest"
)

// testHosts is a Hosts asking d, refreshing within [1ms, refresh], with
// a log hook and a count of OnChange calls.
type testHosts struct {
	*Hosts
	hook    *logtest.Hook
	changes atomic.Int64
}

func newTestHosts(t *testing.T, d *dnstest.Server, refresh, staleMax time.Duration) *testHosts {
	t.Helper()
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	th := &testHosts{hook: hook}
	th.Hosts = NewHosts(HostsOptions{
		DNSServer: d.Addr, Timeout: 200 * time.Millisecond, Log: log,
		Limits:   HostLimits{Refresh: refresh, MinRefresh: time.Millisecond, StaleMax: staleMax},
		OnChange: func(string) { th.changes.Add(1) },
	})
	t.Cleanup(th.Close)
	return th
}

// logged counts the entries at level whose message contains msg.
func (th *testHosts) logged(level logrus.Level, msg string) int {
	n := 0
	for _, e := range th.hook.AllEntries() {
		if e.Level == level && strings.Contains(e.Message, msg) {
			n++
		}
	}
	return n
}

func (th *testHosts) state(t *testing.T, name string) HostState {
	t.Helper()
	st, ok := th.State(name)
	if !ok {
		t.Fatalf("%s is not tracked", name)
	}
	return st
}

func TestHostsResolveBothFamiliesSorted(t *testing.T) {
	t.Parallel()
	d := testutil.DNS(t)
	d.SetAddr("m.test", "::1", "127.0.0.3", "127.0.0.2")
	th := newTestHosts(t, d, time.Hour, 0)
	st := th.Resolve(context.Background(), []string{"M.test"})[0]
	want := []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("::1")}
	if !slices.Equal(st.Addrs, want) || st.Name != "m.test" || st.TTL != time.Second || st.Pending || st.Failing {
		t.Fatalf("state %+v, want %v with a TTL of 1s", st, want)
	}
}

// TestHostsKeepAddressesThroughDNSTrouble breaks DNS in every way that is
// no answer: each keeps the addresses, dials go on, and the outage is
// logged once however many lookups fail, then its end once.
func TestHostsKeepAddressesThroughDNSTrouble(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		breakDNS, mend func(d *dnstest.Server)
	}{
		{"server stopped", func(d *dnstest.Server) { d.Stop() }, func(d *dnstest.Server) {
			if err := d.Restart(); err != nil {
				t.Fatal(err)
			}
		}},
		{"REFUSED", func(d *dnstest.Server) { d.SetRcode(dns.RcodeRefused) }, func(d *dnstest.Server) { d.SetRcode(dns.RcodeSuccess) }},
		{"SERVFAIL", func(d *dnstest.Server) { d.SetRcode(dns.RcodeServerFailure) }, func(d *dnstest.Server) { d.SetRcode(dns.RcodeSuccess) }},
		{"silent", func(d *dnstest.Server) { d.SetSilent(true) }, func(d *dnstest.Server) { d.SetSilent(false) }},
		{"garbage bytes", func(d *dnstest.Server) { d.SetGarbage(dnstest.RandomBytes) }, func(d *dnstest.Server) { d.SetGarbage(dnstest.NoGarbage) }},
		{"wrong message ID", func(d *dnstest.Server) { d.SetGarbage(dnstest.WrongID) }, func(d *dnstest.Server) { d.SetGarbage(dnstest.NoGarbage) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testutil.DNS(t)
			port := tcpServer(t, "127.0.0.1", "A", 0)
			d.SetAddr("m.test", "127.0.0.1")
			th := newTestHosts(t, d, 5*time.Millisecond, 0)
			th.Resolve(context.Background(), []string{"m.test"})
			base := th.changes.Load() // the first answer is a change
			tc.breakDNS(d)
			testutil.WaitFor(t, "failed lookups", 10*time.Second, func() bool { return th.state(t, "m.test").Failures >= 4 })
			st := th.state(t, "m.test")
			if len(st.Addrs) != 1 || !st.Failing || st.LastError == "" || st.Gone {
				t.Fatalf("state %+v: want the address kept, failing, with the error", st)
			}
			if got := dialName(t, th.Hosts, "m.test", port); got != "A" {
				t.Fatalf("dial during the outage reached %q", got)
			}
			if n := th.logged(logrus.WarnLevel, "DNS lookup failed"); n != 1 {
				t.Fatalf("%d warnings for %d failed lookups, want 1", n, st.Failures)
			}
			if n := th.changes.Load() - base; n != 0 {
				t.Fatalf("OnChange called %d times while nothing changed", n)
			}
			tc.mend(d)
			testutil.WaitFor(t, "the recovery", 10*time.Second, func() bool { return !th.state(t, "m.test").Failing })
			if n := th.logged(logrus.InfoLevel, "DNS lookups succeed again"); n != 1 {
				t.Fatalf("%d recovery lines, want 1", n)
			}
		})
	}
}

func TestHostsNameGoneAndBack(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		remove func(d *dnstest.Server)
	}{
		{"NXDOMAIN", func(d *dnstest.Server) { d.Delete("m.test") }},
		{"no address record", func(d *dnstest.Server) { d.SetAddr("m.test") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testutil.DNS(t)
			d.SetAddr("m.test", "127.0.0.1")
			th := newTestHosts(t, d, 5*time.Millisecond, 0)
			th.Resolve(context.Background(), []string{"m.test"})
			base := th.changes.Load()
			tc.remove(d)
			testutil.WaitFor(t, "the name gone", 10*time.Second, func() bool { return th.state(t, "m.test").Gone })
			if st := th.state(t, "m.test"); len(st.Addrs) != 0 || st.Failing {
				t.Fatalf("state %+v: a name gone has no address and is no failure", st)
			}
			_, err := th.Dial(context.Background(), "tcp", "m.test:1")
			if !errors.Is(err, ErrUnresolved) || !strings.Contains(err.Error(), "NXDOMAIN") {
				t.Fatalf("dial to a name gone: %v", err)
			}
			d.SetAddr("m.test", "127.0.0.2")
			testutil.WaitFor(t, "the name back", 10*time.Second, func() bool { return len(th.state(t, "m.test").Addrs) == 1 })
			if n := th.changes.Load() - base; n != 2 {
				t.Fatalf("OnChange called %d times, want 2 (gone, back)", n)
			}
		})
	}
}

func TestHostsFollowAddressChanges(t *testing.T) {
	t.Parallel()
	d, port := movingName(t, "m.test", "old", "new")
	th := newTestHosts(t, d, time.Hour, 0) // the TTL (1s) sets the pace
	th.Resolve(context.Background(), []string{"m.test"})
	base := th.changes.Load()
	if got := dialName(t, th.Hosts, "m.test", port); got != "old" {
		t.Fatalf("reached %q", got)
	}
	d.SetAddr("m.test", "127.0.0.2")
	testutil.WaitFor(t, "the new address within the TTL", 5*time.Second, func() bool { return dialName(t, th.Hosts, "m.test", port) == "new" })
	if n := th.changes.Load() - base; n != 1 {
		t.Fatalf("OnChange called %d times, want 1", n)
	}
}

func TestHostsTryEveryAddressInOrder(t *testing.T) {
	t.Parallel()
	d := testutil.DNS(t)
	port := tcpServer(t, "127.0.0.3", "third", testutil.SharedPort(t, "127.0.0.2", "127.0.0.3"))
	d.SetAddr("m.test", "127.0.0.2", "127.0.0.3") // nothing on .2
	th := newTestHosts(t, d, time.Hour, 0)
	if got := dialName(t, th.Hosts, "m.test", port); got != "third" {
		t.Fatalf("reached %q, want the second address after the first refused", got)
	}
}

func TestHostsStaleMax(t *testing.T) {
	t.Parallel()
	d := testutil.DNS(t)
	d.SetAddr("m.test", "127.0.0.1")
	th := newTestHosts(t, d, 5*time.Millisecond, 200*time.Millisecond)
	th.Resolve(context.Background(), []string{"m.test"})
	d.SetRcode(dns.RcodeServerFailure)
	testutil.WaitFor(t, "the addresses expired", 10*time.Second, func() bool { return th.state(t, "m.test").Expired })
	st := th.state(t, "m.test")
	if len(st.Addrs) != 0 || time.Since(st.ResolvedAt) < 200*time.Millisecond {
		t.Fatalf("state %+v: expired before dns-stale-max", st)
	}
	if _, err := th.Dial(context.Background(), "tcp", "m.test:1"); !errors.Is(err, ErrUnresolved) || !strings.Contains(err.Error(), "dns-stale-max") {
		t.Fatalf("dial after expiry: %v", err)
	}
	if th.logged(logrus.ErrorLevel, "dns-stale-max") != 1 {
		t.Fatal("the expiry was not logged as an error once")
	}
	d.SetRcode(dns.RcodeSuccess)
	testutil.WaitFor(t, "the addresses back", 10*time.Second, func() bool { return len(th.state(t, "m.test").Addrs) == 1 })
}

func TestHostsDialUnresolvedFailsAtOnce(t *testing.T) {
	t.Parallel()
	d := testutil.DNS(t)
	d.SetSilent(true)
	th := newTestHosts(t, d, time.Hour, 0)
	th.Resolve(context.Background(), []string{"m.test"}) // times out: never resolved
	// The first lookup has ended, so the dial does not wait for DNS: a
	// 50ms context would end first otherwise.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := th.Dial(ctx, "tcp", "m.test:1")
	if !errors.Is(err, ErrUnresolved) || ctx.Err() != nil {
		t.Fatalf("dial to a name never resolved: %v (context: %v)", err, ctx.Err())
	}
}

func TestHostsRetainStopsLookups(t *testing.T) {
	t.Parallel()
	d := testutil.DNS(t)
	d.SetAddr("a.test", "127.0.0.1")
	d.SetAddr("b.test", "127.0.0.1")
	th := newTestHosts(t, d, 5*time.Millisecond, 0)
	th.Resolve(context.Background(), []string{"a.test", "b.test"})
	th.Retain(func(n string) bool { return n == "a.test" })
	if _, ok := th.State("b.test"); ok {
		t.Fatal("b.test is still tracked")
	}
	if got := len(th.States()); got != 1 {
		t.Fatalf("%d names tracked, want 1", got)
	}
}

func TestRefreshDelay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ ttl, floor, ceiling, want time.Duration }{
		{0, time.Second, 30 * time.Second, 30 * time.Second},                 // TTL unknown: the ceiling
		{5 * time.Second, time.Second, 30 * time.Second, 5 * time.Second},    // the TTL
		{time.Hour, time.Second, 30 * time.Second, 30 * time.Second},         // clamped
		{100 * time.Millisecond, time.Second, 30 * time.Second, time.Second}, // the floor
	} {
		for range 100 {
			got := refreshDelay(tc.ttl, tc.floor, tc.ceiling)
			if got > tc.want || got < tc.want-tc.want/10 {
				t.Fatalf("refreshDelay(%v, %v, %v) = %v, want within a tenth below %v", tc.ttl, tc.floor, tc.ceiling, got, tc.want)
			}
		}
	}
	if b := backoff(3, time.Second, 30*time.Second); b > 4*time.Second || b < 3600*time.Millisecond {
		t.Fatalf("backoff after 3 failures: %v, want about 4s", b)
	}
}

// dialName dials name:port through h and returns what the server wrote.
func dialName(t *testing.T, h *Hosts, name string, port int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := h.Dial(ctx, "tcp", net.JoinHostPort(name, strconv.Itoa(port)))
	if err != nil {
		return "dial failed: " + err.Error()
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c)
	return string(b)
}
