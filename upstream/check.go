package upstream

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
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

// checkEtcd asks ep's GET /health, over TLS when the listener has a tls
// block or ep was discovered as a TLS member. Healthy is HTTP 200 with
// {"health":"true"}.
func (p *Pool) checkEtcd(ctx context.Context, ep *Endpoint) error {
	client, scheme := p.clients.Load().forEndpoint(ep)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+ep.addr+healthPath, nil)
	if err != nil {
		return fmt.Errorf("etcd check: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("etcd check: GET %s: %w", healthPath, unwrapURLError(err))
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

// checkClients are the HTTP clients of the etcd check, built for one pair
// of TLS settings.
type checkClients struct {
	// tls and discoveredTLS are the settings the clients were built from.
	tls, discoveredTLS *tls.Config
	// main talks to every endpoint when tls is set, else to plain ones;
	// discovered talks to the endpoints found through _etcd-client-ssl.
	main, discovered *http.Client
}

func newCheckClients(dial DialFunc, tlsConf, discoveredTLS *tls.Config) *checkClients {
	return &checkClients{
		tls:           tlsConf,
		discoveredTLS: discoveredTLS,
		main:          &http.Client{Transport: checkTransport(dial, tlsConf)},
		discovered:    &http.Client{Transport: checkTransport(dial, discoveredTLS)},
	}
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

// forEndpoint returns the client and URL scheme for checking ep.
func (c *checkClients) forEndpoint(ep *Endpoint) (*http.Client, string) {
	switch {
	case c.tls != nil:
		return c.main, "https"
	case ep.Record().TLS:
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
