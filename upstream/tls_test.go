package upstream

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// clientCert returns a self-signed client certificate.
func clientCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "etcd-gateway"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// newMTLSEtcd is a fakeEtcd over TLS that requires a client certificate
// signed by ca.
func newMTLSEtcd(t *testing.T, ca *x509.Certificate) *fakeEtcd {
	t.Helper()
	f := &fakeEtcd{}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	f.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	f.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	f.StartTLS()
	f.addr = f.Listener.Addr().String()
	t.Cleanup(f.Close)
	return f
}

func rootsOf(f *fakeEtcd) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(f.Certificate())
	return pool
}

// tlsCheckCase is a member over TLS, the settings of a pool in front of
// it, and what the pool's etcd check should find.
type tlsCheckCase struct {
	name        string
	mtls        bool
	discovered  bool // the endpoint came from _etcd-client-ssl
	settings    func(f *fakeEtcd) Settings
	wantHealthy bool
	wantErr     string
}

func TestEtcdCheckOverTLS(t *testing.T) {
	cert := clientCert(t)
	for _, tc := range []tlsCheckCase{
		{"upstream-tls block", false, false, func(f *fakeEtcd) Settings {
			return Settings{TLS: &tls.Config{RootCAs: rootsOf(f)}}
		}, true, ""},
		{"no upstream-tls block: plain HTTP to a TLS port", false, false, func(*fakeEtcd) Settings {
			return Settings{}
		}, false, "give the listener an upstream-tls block"},
		// The gateway originates TLS: its clients' dials fail the same
		// way, so the check must fail too (no fallback).
		{"upstream-tls block with an unknown CA", false, false, func(*fakeEtcd) Settings {
			conf := &tls.Config{RootCAs: x509.NewCertPool()}
			return Settings{TLS: conf, Originate: conf}
		}, false, "certificate"},
		{"discovered through _etcd-client-ssl", false, true, func(f *fakeEtcd) Settings {
			return Settings{DiscoveredTLS: &tls.Config{RootCAs: rootsOf(f)}}
		}, true, ""},
		{"client certificate", true, false, func(f *fakeEtcd) Settings {
			return Settings{TLS: &tls.Config{RootCAs: rootsOf(f), Certificates: []tls.Certificate{cert}}}
		}, true, ""},
		{"client certificate missing", true, false, func(f *fakeEtcd) Settings {
			conf := &tls.Config{RootCAs: rootsOf(f)}
			return Settings{TLS: conf, Originate: conf}
		}, false, "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) { checkOverTLS(t, tc, cert) })
	}
}

// checkOverTLS runs tc: a pool's etcd check of a fake member over TLS,
// whose clients must show cert when tc.mtls.
func checkOverTLS(t *testing.T, tc tlsCheckCase, cert tls.Certificate) {
	var f *fakeEtcd
	if tc.mtls {
		f = newMTLSEtcd(t, cert.Leaf)
	} else {
		f = newFakeEtcd(t, true)
	}
	s := tc.settings(f)
	s.RetryDelay = time.Hour
	s.HealthCheck = HealthCheck{Type: config.CheckEtcd, Interval: 10 * time.Millisecond, Timeout: time.Second, Fall: 1, Rise: 1}
	p := NewPool(Options{Settings: s})
	t.Cleanup(p.Close)
	p.UpdateFrom("config", []resolver.Endpoint{{Addr: f.addr, TLS: tc.discovered}})
	ep := endpoint(p, f.addr)
	testutil.WaitFor(t, "a check result", 5*time.Second, func() bool { return streakOf(ep) != 0 })
	if ep.Healthy() != tc.wantHealthy {
		t.Fatalf("healthy=%v (last error %q), want %v", ep.Healthy(), ep.LastCheckError(), tc.wantHealthy)
	}
	if tc.wantHealthy && f.checks() == 0 {
		t.Fatal("healthy without a /health request")
	}
	if !strings.Contains(ep.LastCheckError(), tc.wantErr) {
		t.Fatalf("LastCheckError = %q, want it to contain %q", ep.LastCheckError(), tc.wantErr)
	}
}
