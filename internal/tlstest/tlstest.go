// Package tlstest makes certificate authorities and certificates, and runs
// loopback TLS servers, for the tests. It is never linked into the gateway
// binary.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// CA is a certificate authority that lives for one test.
type CA struct {
	// Cert is the CA's self-signed certificate.
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// serial numbers the certificates it issues.
	serial atomic.Int64
}

// NewCA returns a new self-signed CA named name, valid for an hour.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlstest: CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("tlstest: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tlstest: CA certificate: %w", err)
	}
	ca := &CA{Cert: cert, key: key}
	ca.serial.Store(1)
	return ca, nil
}

// WriteFile writes the CA certificate, as PEM, to ca.pem in dir and
// returns its path, for trusted-ca-file.
func (ca *CA) WriteFile(dir string) (string, error) {
	path := filepath.Join(dir, "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", fmt.Errorf("tlstest: %w", err)
	}
	return path, nil
}

// Pool returns a pool holding only the CA certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Issue returns a server certificate for names, signed by ca. A name that
// is an IP address goes in the certificate's IP addresses, any other in its
// DNS names.
func (ca *CA) Issue(names ...string) (tls.Certificate, error) {
	return ca.issue(names, x509.ExtKeyUsageServerAuth)
}

// IssueClient returns a client certificate named name, signed by ca, for
// mTLS.
func (ca *CA) IssueClient(name string) (tls.Certificate, error) {
	return ca.issue([]string{name}, x509.ExtKeyUsageClientAuth)
}

// issue returns a certificate for names with the extended key usage
// usage, signed by ca. Leaf is set.
func (ca *CA) issue(names []string, usage x509.ExtKeyUsage) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlstest: key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial.Add(1)),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlstest: certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlstest: certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.Cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// WriteKeyPair writes cert (its chain) and its key, as PEM, to NAME.pem
// and NAME-key.pem in dir, and returns their paths. Existing files are
// replaced in place.
func WriteKeyPair(dir, name string, cert tls.Certificate) (certFile, keyFile string, err error) {
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return "", "", fmt.Errorf("tlstest: key: %w", err)
	}
	certFile = filepath.Join(dir, name+".pem")
	keyFile = filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, chain, 0o600); err != nil {
		return "", "", fmt.Errorf("tlstest: %w", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", fmt.Errorf("tlstest: %w", err)
	}
	return certFile, keyFile, nil
}

// Env is a CA with its certificate written to a directory, a server key
// pair for loopback (127.0.0.1, localhost) it signed, written there too,
// and a client certificate it issued.
type Env struct {
	CA *CA
	// CAFile, CertFile and KeyFile are the CA's certificate and the
	// server's key pair, as PEM files.
	CAFile, CertFile, KeyFile string
	// Client is the client certificate.
	Client tls.Certificate
}

// NewEnv makes a CA named caName, writes its certificate and a loopback
// server key pair ("server") to dir, and issues a client certificate
// named client.
func NewEnv(dir, caName, client string) (*Env, error) {
	ca, err := NewCA(caName)
	if err != nil {
		return nil, err
	}
	e := &Env{CA: ca}
	if e.CAFile, err = ca.WriteFile(dir); err != nil {
		return nil, err
	}
	srv, err := ca.Issue("127.0.0.1", "localhost")
	if err != nil {
		return nil, err
	}
	if e.CertFile, e.KeyFile, err = WriteKeyPair(dir, "server", srv); err != nil {
		return nil, err
	}
	if e.Client, err = ca.IssueClient(client); err != nil {
		return nil, err
	}
	return e, nil
}

// ClientTLS is a client configuration that trusts the CA and presents the
// client certificate.
func (e *Env) ClientTLS() *tls.Config {
	return &tls.Config{RootCAs: e.CA.Pool(), Certificates: []tls.Certificate{e.Client}}
}

// Server is a TLS server on 127.0.0.1. After the handshake it writes
// Greeting, then echoes what it reads until the client closes.
type Server struct {
	ln net.Listener
	// Port is the port it listens on.
	Port int
}

// Greeting is what a Server writes to each client after the handshake.
const Greeting = "hello over TLS\n"

// Serve starts a server with cfg, which must hold a certificate.
func Serve(cfg *tls.Config) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("tlstest: %w", err)
	}
	s := &Server{ln: ln, Port: ln.Addr().(*net.TCPAddr).Port}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveConn(tls.Server(c, cfg))
		}
	}()
	return s, nil
}

func serveConn(c *tls.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := c.Handshake(); err != nil {
		return
	}
	if _, err := c.Write([]byte(Greeting)); err != nil {
		return
	}
	// A tls.Conn is neither a WriterTo nor a ReaderFrom: this is a plain
	// read-write loop over buf until EOF or an error.
	_, _ = io.CopyBuffer(c, c, make([]byte, 4096))
}

// Close stops accepting; connections already accepted go on.
func (s *Server) Close() error { return s.ln.Close() }
