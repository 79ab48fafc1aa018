package resolver

import (
	"crypto/tls"
	"net"
	"strconv"
	"testing"

	"github.com/etcd-gateway/etcd-gateway/internal/dnstest"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/internal/tlstest"
)

// tcpServer listens on ip:port (port 0 for any) and writes name to each
// connection, then closes it. It returns the port.
func tcpServer(t *testing.T, ip, name string, port int) int {
	t.Helper()
	return testutil.ServeAt(t, net.JoinHostPort(ip, strconv.Itoa(port)), func(c net.Conn) {
		_, _ = c.Write([]byte(name))
	}).Port()
}

// movingName starts a DNS server that points name at 127.0.0.1, where a
// tcpServer writes before, and a tcpServer on 127.0.0.2, same port, that
// writes after: where the name can move to. It returns the DNS server and
// the port.
func movingName(t *testing.T, name, before, after string) (*dnstest.Server, int) {
	t.Helper()
	d := testutil.DNS(t)
	port := testutil.SharedPort(t, "127.0.0.1", "127.0.0.2")
	tcpServer(t, "127.0.0.1", before, port)
	tcpServer(t, "127.0.0.2", after, port)
	d.SetAddr(name, "127.0.0.1")
	return d, port
}

// refusingPort returns a port of 127.0.0.1 held for the test where
// nothing listens nor can (testutil.RefusingAddr).
func refusingPort(t *testing.T) int {
	t.Helper()
	_, port, err := net.SplitHostPort(testutil.RefusingAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	return n
}

// newCA returns a certificate authority made for the test.
func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	ca, err := tlstest.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{ca}
}

type testCA struct{ *tlstest.CA }

// file writes the CA certificate as PEM and returns the path.
func (ca *testCA) file(t *testing.T) string {
	t.Helper()
	path, err := ca.WriteFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// issue returns a server certificate for dnsNames signed by ca.
func (ca *testCA) issue(t *testing.T, dnsNames ...string) tls.Certificate {
	t.Helper()
	cert, err := ca.Issue(dnsNames...)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// tlsServer runs a loopback TLS server with cert and returns its port.
func tlsServer(t *testing.T, cert tls.Certificate, tweak func(*tls.Config)) int {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	if tweak != nil {
		tweak(cfg)
	}
	s, err := tlstest.Serve(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s.Port
}
