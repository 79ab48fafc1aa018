package gateway

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"

	"github.com/etcd-gateway/etcd-gateway/internal/tlstest"
)

// serialSeen returns the serial number of the certificate the listener at
// addr serves to a new handshake.
func serialSeen(t *testing.T, addr string, roots *tls.Config) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, roots)
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// health asks GET /health of the member behind c, an open connection, and
// reports whether it answered 200.
func health(t *testing.T, c net.Conn, r *bufio.Reader) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET /health HTTP/1.1\r\nHost: etcd\r\n\r\n"); err != nil {
		t.Fatalf("write on the open connection: %v", err)
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("read on the open connection: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /health: %s", resp.Status)
	}
}

// listenerKeyPair makes a CA and writes a certificate for 127.0.0.1 it
// issued, and its key, in dir, made for them.
func listenerKeyPair(t *testing.T, dir string) (ca *tlstest.CA, cert tls.Certificate, certFile, keyFile string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ca, err := tlstest.NewCA("gateway CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err = ca.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err = tlstest.WriteKeyPair(dir, "gw", cert)
	if err != nil {
		t.Fatal(err)
	}
	return ca, cert, certFile, keyFile
}

// renewKeyPair writes a new certificate of ca over listenerKeyPair's in
// dir, and returns its serial number.
func renewKeyPair(t *testing.T, ca *tlstest.CA, dir string) string {
	t.Helper()
	renewed, err := ca.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tlstest.WriteKeyPair(dir, "gw", renewed); err != nil {
		t.Fatal(err)
	}
	return renewed.Leaf.SerialNumber.String()
}

// TestRenewedListenerCertificateIsPickedUp: a certificate renewed on disk
// under the same name is served to new handshakes without a signal, while
// an open connection goes on; a garbage certificate is rejected naming
// the file, the listener and the key, and the last good one keeps serving.
func TestRenewedListenerCertificateIsPickedUp(t *testing.T) {
	c := testutil.Cluster(t, 1)
	dir := t.TempDir()
	certDir := filepath.Join(dir, "certs")
	ca, first, certFile, keyFile := listenerKeyPair(t, certDir)
	path := filepath.Join(dir, "gw.yaml")
	h := startHarness(t, dir, path, render(listenerSpec{
		name: "secure", addr: testutil.ListenAddr(t), endpoints: c.ClientAddrs(),
		extra: fmt.Sprintf("    tls: {cert-file: %s, key-file: %s}\n", certFile, keyFile),
	}))
	addr := h.addr("secure")
	roots := &tls.Config{RootCAs: ca.Pool()}
	if got := serialSeen(t, addr, roots); got != first.Leaf.SerialNumber.String() {
		t.Fatalf("serial %s, want %s", got, first.Leaf.SerialNumber)
	}
	open, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, roots)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	openR := bufio.NewReader(open)
	health(t, open, openR)

	// Renew: same paths, new certificate.
	want := renewKeyPair(t, ca, certDir)
	testutil.WaitFor(t, "new handshakes to see the renewed certificate", 10*time.Second, func() bool {
		return serialSeen(t, addr, roots) == want
	})
	health(t, open, openR) // the open connection goes on

	// Garbage: rejected, the renewed certificate keeps serving.
	before := h.gw.Stats().Rejected
	if err := os.WriteFile(certFile, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the garbage certificate to be rejected", 10*time.Second, func() bool { return h.gw.Stats().Rejected > before })
	st := h.gw.Stats()
	for _, part := range []string{path, `listener "secure"`, `key "tls.cert-file"`, certFile} {
		if !strings.Contains(st.LastError, part) {
			t.Errorf("the rejection %q does not name %s", st.LastError, part)
		}
	}
	if got := serialSeen(t, addr, roots); got != want {
		t.Fatalf("after the garbage: serial %s, want the renewed %s", got, want)
	}
	health(t, open, openR)
}
