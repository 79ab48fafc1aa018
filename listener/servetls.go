package listener

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
)

// handshakeTimeout bounds a client's TLS handshake on a listener with a
// tls block.
const handshakeTimeout = 10 * time.Second

// SetTLS makes the listener serve TLS with conf to the connections it
// accepts from now on; nil serves plain TCP. Open connections keep the
// TLS state they started with.
func (l *Listener) SetTLS(conf *tls.Config) { l.serverTLS.Store(conf) }

// TLS returns the TLS settings new connections are served with; nil for
// plain TCP.
func (l *Listener) TLS() *tls.Config { return l.serverTLS.Load() }

// serveTLS runs the server side of the TLS handshake on the client
// connection of pc when the listener serves TLS, within handshakeTimeout.
// It returns the connection to forward: the TLS connection, or the client
// connection itself for plain TCP. A failed handshake is counted, logged
// at debug level, and closes the client.
func (l *Listener) serveTLS(pc *proxyConn) (net.Conn, bool) {
	conf := l.serverTLS.Load()
	if conf == nil {
		return pc.client, true
	}
	tc := tls.Server(pc.client, conf)
	ctx, cancel := context.WithTimeout(l.ctx, handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		l.counters.tlsFailures.Add(1)
		l.log.WithError(err).WithField("client", pc.client.RemoteAddr().String()).Debug("client TLS handshake failed; closing it")
		_ = pc.client.Close()
		return nil, false
	}
	return tc, true
}

// serverTLS loads the files of a listener's tls block into the TLS
// settings it serves to its clients: TLS 1.2 and later, ALPN h2 (gRPC
// clients over TLS need it), and, with client-ca-file, client
// certificates required and verified. nil when the listener has no tls
// block. Errors are *keyError naming the key of the file at fault.
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
		pool, err = loadCAs(t.ClientCAFile)
		if err != nil {
			return nil, &keyError{"tls.client-ca-file", err}
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return conf, nil
}
