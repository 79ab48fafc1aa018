package reconcile

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/etcd-gateway/etcd-gateway/internal/pemfile"

	"github.com/etcd-gateway/etcd-gateway/config"
)

// clientTLS loads the files of a listener's upstream-tls block into the TLS
// settings the gateway talks to the members with; nil when the listener has
// no upstream-tls block. Errors are *config.KeyError naming the key of the file at
// fault.
func clientTLS(t config.UpstreamTLS) (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pool, err := pemfile.CertPool(t.CAFile)
		if err != nil {
			return nil, keyErr("upstream-tls.ca-file", err)
		}
		conf.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := loadKeyPair(t.CertFile, t.KeyFile, "upstream-tls.cert-file", "upstream-tls.key-file")
		if err != nil {
			return nil, err
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

// originateTLS returns the settings the gateway speaks TLS to the members
// with for its clients: those of upstream-tls, offering ALPN h2 (etcd
// serves its client TLS port with h2 only, for gRPC), with a session
// cache so that a new client connection resumes a session.
func originateTLS(conf *tls.Config) *tls.Config {
	c := conf.Clone()
	c.NextProtos = []string{"h2"}
	c.ClientSessionCache = tls.NewLRUClientSessionCache(64)
	return c
}

// discoveryTLS returns the TLS settings for members discovered through
// _etcd-client-ssl: trusted-ca-file as the roots; nil (the system roots)
// when it is not set.
func discoveryTLS(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	pool, err := pemfile.CertPool(caFile)
	if err != nil {
		return nil, keyErr("trusted-ca-file", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
}

// loadKeyPair reads a PEM certificate and its private key, blaming the key
// of the file at fault.
func loadKeyPair(certFile, keyFile, certKey, keyKey string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, keyErr(certKey, err)
	}
	if b, _ := pem.Decode(certPEM); b == nil || b.Type != "CERTIFICATE" {
		return tls.Certificate{}, keyErr(certKey, fmt.Errorf("%s: no PEM certificate in the file", certFile))
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, keyErr(keyKey, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, keyErr(keyKey, fmt.Errorf("%s: %w", keyFile, err))
	}
	return cert, nil
}

// serverTLS loads the files of a listener's tls block into the TLS
// settings it serves to its clients: TLS 1.2 and later, ALPN h2 (gRPC
// clients over TLS need it), and, with client-ca-file, client
// certificates required and verified. nil when the listener has no tls
// block. Errors are *config.KeyError naming the key of the file at fault.
func serverTLS(t config.ListenTLS) (*tls.Config, error) {
	if !t.Enabled() {
		return nil, nil
	}
	cert, err := loadKeyPair(t.CertFile, t.KeyFile, "tls.cert-file", "tls.key-file")
	if err != nil {
		return nil, err
	}
	conf := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2"},
	}
	if t.ClientCAFile != "" {
		var pool *x509.CertPool
		pool, err = pemfile.CertPool(t.ClientCAFile)
		if err != nil {
			return nil, keyErr("tls.client-ca-file", err)
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return conf, nil
}

// keyErr is an error about the value of one key of a listener, whose file
// and listener the caller adds.
func keyErr(key string, err error) error { return &config.KeyError{Key: key, Err: err} }
