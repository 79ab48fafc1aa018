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

// Issue returns a server certificate for dnsNames, signed by ca.
func (ca *CA) Issue(dnsNames ...string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlstest: key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial.Add(1)),
		Subject:      pkix.Name{CommonName: dnsNames[0]},
		DNSNames:     dnsNames,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlstest: certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.Cert.Raw}, PrivateKey: key}, nil
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
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Close stops accepting; connections already accepted go on.
func (s *Server) Close() error { return s.ln.Close() }
