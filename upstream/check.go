package upstream

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// healthPath is the member's own health endpoint, served on its client
// port by every etcd from 3.4 to 3.7 (unless client HTTP is moved to
// --listen-client-http-urls).
const healthPath = "/health"

// maxHealthBody bounds how much of a /health answer is read.
const maxHealthBody = 4 << 10

// checkOnce runs one check of ep within hc.Timeout and returns why it
// failed, or nil.
func (p *Pool) checkOnce(ctx context.Context, hc HealthCheck, ep *Endpoint) error {
	cctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	switch hc.Type {
	case CheckTCP:
		conn, err := p.dial(cctx, "tcp", ep.addr)
		if err != nil {
			return fmt.Errorf("tcp check: connect: %w", err)
		}
		_ = conn.Close()
		return nil
	case CheckEtcd:
		return p.checkEtcd(cctx, ep)
	default:
		return nil
	}
}

// etcdHealth is the answer of etcd's /health: {"health":"true","reason":""}
// (3.4 has no reason).
type etcdHealth struct {
	Health string `json:"health"`
	Reason string `json:"reason"`
}

// checkEtcd asks ep's GET /health, over TLS when the listener has an
// upstream-tls block or ep is a TLS member. Healthy is HTTP 200 with
// {"health":"true"}. A TLS member the check can't talk to (its certificate
// can't be verified, or it demands a client certificate the gateway
// lacks) is checked with a handshake instead (checkHandshake), and logged
// once: marking it down would be for a reason of the gateway's
// configuration, not of the member, and one the operator can't see.
func (p *Pool) checkEtcd(ctx context.Context, ep *Endpoint) error {
	c := p.clients.Load()
	if _, ok := c.fallbacks.Load(ep.addr); ok {
		return p.checkHandshake(ctx, ep)
	}
	err := c.getHealth(ctx, ep)
	reason := c.refusal(ep, err, p.settings.Load().Originate != nil)
	if reason == "" {
		return err
	}
	if _, logged := c.fallbacks.LoadOrStore(ep.addr, reason); !logged {
		p.log.WithFields(logrus.Fields{"endpoint": ep.addr, "error": unwrapURLError(err).Error()}).Warn(reason)
	}
	return p.checkHandshake(ctx, ep)
}

