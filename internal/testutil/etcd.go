package testutil

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcd-gateway/etcd-gateway/internal/dnstest"
	"github.com/etcd-gateway/etcd-gateway/internal/etcdtest"
	"github.com/etcd-gateway/etcd-gateway/internal/tlstest"
)

// Cluster starts a real etcd cluster of n members for the test and stops
// it at cleanup.
func Cluster(t testing.TB, n int) *etcdtest.Cluster {
	t.Helper()
	c, err := etcdtest.Start(t.TempDir(), n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// ClusterWithOptions is Cluster with options (a backend quota, TLS).
func ClusterWithOptions(t testing.TB, n int, opts etcdtest.Options) *etcdtest.Cluster {
	t.Helper()
	c, err := etcdtest.StartWithOptions(t.TempDir(), n, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TLSCluster is Cluster with every member serving client TLS with a
// loopback certificate of a CA made for the test; with clientCertAuth the
// members demand a client certificate of that CA (--client-cert-auth).
// The Env has the CA, to trust, and a client certificate.
func TLSCluster(t testing.TB, n int, clientCertAuth bool) (*etcdtest.Cluster, *tlstest.Env) {
	t.Helper()
	e, err := tlstest.NewEnv(t.TempDir(), "etcd-ca", "client")
	if err != nil {
		t.Fatal(err)
	}
	opts := &etcdtest.TLS{CertFile: e.CertFile, KeyFile: e.KeyFile, Client: e.ClientTLS()}
	if clientCertAuth {
		opts.ClientCAFile = e.CAFile
	}
	return ClusterWithOptions(t, n, etcdtest.Options{TLS: opts}), e
}

// FillUntilNoSpace writes 8 KiB values through cli until the cluster
// refuses them with NOSPACE, which a tiny backend quota
// (etcdtest.Options.QuotaBackendBytes) makes quick.
func FillUntilNoSpace(t testing.TB, cli *clientv3.Client) {
	t.Helper()
	value := strings.Repeat("x", 8<<10)
	for i := range 1000 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := cli.Put(ctx, fmt.Sprintf("fill-%d", i), value)
		cancel()
		switch {
		case err != nil && strings.Contains(err.Error(), "database space exceeded"):
			return
		case err != nil:
			t.Fatalf("put %d: %v", i, err)
		}
	}
	t.Fatal("1000 puts of 8 KiB and no NOSPACE: is the quota set?")
}

// Client returns an etcd client of addr, closed at cleanup.
func Client(t testing.TB, addr string) *clientv3.Client {
	t.Helper()
	return ClientWith(t, clientv3.Config{Endpoints: []string{addr}})
}

// ClientWith is Client with cfg, for TLS or dial options: a dial timeout
// of 5 s and no log unless cfg says otherwise.
func ClientWith(t testing.TB, cfg clientv3.Config) *clientv3.Client {
	t.Helper()
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	c, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// MemberStatus is the Status the etcd member at addr gives of itself,
// asked on a client of its own.
func MemberStatus(t testing.TB, addr string) *clientv3.StatusResponse {
	t.Helper()
	cli := Client(t, addr)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := cli.Status(ctx, addr)
	if err != nil {
		t.Fatalf("Status of %s: %v", addr, err)
	}
	return st
}

// DNS starts a real DNS server on loopback, closed at cleanup.
func DNS(t testing.TB) *dnstest.Server {
	t.Helper()
	s, err := dnstest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}
