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
	"strings"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"

	"github.com/sirupsen/logrus"
)

// healthPath is the member's own health endpoint, served on its client
// port by every etcd from 3.4 to 3.7 (unless client HTTP is moved to
// --listen-client-http-urls).
const healthPath = "/health"

// maxHealthBody bounds how much of a /health answer is read.
const maxHealthBody = 4 << 10

// checkOnce runs one check of the member within timeout and returns why
// it failed, or nil.
func (c *checker) checkOnce(ctx context.Context, timeout time.Duration) error {
	hc := c.key.hc
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch hc.Type {
	case config.CheckTCP:
		conn, err := c.dial(cctx, "tcp", c.key.addr)
		if err != nil {
			return fmt.Errorf("tcp check: connect: %w", err)
		}
		_ = conn.Close()
		return nil
	case config.CheckEtcd:
		return c.checkEtcd(cctx)
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

// checkEtcd asks the member's GET /health, over TLS when the listener has
// an upstream-tls block or the member is a TLS member. Healthy is HTTP 200
// with {"health":"true"}. A TLS member the check can't talk to (its
// certificate can't be verified, or it demands a client certificate the
// gateway lacks) is checked with a handshake instead (checkHandshake), and
// logged once: marking it down would be for a reason of the gateway's
// configuration, not of the member, and one the operator can't see.
func (c *checker) checkEtcd(ctx context.Context) error {
	c.next = c.facts.carried()
	if c.fellBack.Load() {
		return c.checkHandshake(ctx)
	}
	err := c.etcdRound(ctx)
	reason := c.refusal(err)
	if reason == "" {
		return err
	}
	if c.fellBack.CompareAndSwap(false, true) {
		c.log.WithFields(logrus.Fields{"endpoint": c.key.addr, "error": unwrapURLError(err).Error()}).Warn(reason)
	}
	return c.checkHandshake(ctx)
}

// healthAnswer reads etcd's answer to GET path, its /health: nil when
// healthy, else why not.
func healthAnswer(path string, status int, body []byte) error {
	var h etcdHealth
	jsonErr := json.Unmarshal(body, &h)
	switch {
	case status == http.StatusOK && jsonErr == nil && h.Health == "true":
		return nil
	case jsonErr == nil && h.Health != "":
		return fmt.Errorf("etcd check: GET %s: HTTP %d, health %q, reason %q", path, status, h.Health, h.Reason)
	default:
		return fmt.Errorf("etcd check: GET %s: HTTP %d: %q%s", path, status, shorten(body), hint(status, body))
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

// Why the fallback: the fixes named in the sentence logged.
const (
	fallbackTo      = "so its health check falls back to tcp (a connect and a TLS handshake, no /health)"
	fixClientCert   = "give the listener an upstream-tls block with cert-file and key-file (passthrough: true keeps the clients' TLS end to end), or set health-check: {type: tcp}"
	fixCAUpstream   = "put the CA that signed it in upstream-tls ca-file, or set health-check: {type: tcp}"
	fixCADiscovered = "give the listener the CA that signed it (trusted-ca-file, or an upstream-tls block with ca-file and passthrough: true), or set health-check: {type: tcp}"
)

// refusal returns the sentence to log when err, the etcd check's error,
// says that the TLS member refused the check for a reason of the
// gateway's configuration: its certificate can't be verified with the
// configured CA, or it demands a client certificate the gateway lacks. It
// returns "" for any other error, for a plain member, and when the gateway
// originates TLS for its clients (their dials fail the same way, and the
// check must keep saying so).
func (c *checker) refusal(err error) string {
	t := c.key.tls
	if err == nil || c.key.originate || !t.on {
		return ""
	}
	var verr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &verr):
		roots, fix := t.roots()
		return fmt.Sprintf("endpoint %s: its TLS certificate can't be verified with %s, %s; fix: %s", c.key.addr, roots, fallbackTo, fix)
	case remoteAlert(err) && !t.hasClientCert():
		return fmt.Sprintf("endpoint %s demands a client certificate and the gateway has none, %s; fix: %s", c.key.addr, fallbackTo, fixClientCert)
	}
	return ""
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
func (c *checker) checkHandshake(ctx context.Context) error {
	conn, err := c.dial(ctx, "tcp", c.key.addr)
	if err != nil {
		return fmt.Errorf("tcp check (TLS member): connect: %w", err)
	}
	defer conn.Close()
	host, _, _ := net.SplitHostPort(c.key.addr)
	tc := tls.Client(conn, &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host, InsecureSkipVerify: true})
	if err := tc.HandshakeContext(ctx); err != nil && !remoteAlert(err) {
		return fmt.Errorf("tcp check (TLS member): TLS handshake: %w", err)
	}
	return nil
}
