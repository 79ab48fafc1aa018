package reconcile

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/tlstest"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// writeCert writes a certificate and its key as PEM files in dir and
// returns their paths.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	ca, err := tlstest.NewCA("etcd-gateway test")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("localhost")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err = tlstest.WriteKeyPair(dir, "cert", cert)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestApplyGivesPoolsTheirHealthSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir)
	lc := listenerConfig("main", []string{"127.0.0.1:1"})
	lc.Policy = config.PolicyLeastConnections
	lc.HealthCheck = config.HealthCheck{Type: config.CheckTCP, Interval: time.Hour, Timeout: time.Second, Fall: 3, Rise: 4, LeaderlessMax: 5 * time.Second, LagMax: 7, SuspectAfter: 300 * time.Millisecond}
	lc.SlowStart = time.Minute
	lc.OnUnhealthy = config.UnhealthyClose
	lc.MemberSync = time.Hour
	lc.UpstreamTLS = config.UpstreamTLS{Enabled: true, CAFile: certFile, CertFile: certFile, KeyFile: keyFile, ServerName: "etcd.example.com"}
	g := startGroup(t, lc)
	pool := g.Listeners()["main"].Pool()

	s := pool.Settings()
	wantHC := upstream.HealthCheck{Type: config.CheckTCP, Interval: time.Hour, Timeout: time.Second, Fall: 3, Rise: 4, LeaderlessMax: 5 * time.Second, LagMax: 7, SuspectAfter: 300 * time.Millisecond}
	if s.Policy != config.PolicyLeastConnections || s.HealthCheck != wantHC || s.OnUnhealthy != config.UnhealthyClose || s.MemberSync != time.Hour || s.SlowStart != time.Minute {
		t.Fatalf("pool settings %+v", s)
	}
	if s.TLS == nil || s.TLS.RootCAs == nil || len(s.TLS.Certificates) != 1 || s.TLS.ServerName != "etcd.example.com" {
		t.Fatalf("pool TLS settings %+v", s.TLS)
	}

	// A reload changes them in place.
	lc.HealthCheck.Type = config.CheckNone
	lc.UpstreamTLS = config.UpstreamTLS{}
	mustApply(t, g, lc)
	if g.Listeners()["main"].Pool() != pool {
		t.Fatal("the reload replaced the pool")
	}
	if s := pool.Settings(); s.HealthCheck.Type != config.CheckNone || s.TLS != nil {
		t.Fatalf("after the reload: type %q, TLS %v", s.HealthCheck.Type, s.TLS)
	}
}

func TestApplyRejectsUnreadableTLSFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, otherKey := writeCert(t, t.TempDir())
	missing := filepath.Join(dir, "missing.pem")

	good := listenerConfig("main", []string{"127.0.0.1:1"})
	g := startGroup(t, good)
	for _, tc := range []struct {
		name string
		tls  config.UpstreamTLS
		srv  string // trusted-ca-file
		want string
	}{
		{"missing ca-file", config.UpstreamTLS{Enabled: true, CAFile: missing}, "", `key "upstream-tls.ca-file": open ` + missing},
		{"ca-file without a certificate", config.UpstreamTLS{Enabled: true, CAFile: notPEM}, "", `key "upstream-tls.ca-file": ` + notPEM + `: no PEM certificate`},
		{"missing cert-file", config.UpstreamTLS{Enabled: true, CertFile: missing, KeyFile: keyFile}, "", `key "upstream-tls.cert-file": open ` + missing},
		{"cert-file that is not a certificate", config.UpstreamTLS{Enabled: true, CertFile: notPEM, KeyFile: keyFile}, "", `key "upstream-tls.cert-file"`},
		{"missing key-file", config.UpstreamTLS{Enabled: true, CertFile: certFile, KeyFile: missing}, "", `key "upstream-tls.key-file": open ` + missing},
		{"key-file of another certificate", config.UpstreamTLS{Enabled: true, CertFile: certFile, KeyFile: otherKey}, "", `key "upstream-tls.key-file": ` + otherKey},
		{"missing trusted-ca-file", config.UpstreamTLS{}, missing, `key "trusted-ca-file": open ` + missing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := good
			bad.UpstreamTLS = tc.tls
			bad.TrustedCAFile = tc.srv
			added := listenerConfig("added", []string{"127.0.0.1:1"})
			_, err := g.Apply(context.Background(), &config.Snapshot{File: "/etc/gw.yaml", ShutdownTimeout: time.Second, Listeners: []config.Listener{bad, added}})
			if err == nil {
				t.Fatal("Apply succeeded")
			}
			if !strings.Contains(err.Error(), `/etc/gw.yaml: listener "main": `+tc.want) {
				t.Fatalf("error %q does not name the file, listener and key: want %q", err, tc.want)
			}
			if _, ok := g.Listeners()["added"]; ok {
				t.Fatal("the rejected snapshot's new listener was started")
			}
			if s := g.Listeners()["main"].Pool().Settings(); s.TLS != nil || s.DiscoveredTLS != nil {
				t.Fatal("the rejected snapshot changed the pool")
			}
		})
	}
}
