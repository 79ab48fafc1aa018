package reconcile

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/etcdtest"
	"github.com/etcd-gateway/etcd-gateway/internal/tlstest"
)

// tlsEnv is a CA with its files: a server certificate for 127.0.0.1 and a
// client certificate, as PEM files in dir.
type tlsEnv struct {
	ca                 *tlstest.CA
	dir                string
	caFile             string
	serverCert         string
	serverKey          string
	clientCert         string
	clientKey          string
	client             tls.Certificate
	clientTLS, anonTLS *tls.Config
}

func newTLSEnv(t *testing.T, name string) *tlsEnv {
	t.Helper()
	e := &tlsEnv{dir: t.TempDir()}
	env, err := tlstest.NewEnv(e.dir, name, "client")
	if err != nil {
		t.Fatal(err)
	}
	e.ca, e.caFile, e.serverCert, e.serverKey, e.client = env.CA, env.CAFile, env.CertFile, env.KeyFile, env.Client
	if e.clientCert, e.clientKey, err = tlstest.WriteKeyPair(e.dir, "client", e.client); err != nil {
		t.Fatal(err)
	}
	e.clientTLS = env.ClientTLS()
	e.anonTLS = &tls.Config{RootCAs: e.ca.Pool(), NextProtos: []string{"h2"}}
	return e
}

// startTLSCluster starts n members serving client TLS with client-cert-auth.
func startTLSCluster(t *testing.T, e *tlsEnv, n int) *etcdtest.Cluster {
	t.Helper()
	c, err := etcdtest.StartWithOptions(filepath.Join(t.TempDir(), "etcd"), n, etcdtest.Options{TLS: &etcdtest.TLS{
		CertFile: e.serverCert, KeyFile: e.serverKey, ClientCAFile: e.caFile, Client: e.clientTLS,
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// upstreamTLS is the upstream-tls block that reaches the members of e with
// the gateway's client certificate.
func (e *tlsEnv) upstreamTLS() config.UpstreamTLS {
	return config.UpstreamTLS{Enabled: true, CAFile: e.caFile, CertFile: e.clientCert, KeyFile: e.clientKey}
}

// putGetWatch checks that cli can put, get and watch.
func putGetWatch(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	ctx := ctxTimeout(t, 15*time.Second)
	wch := cli.Watch(ctx, "tls-key")
	putThenGet(t, ctx, cli, "tls-key", "v1")
	select {
	case w := <-wch:
		if err := w.Err(); err != nil || len(w.Events) == 0 || string(w.Events[0].Kv.Value) != "v1" {
			t.Fatalf("watch: %+v %v", w, err)
		}
	case <-ctx.Done():
		t.Fatal("no watch event")
	}
}

// upstreamTLSListener starts a one-member cluster that requires client
// certificates and returns its TLS environment and a listener "main" in
// front of it with upstream-tls.
func upstreamTLSListener(t *testing.T) (*tlsEnv, config.Listener) {
	t.Helper()
	e := newTLSEnv(t, "etcd CA")
	c := startTLSCluster(t, e, 1)
	lc := listenerConfig("main", c.ClientAddrs())
	lc.UpstreamTLS = e.upstreamTLS()
	return e, lc
}

// TestUpstreamTLSOriginatesForPlainClients: a client without any
// certificate, speaking plain TCP to the gateway, reaches members that
// require client certificates, through upstream-tls.
func TestUpstreamTLSOriginatesForPlainClients(t *testing.T) {
	t.Parallel()
	_, lc := upstreamTLSListener(t)
	g := startGroup(t, lc)
	putGetWatch(t, testutil.Client(t, gatewayAddr(t, g, "main")))

	// With passthrough, the same plain client's bytes reach the TLS port
	// untouched, and fail.
	lc.UpstreamTLS.Passthrough = true
	mustApply(t, g, lc)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{gatewayAddr(t, g, "main")}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err == nil {
		t.Fatal("a plain client got through a passthrough listener to a TLS member")
	}
}

// TestUpstreamTLSFailsOverPastMemberWithWrongCA: a member whose
// certificate doesn't verify is a failed dial: marked down, and the client
// goes to the member that verifies.
func TestUpstreamTLSFailsOverPastMemberWithWrongCA(t *testing.T) {
	t.Parallel()
	e := newTLSEnv(t, "etcd CA")
	c := startTLSCluster(t, e, 1)
	other, err := tlstest.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := other.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	impostor, err := tlstest.Serve(&tls.Config{Certificates: []tls.Certificate{wrong}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = impostor.Close() })
	bad := net.JoinHostPort("127.0.0.1", strconv.Itoa(impostor.Port))

	lc := listenerConfig("main", []string{bad, c.ClientAddrs()[0]})
	lc.Policy = config.PolicyRoundRobin
	lc.UpstreamTLS = e.upstreamTLS()
	g := startGroup(t, lc)
	pool := g.Listeners()["main"].Pool()
	for range 2 { // round-robin: one of the two dials picks the impostor first
		conn, ep, err := pool.Dial(ctxTimeout(t, 5*time.Second))
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		_ = conn.Close()
		if ep.Addr() != c.ClientAddrs()[0] {
			t.Fatalf("dial reached %s, want the member %s", ep.Addr(), c.ClientAddrs()[0])
		}
		if _, ok := conn.(*tls.Conn); !ok {
			t.Fatalf("dial returned %T, want a *tls.Conn", conn)
		}
	}
	if endpointOf(g, "main", bad).Stats().Active {
		t.Fatal("the member whose certificate doesn't verify is still active")
	}
	if pool.Stats().Failovers == 0 {
		t.Fatal("no failover counted")
	}
	putGetWatch(t, testutil.Client(t, gatewayAddr(t, g, "main")))
}

// TestListenTLSRequiresClientCertificates: a listener with tls and
// client-ca-file, in front of TLS members (TLS in, TLS out), serves a
// clientv3 with a client certificate, and refuses a TLS client without one
// and a plain TCP client.
func TestListenTLSRequiresClientCertificates(t *testing.T) {
	t.Parallel()
	e, lc := upstreamTLSListener(t)
	lc.TLS = config.ListenTLS{CertFile: e.serverCert, KeyFile: e.serverKey, ClientCAFile: e.caFile}
	g := startGroup(t, lc)
	addr := gatewayAddr(t, g, "main")

	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, DialTimeout: 5 * time.Second, TLS: e.clientTLS, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	putGetWatch(t, cli)

	// A TLS client without a certificate: the handshake fails (with TLS
	// 1.3 the client learns it at its first read).
	conn, err := tls.Dial("tcp", addr, e.anonTLS)
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
		if err == nil {
			_, err = conn.Read(make([]byte, 1))
		}
		_ = conn.Close()
	}
	if err == nil {
		t.Fatal("a TLS client without a certificate got an answer")
	}

	// Plain TCP gets nothing from the members: at most a TLS alert, then
	// the connection is closed.
	pc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	_ = pc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := pc.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(pc)
	if err != nil && !isReset(err) {
		t.Fatalf("plain TCP: %v (read %q), want the connection closed", err, got)
	}
	if len(got) > 0 && got[0] != 0x15 { // 0x15: a TLS alert record
		t.Fatalf("plain TCP got %q, want nothing but a TLS alert", got)
	}
	testutil.WaitFor(t, "handshake failures counted", 5*time.Second, func() bool {
		return g.Listeners()["main"].Counters().TLSHandshakeFailures >= 2
	})
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne)
}