// getHealth sends GET /health to ep and reads the answer.
func (c *checkClients) getHealth(ctx context.Context, ep *Endpoint) error {
	client, scheme := c.forEndpoint(ep)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+ep.addr+healthPath, nil)
	if err != nil {
		return fmt.Errorf("etcd check: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("etcd check: GET %s: %w%s", healthPath, unwrapURLError(err), eofHint(scheme, err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHealthBody))
	if err != nil {
		return fmt.Errorf("etcd check: GET %s: reading the answer: %w", healthPath, err)
	}
	var h etcdHealth
	jsonErr := json.Unmarshal(body, &h)
	switch {
	case resp.StatusCode == http.StatusOK && jsonErr == nil && h.Health == "true":
		return nil
	case jsonErr == nil && h.Health != "":
		return fmt.Errorf("etcd check: GET %s: HTTP %d, health %q, reason %q", healthPath, resp.StatusCode, h.Health, h.Reason)
	default:
		return fmt.Errorf("etcd check: GET %s: HTTP %d: %q%s", healthPath, resp.StatusCode, shorten(body), hint(resp.StatusCode, body))
	}
}

// hint explains the answers of a member the check can't talk to.
func hint(status int, body []byte) string {
	switch {
	case strings.Contains(string(body), "HTTP request to an HTTPS server"):
		return ": the member speaks TLS: give the listener an upstream-tls block"
	case status == http.StatusNotFound:
		return ": this port serves no /health (client HTTP moved to --listen-client-http-urls?): use health-check type tcp"
	}
	return ""
}

// eofHint explains a plain HTTP check that got no answer at all: that is
// how etcd's TLS client port answers plain HTTP.
func eofHint(scheme string, err error) string {
	if scheme == "http" && errors.Is(err, io.EOF) {
		return " (a member serving TLS closes plain HTTP so: list it as https://)"
	}
	return ""
}

func shorten(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// unwrapURLError drops the *url.Error wrapper, which repeats the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// checkClients are the HTTP clients of the etcd check, built for one set
// of TLS settings, and the TLS members they can't check (fallbacks). A new
// set of settings (a reload with a CA, say) gives new clients, which try
// /health on every member again.
type checkClients struct {
	// tls and discoveredTLS are the settings the clients were built from.
	tls, discoveredTLS *tls.Config
	// tlsAddrs are the static endpoints written with https://.
	tlsAddrs []string
	// main talks to every endpoint when tls is set, else to plain ones;
	// discovered talks to the other TLS members: found through
	// _etcd-client-ssl, given as https://, or synced from an https URL.
	main, discovered *http.Client
	// fallbacks maps the address of each TLS member checked with a
	// handshake instead of /health to the sentence logged about it.
	fallbacks sync.Map
}

func newCheckClients(dial DialFunc, s Settings) *checkClients {
	return &checkClients{
		tls:           s.TLS,
		discoveredTLS: s.DiscoveredTLS,
		tlsAddrs:      slices.Clone(s.TLSEndpoints),
		main:          &http.Client{Transport: checkTransport(dial, s.TLS)},
		discovered:    &http.Client{Transport: checkTransport(dial, s.DiscoveredTLS)},
	}
}

// builtFrom reports whether the clients were built from the TLS settings
// of s.
func (c *checkClients) builtFrom(s Settings) bool {
	return c.tls == s.TLS && c.discoveredTLS == s.DiscoveredTLS && slices.Equal(c.tlsAddrs, s.TLSEndpoints)
}

// checkTransport keeps one idle connection per endpoint, so that a check is
// one request, not a connection (and a TLS handshake) every interval. It
// never uses a proxy.
func checkTransport(dial DialFunc, tlsConf *tls.Config) *http.Transport {
	return &http.Transport{
		DialContext:         dial,
		TLSClientConfig:     tlsConf,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
	}
}

// speaksTLS reports whether ep is a TLS member: discovered through
// _etcd-client-ssl, synced from an https URL, or given as https://.
func (c *checkClients) speaksTLS(ep *Endpoint) bool {
	return ep.Record().TLS || slices.Contains(c.tlsAddrs, ep.addr)
}

// forEndpoint returns the client and URL scheme for checking ep.
func (c *checkClients) forEndpoint(ep *Endpoint) (*http.Client, string) {
	switch {
	case c.tls != nil:
		return c.main, "https"
	case c.speaksTLS(ep):
		return c.discovered, "https"
	default:
		return c.main, "http"
	}
}

// closeIdle closes the clients' idle connections.
func (c *checkClients) closeIdle() {
	c.main.CloseIdleConnections()
	c.discovered.CloseIdleConnections()
}

// Why the fallback: the fixes named in the sentence logged.
const (
	fallbackTo      = "so its health check falls back to tcp (a connect and a TLS handshake, no /health)"
	fixClientCert   = "give the listener an upstream-tls block with cert-file and key-file (passthrough: true keeps the clients' TLS end to end), or set health-check: {type: tcp}"
	fixCAUpstream   = "put the CA that signed it in upstream-tls ca-file, or set health-check: {type: tcp}"
	fixCADiscovered = "give the listener the CA that signed it (trusted-ca-file, or an upstream-tls block with ca-file and passthrough: true), or set health-check: {type: tcp}"
)

// refusal returns the sentence to log when err, the etcd check's error,
// says that the TLS member ep refused the check for a reason of the
// gateway's configuration: its certificate can't be verified with the
// configured CA, or it demands a client certificate the gateway lacks. It
// returns "" for any other error, for a plain member, and when the gateway
// originates TLS for its clients (their dials fail the same way, and the
// check must keep saying so).
func (c *checkClients) refusal(ep *Endpoint, err error, originates bool) string {
	if err == nil || originates || (c.tls == nil && !c.speaksTLS(ep)) {
		return ""
	}
	var verr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &verr):
		roots, fix := c.roots()
		return fmt.Sprintf("endpoint %s: its TLS certificate can't be verified with %s, %s; fix: %s", ep.addr, roots, fallbackTo, fix)
	case remoteAlert(err) && !c.hasClientCert():
		return fmt.Sprintf("endpoint %s demands a client certificate and the gateway has none, %s; fix: %s", ep.addr, fallbackTo, fixClientCert)
	}
	return ""
}

// roots names the CAs the TLS members are verified with, and the fix when
// they don't verify one.
func (c *checkClients) roots() (roots, fix string) {
	switch {
	case c.tls != nil && c.tls.RootCAs != nil:
		return "upstream-tls ca-file", fixCAUpstream
	case c.tls != nil:
		return "the system roots (upstream-tls has no ca-file)", fixCAUpstream
	case c.discoveredTLS != nil && c.discoveredTLS.RootCAs != nil:
		return "trusted-ca-file", fixCADiscovered
	default:
		return "the system roots (no trusted-ca-file nor upstream-tls ca-file)", fixCADiscovered
	}
}

// hasClientCert reports whether the check offers a client certificate:
// only an upstream-tls block with cert-file does.
func (c *checkClients) hasClientCert() bool {
	return c.tls != nil && (len(c.tls.Certificates) > 0 || c.tls.GetClientCertificate != nil)
}

// remoteAlert reports whether err is a TLS alert sent by the peer, such as
// "certificate required": the member answered, and refused.
func remoteAlert(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "remote error"
}

// checkHandshake is the check of a TLS member that the etcd check can't
// talk to: a connect and a TLS handshake within the timeout. Unlike a bare
// connect it fails on a frozen member, whose kernel accepts the connection
// but whose TLS stack doesn't answer. The member's certificate is not
// verified (nothing is sent over the connection) and an alert, such as a
// demand for a client certificate, is an answer too.
func (p *Pool) checkHandshake(ctx context.Context, ep *Endpoint) error {
	conn, err := p.dial(ctx, "tcp", ep.addr)
	if err != nil {
		return fmt.Errorf("tcp check (TLS member): connect: %w", err)
	}
	defer conn.Close()
	host, _, _ := net.SplitHostPort(ep.addr)
	tc := tls.Client(conn, &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host, InsecureSkipVerify: true})
	if err := tc.HandshakeContext(ctx); err != nil && !remoteAlert(err) {
		return fmt.Errorf("tcp check (TLS member): TLS handshake: %w", err)
	}
	return nil
}
