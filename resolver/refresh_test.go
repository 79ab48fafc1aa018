package resolver

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"

	"github.com/miekg/dns"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/etcd-gateway/etcd-gateway/internal/dnstest"
)

// refresher runs a Refresher of s every 10ms from the first resolution and
// records the sets it hands over.
type refresher struct {
	hook *logtest.Hook
	mu   sync.Mutex
	sets [][]Endpoint
}

func runRefresher(t *testing.T, s SRV) *refresher {
	t.Helper()
	return runRefresherCounting(t, s, nil)
}

// runRefresherCounting is runRefresher with lookup counters.
func runRefresherCounting(t *testing.T, s SRV, counters *LookupCounters) *refresher {
	t.Helper()
	first, err := resolve(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if counters != nil {
		counters.Record(first, nil)
	}
	log, hook := logtest.NewNullLogger()
	r := &refresher{hook: hook}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Refresher{SRV: s, Interval: 10 * time.Millisecond, MinInterval: time.Millisecond, Log: log, Counters: counters, Update: func(eps []Endpoint) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.sets = append(r.sets, eps)
		}}.Run(ctx, first)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return r
}

func (r *refresher) updates() [][]Endpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sets)
}

// warnings counts the warnings logged so far whose message contains msg.
func (r *refresher) warnings(msg string) int {
	n := 0
	for _, e := range r.hook.AllEntries() {
		if e.Level == logrus.WarnLevel && strings.Contains(e.Message, msg) {
			n++
		}
	}
	return n
}

// plainSRV is insecure SRV discovery of example.test through a new DNS
// server, whose plain record points at a.example.test:2379.
func plainSRV(t *testing.T) (*dnstest.Server, SRV) {
	t.Helper()
	d := testutil.DNS(t)
	s := SRV{Domain: "example.test", Insecure: true, DNSServer: d.Addr, Timeout: time.Second}
	_, plainName := s.Names()
	d.SetSRV(plainName, dnstest.SRV{Port: 2379, Target: "a.example.test"})
	return d, s
}

func TestRefreshFollowsRecordChanges(t *testing.T) {
	t.Parallel()
	d, s := plainSRV(t)
	_, plainName := s.Names()
	r := runRefresher(t, s)

	d.SetSRV(plainName, dnstest.SRV{Port: 2379, Target: "b.example.test"}, dnstest.SRV{Priority: 1, Port: 2379, Target: "c.example.test"})
	testutil.WaitFor(t, "the new set", 5*time.Second, func() bool { return len(r.updates()) > 0 })
	got := r.updates()[0]
	if want := []string{"b.example.test:2379", "c.example.test:2379"}; !slices.Equal(addrs(got), want) || got[1].Priority != 1 {
		t.Fatalf("update %+v, want %q with c at priority 1", got, want)
	}
	// An unchanged answer is not handed over again.
	q := d.Queries()
	testutil.WaitFor(t, "more refreshes", 5*time.Second, func() bool { return d.Queries() > q+6 })
	if n := len(r.updates()); n != 1 {
		t.Fatalf("%d updates for one change", n)
	}
}

func TestRefreshKeepsLastGoodSet(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		breakDNS func(d *dnstest.Server, names ...string)
	}{
		{"server stopped", func(d *dnstest.Server, _ ...string) { d.Stop() }},
		{"SERVFAIL", func(d *dnstest.Server, _ ...string) { d.SetRcode(dns.RcodeServerFailure) }},
		{"empty answer", func(d *dnstest.Server, names ...string) {
			for _, n := range names {
				d.SetSRV(n)
			}
		}},
		{"NXDOMAIN", func(d *dnstest.Server, names ...string) {
			for _, n := range names {
				d.Delete(n)
			}
		}},
		{"garbage bytes", func(d *dnstest.Server, _ ...string) { d.SetGarbage(dnstest.RandomBytes) }},
		{"answer with the wrong message ID", func(d *dnstest.Server, _ ...string) { d.SetGarbage(dnstest.WrongID) }},
		{"A records for an SRV query", func(d *dnstest.Server, _ ...string) { d.SetGarbage(dnstest.WrongType) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testutil.DNS(t)
			s := SRV{Domain: "example.test", Insecure: true, DNSServer: d.Addr, Timeout: 200 * time.Millisecond}
			tlsName, plainName := s.Names()
			d.SetSRV(plainName, dnstest.SRV{Port: 2379, Target: "a.example.test"})
			var counters LookupCounters
			r := runRefresherCounting(t, s, &counters)
			tc.breakDNS(d, tlsName, plainName)
			testutil.WaitFor(t, "failed refreshes", 10*time.Second, func() bool { return counters.Failed() >= 4 })
			if u := r.updates(); len(u) != 0 {
				t.Fatalf("the set was replaced by %+v", u)
			}
			// The first failure is logged, not every one (then once a minute).
			if n := r.warnings("keeping the last good endpoints"); n != 1 {
				t.Fatalf("%d warnings for %d failed refreshes, want 1", n, counters.Failed())
			}
			if st := counters.State(); !st.Failing || st.LastError == "" || st.ResolvedAt.IsZero() {
				t.Fatalf("state %+v: want failing, with the error and the last good resolution's time", st)
			}
		})
	}
}

func TestRefreshKeepsTheEndpointsOfANameThatFailed(t *testing.T) {
	t.Parallel()
	d, s := plainSRV(t)
	tlsName, plainName := s.Names()
	d.SetSRV(tlsName, dnstest.SRV{Port: 2379, Target: "t.example.test"})
	r := runRefresher(t, s)

	d.SetRcode(dns.RcodeServerFailure, tlsName)
	d.SetSRV(plainName, dnstest.SRV{Port: 2379, Target: "b.example.test"})
	testutil.WaitFor(t, "the new set", 5*time.Second, func() bool { return len(r.updates()) > 0 })
	if got, want := addrs(r.updates()[0]), []string{"b.example.test:2379", "t.example.test:2379"}; !slices.Equal(got, want) {
		t.Fatalf("update %q, want %q: the failed name's endpoints kept, the other name's replaced", got, want)
	}
}

func TestRefreshWarnsOnceAboutTheSameDrop(t *testing.T) {
	t.Parallel()
	d := testutil.DNS(t)
	s := SRV{Domain: "example.test", DNSServer: d.Addr, Timeout: time.Second}
	tlsName, plainName := s.Names()
	ca := newCA(t, "test CA")
	s.TrustedCAFile = ca.file(t)
	d.SetAddr("good.example.test", "127.0.0.1")
	d.SetSRV(tlsName, dnstest.SRV{Port: uint16(tlsServer(t, ca.issue(t, "example.test"), nil)), Target: "good.example.test"})
	r := runRefresher(t, s)
	d.SetSRV(plainName, dnstest.SRV{Port: 2379, Target: "plain.example.test"})
	q := d.Queries()
	testutil.WaitFor(t, "several refreshes", 5*time.Second, func() bool { return d.Queries() > q+10 })
	if n := r.warnings("dropped"); n != 1 {
		t.Fatalf("%d warnings for one record dropped at every refresh, want 1", n)
	}
}
