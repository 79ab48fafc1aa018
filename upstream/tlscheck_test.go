package upstream

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/etcd-gateway/etcd-gateway/internal/tlstest"
	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// These tests run real etcd members serving client TLS, given to the pool
// as static https:// endpoints (Settings.TLSEndpoints), as a listener
// with `endpoints: [https://...]` gives them.

// tlsMember is one etcd member serving client TLS with a certificate of
// its own CA.
type tlsMember struct {
	addr string
	ca   *tlstest.CA
	// client is a client certificate the member accepts.
	client tls.Certificate
}

// startTLSMember starts a one-member cluster serving client TLS; with
// clientCertAuth it demands client certificates (--client-cert-auth).
func startTLSMember(t *testing.T, clientCertAuth bool) tlsMember {
	t.Helper()
	c, e := testutil.TLSCluster(t, 1, clientCertAuth)
	return tlsMember{addr: c.ClientAddrs()[0], ca: e.CA, client: e.Client}
}

// tlsCheckedPool returns a pool over addrs, all given as https://, running
// fast etcd checks, and the hook that sees its log.
func tlsCheckedPool(t *testing.T, s Settings, addrs ...string) (*Pool, *logtest.Hook) {
	t.Helper()
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	s.RetryDelay = time.Hour
	s.TLSEndpoints = addrs
	s.HealthCheck = HealthCheck{Type: config.CheckEtcd, Interval: 100 * time.Millisecond, Timeout: time.Second, Fall: 2, Rise: 1}
	p := NewPool(Options{Settings: s, Policy: ordered{}, Log: log})
	t.Cleanup(p.Close)
	p.UpdateFrom("config", resolver.Static(addrs))
	return p, hook
}

// warnings returns the warning lines of hook that contain substr.
func warnings(hook *logtest.Hook, substr string) []*logrus.Entry {
	var out []*logrus.Entry
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.WarnLevel && strings.Contains(e.Message, substr) {
			out = append(out, e)
		}
	}
	return out
}

// TestHTTPSMemberCheckedOverTLS: an https:// member whose CA is configured
// (trusted-ca-file, or upstream-tls ca-file with passthrough) is checked
// with GET /health over TLS, and found healthy, with no fallback.
func TestHTTPSMemberCheckedOverTLS(t *testing.T) {
	m := startTLSMember(t, false)
	for name, s := range map[string]Settings{
		"trusted-ca-file":                       {DiscoveredTLS: &tls.Config{RootCAs: m.ca.Pool()}},
		"upstream-tls ca-file with passthrough": {TLS: &tls.Config{RootCAs: m.ca.Pool()}},
	} {
		t.Run(name, func(t *testing.T) {
			p, hook := tlsCheckedPool(t, s, m.addr)
			ep := endpoint(p, m.addr)
			testutil.WaitFor(t, "3 passing checks", 10*time.Second, func() bool { return streakOf(ep) >= 3 })
			if ep.check.Load().fellBack.Load() {
				t.Fatal("the check fell back although the CA is configured")
			}
			if w := warnings(hook, ""); len(w) != 0 {
				t.Fatalf("warnings logged: %q", w[0].Message)
			}
		})
	}
}

// TestHTTPSMemberUnverifiedFallsBack: an https:// member whose self-signed
// CA is not configured is checked with a connect and a TLS handshake: it is
// up, one log line says why and what to do, and a frozen member is still
// caught (a bare connect would not catch it: the kernel accepts).
func TestHTTPSMemberUnverifiedFallsBack(t *testing.T) {
	m := startTLSMember(t, false)
	r := newRelay(t, m.addr)
	p, hook := tlsCheckedPool(t, Settings{}, r.addr)
	ep := endpoint(p, r.addr)
	testutil.WaitFor(t, "3 passing checks", 10*time.Second, func() bool { return streakOf(ep) >= 3 })
	if !ep.Up() {
		t.Fatalf("the member is not up: %s", ep.LastCheckError())
	}
	lines := warnings(hook, "falls back to tcp")
	if len(lines) != 1 {
		t.Fatalf("%d fallback lines logged after %d checks, want 1", len(lines), streakOf(ep))
	}
	msg := lines[0].Message
	for _, want := range []string{r.addr, "can't be verified with the system roots", "trusted-ca-file", "health-check: {type: tcp}"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the fallback line %q doesn't say %q", msg, want)
		}
	}

	r.freeze()
	testutil.WaitFor(t, "the frozen member to be marked down", 10*time.Second, func() bool { return !ep.Healthy() })
	if !strings.Contains(ep.LastCheckError(), "TLS handshake") {
		t.Errorf("frozen member's check error %q, want a failed TLS handshake", ep.LastCheckError())
	}
	r.thaw()
	testutil.WaitFor(t, "the thawed member to be marked up", 10*time.Second, ep.Healthy)
	if n := len(warnings(hook, "falls back to tcp")); n != 1 {
		t.Fatalf("%d fallback lines logged in all, want 1", n)
	}
}

// TestClientCertMemberFallsBack: a member with --client-cert-auth, its CA
// configured but no client certificate, is checked with a handshake, and
// the log names the fix; with the certificate it is checked with /health.
func TestClientCertMemberFallsBack(t *testing.T) {
	m := startTLSMember(t, true)
	p, hook := tlsCheckedPool(t, Settings{TLS: &tls.Config{RootCAs: m.ca.Pool()}}, m.addr)
	ep := endpoint(p, m.addr)
	testutil.WaitFor(t, "3 passing checks", 10*time.Second, func() bool { return streakOf(ep) >= 3 })
	lines := warnings(hook, "falls back to tcp")
	if len(lines) != 1 {
		t.Fatalf("%d fallback lines logged, want 1", len(lines))
	}
	for _, want := range []string{"demands a client certificate", "cert-file and key-file", "health-check: {type: tcp}"} {
		if !strings.Contains(lines[0].Message, want) {
			t.Errorf("the fallback line %q doesn't say %q", lines[0].Message, want)
		}
	}

	// A reload that gives the certificate checks /health again.
	s := p.Settings()
	s.TLS = &tls.Config{RootCAs: m.ca.Pool(), Certificates: []tls.Certificate{m.client}}
	p.SetSettings(s)
	c := ep.check.Load()
	n := streakOf(ep)
	testutil.WaitFor(t, "3 more passing checks", 10*time.Second, func() bool { return streakOf(ep) >= n+3 })
	if c.fellBack.Load() {
		t.Fatal("with a client certificate the check still falls back")
	}
}

// TestTLSMemberListedPlainSaysSo: a TLS member listed without https:// is
// checked in plain HTTP, which etcd answers by closing: the check error
// says to list it as https://.
func TestTLSMemberListedPlainSaysSo(t *testing.T) {
	m := startTLSMember(t, false)
	p := checkedPool(t, Settings{HealthCheck: HealthCheck{Type: config.CheckEtcd, Interval: 100 * time.Millisecond, Timeout: time.Second, Fall: 1, Rise: 1}}, m.addr)
	ep := endpoint(p, m.addr)
	testutil.WaitFor(t, "the member to be marked unhealthy", 10*time.Second, func() bool { return !ep.Healthy() })
	if err := ep.LastCheckError(); !strings.Contains(err, "list it as https://") {
		t.Fatalf("check error %q doesn't say to list the member as https://", err)
	}
}
