package listener

import (
	"context"
	"crypto/tls"
	"net"
	"time"
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
