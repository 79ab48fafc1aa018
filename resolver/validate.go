package resolver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"sync"

	"github.com/etcd-gateway/etcd-gateway/internal/pemfile"
)

// validateAll checks every TLS candidate with a TLS handshake, at the same
// time, and returns those that pass; the others are added to res.Dropped.
// Its error is about the trusted CA file, which makes every check moot.
func (s SRV) validateAll(ctx context.Context, candidates []Endpoint, res *Result) ([]Endpoint, error) {
	roots, err := s.roots()
	if err != nil {
		return nil, err
	}
	dial := Dialer(s.DNSServer)
	if s.Hosts != nil {
		dial = s.Hosts.Dial
	}
	errs := make([]error, len(candidates))
	var wg sync.WaitGroup
	for i, ep := range candidates {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.validate(ctx, dial, roots, ep.Addr)
		}()
	}
	wg.Wait()
	var ok []Endpoint
	for i, ep := range candidates {
		if errs[i] != nil {
			res.Dropped = append(res.Dropped, Dropped{Addr: ep.Addr, TLS: ep.TLS, Reason: "TLS validation failed: " + errs[i].Error()})
			continue
		}
		ok = append(ok, ep)
	}
	return ok, nil
}

// roots returns the CA pool of TrustedCAFile, or nil for the system roots.
// The file is read at every resolution, so a replaced CA file is used at
// the next refresh.
func (s SRV) roots() (*x509.CertPool, error) {
	if s.TrustedCAFile == "" {
		return nil, nil
	}
	pool, err := pemfile.CertPool(s.TrustedCAFile)
	if err != nil {
		return nil, fmt.Errorf("trusted-ca-file: %w", err)
	}
	return pool, nil
}

// validate connects to addr and completes a TLS handshake whose server
// certificate must verify against roots for the discovery domain, as etcd
// requires of members found through SRV (the SRV answer and the targets'
// address records are not trusted; the domain the operator named is). A
// handshake that fails only after the server's certificate verified, as
// when a TLS 1.2 member requires a client certificate the gateway does not
// have, passes: the member proved who it is, and clients bring their own
// certificates through the gateway.
func (s SRV) validate(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), roots *x509.CertPool, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	raw, err := dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer raw.Close()
	verified := false
	conn := tls.Client(raw, &tls.Config{
		ServerName: s.domain(),
		RootCAs:    roots,
		MinVersion: tls.VersionTLS12,
		// Called, during the handshake, only once the chain and the name
		// have verified.
		VerifyConnection: func(tls.ConnectionState) error {
			verified = true
			return nil
		},
	})
	if err := conn.HandshakeContext(ctx); err != nil && !verified {
		return fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	_ = conn.Close()
	return nil
}
