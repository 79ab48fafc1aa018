package config

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Describe writes a human-readable description of the snapshot to w, as
// `etcd-gateway check` prints it: the global settings, then each listener
// in order with its address, its endpoints or SRV domain, and every
// setting. The output is stable: the same snapshot gives the same text.
// Write errors are ignored; w is expected to be a terminal or a buffer.
func (s *Snapshot) Describe(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(key, format string, args ...any) {
		fmt.Fprintf(tw, "  %s\t%s\n", key, fmt.Sprintf(format, args...))
	}

	if s.File != "" {
		fmt.Fprintf(tw, "config file %s\n", s.File)
	} else {
		fmt.Fprintf(tw, "config from command-line flags\n")
	}
	row("log-level", "%s", s.LogLevel)
	row("log-format", "%s", s.LogFormat)
	row("shutdown-timeout", "%s", fmtDuration(s.ShutdownTimeout))
	if s.DNSStaleMax > 0 {
		row("dns-stale-max", "%s", fmtDuration(s.DNSStaleMax))
	}
	if s.DNSServer != "" {
		row("dns-server", "%s", s.DNSServer)
	} else {
		row("dns-server", "system resolver")
	}
	switch {
	case s.AdminAddr == "":
		row("admin-addr", "off (no /metrics, /healthz, /status)")
	case !isLoopback(s.AdminAddr):
		row("admin-addr", "%s (not loopback: reachable from other hosts)", s.AdminAddr)
	default:
		row("admin-addr", "%s", s.AdminAddr)
	}
	if s.AdminAddr != "" {
		row("admin-pprof", "%t", s.AdminPprof)
	}
	fmt.Fprintf(tw, "%d listener%s\n", len(s.Listeners), plural(len(s.Listeners)))

	for _, l := range s.Listeners {
		fmt.Fprintf(tw, "\nlistener %q\n", l.Name)
		row("listen-addr", "%s", l.ListenAddr)
		if l.DiscoverySRV != "" {
			row("discovery-srv", "%s", l.DiscoverySRV)
			if l.DiscoverySRVName != "" {
				row("discovery-srv-name", "%s", l.DiscoverySRVName)
			}
			tlsName, plainName := srvNames(l.DiscoverySRV, l.DiscoverySRVName)
			row("srv-records", "%s (TLS), %s (plain)", tlsName, plainName)
			row("insecure-discovery", "%t", l.InsecureDiscovery)
			if l.TrustedCAFile != "" {
				row("trusted-ca-file", "%s", l.TrustedCAFile)
			} else {
				row("trusted-ca-file", "none (system roots)")
			}
			row("dns-refresh", "%s", fmtDuration(l.DNSRefresh))
		} else {
			for i, ep := range l.Endpoints {
				key := ""
				if i == 0 {
					key = fmt.Sprintf("endpoints (%d)", len(l.Endpoints))
				}
				if slices.Contains(l.TLSEndpoints, ep) {
					ep = "https://" + ep + " (TLS)"
				}
				row(key, "%s", ep)
			}
			row("dns-refresh", "%s (used by discovery-srv only)", fmtDuration(l.DNSRefresh))
		}
		if l.HealthCheck.Type == CheckNone {
			row("retry-delay", "%s", fmtDuration(l.RetryDelay))
		} else {
			row("retry-delay", "%s (unused: health checks bring endpoints back)", fmtDuration(l.RetryDelay))
		}
		row("dial-timeout", "%s", fmtDuration(l.DialTimeout))
		row("on-endpoint-removed", "%s", l.OnEndpointRemoved)
		if l.OnEndpointRemoved == RemovedDrain {
			row("drain-timeout", "%s", fmtDuration(l.DrainTimeout))
		} else {
			row("drain-timeout", "%s (used by on-endpoint-removed: drain only)", fmtDuration(l.DrainTimeout))
		}
		if l.MaxConnections > 0 {
			row("max-connections", "%d", l.MaxConnections)
		} else {
			row("max-connections", "no limit")
		}
		if l.IdleTimeout > 0 {
			row("idle-timeout", "%s", fmtDuration(l.IdleTimeout))
		} else {
			row("idle-timeout", "off")
		}
		row("keepalive", "%s", fmtDuration(l.KeepAlive))
		row("policy", "%s", l.Policy)
		describeHealth(row, l)
		if note := tlsCheckNote(l); note != "" {
			row("note", "%s", note)
		}
		describeTLS(row, l)
	}
	_ = tw.Flush()
}

// describeHealth writes the health-check, on-unhealthy and member-sync
// rows of a listener.
func describeHealth(row func(key, format string, args ...any), l Listener) {
	h := l.HealthCheck
	unused := ""
	switch h.Type {
	case CheckNone:
		row(keyCheckType, "none (only failed dials take an endpoint out; retry-delay brings it back)")
		unused = " (unused with type none)"
	case CheckTCP:
		row(keyCheckType, "tcp (a connect within the timeout)")
	case CheckEtcd:
		row(keyCheckType, "etcd (GET /health on the client port)")
	}
	row(keyCheckInterval, "%s%s", fmtDuration(h.Interval), unused)
	row(keyCheckTimeout, "%s%s", fmtDuration(h.Timeout), unused)
	row(keyCheckFall, "%d%s", h.Fall, unused)
	row(keyCheckRise, "%d%s", h.Rise, unused)
	if h.Type == CheckNone {
		row(keyOnUnhealthy, "%s%s", l.OnUnhealthy, unused)
	} else {
		row(keyOnUnhealthy, "%s", l.OnUnhealthy)
	}
	if l.MemberSync > 0 {
		row(keyMemberSync, "every %s", fmtDuration(l.MemberSync))
	} else {
		row(keyMemberSync, "off")
	}
}

// tlsCheckNote returns the sentence that warns that the etcd health check
// may fall back to tcp for TLS members: when no CA is configured to
// verify them (only the system roots), or no client certificate for
// members that demand one. "" when it can't happen: no TLS member, another
// check type, or the gateway originates TLS for its clients (then a
// failed handshake fails their dials, and the check says so).
func tlsCheckNote(l Listener) string {
	up := l.UpstreamTLS
	if l.HealthCheck.Type != CheckEtcd || up.Originates() {
		return ""
	}
	members := "the members"
	switch {
	case up.Enabled:
	case len(l.TLSEndpoints) > 0:
		members = "the https:// members"
	case l.DiscoverySRV != "":
		members = "the members found through _etcd-client-ssl"
	default:
		return ""
	}
	noCA := (up.Enabled && up.CAFile == "") || (!up.Enabled && l.TrustedCAFile == "")
	noCert := up.CertFile == ""
	const then = "is health-checked with tcp instead (a connect and a TLS handshake, no /health), and the log says so"
	const certFix = "an upstream-tls block with cert-file and key-file (passthrough: true keeps the clients' TLS end to end)"
	caFix := "their CA (trusted-ca-file, or an upstream-tls block with ca-file and passthrough: true)"
	if up.Enabled {
		caFix = "their CA in upstream-tls ca-file"
	}
	switch {
	case noCA && noCert:
		return fmt.Sprintf("%s are verified with the system roots only, and offered no client certificate: one whose certificate they don't verify, or that demands a client certificate, %s; "+
			"fix: give the listener %s and, for members with --client-cert-auth, %s, or set health-check: {type: tcp}", members, then, caFix, certFix)
	case noCA:
		return fmt.Sprintf("%s are verified with the system roots only: one whose certificate they don't verify %s; fix: give the listener %s, or set health-check: {type: tcp}", members, then, caFix)
	case noCert:
		return fmt.Sprintf("%s are offered no client certificate: one that demands one (--client-cert-auth) %s; fix: give the listener %s, or set health-check: {type: tcp}", members, then, certFix)
	}
	return ""
}

// describeTLS writes the upstream-tls and tls rows of a listener.
func describeTLS(row func(key, format string, args ...any), l Listener) {
	orNone := func(s, none string) string {
		if s == "" {
			return none
		}
		return s
	}
	t := l.UpstreamTLS
	switch {
	case !t.Enabled:
		row(keyUpstreamTLS, "none (plain TCP to the members, except those discovered through _etcd-client-ssl; client bytes passed through)")
	default:
		row(keyUpCAFile, "%s", orNone(t.CAFile, "none (system roots)"))
		row(keyUpCertFile, "%s", orNone(t.CertFile, "none (no client certificate)"))
		row(keyUpKeyFile, "%s", orNone(t.KeyFile, "none"))
		row(keyUpServerName, "%s", orNone(t.ServerName, "none (each endpoint's host)"))
		if t.Passthrough {
			row(keyUpPassthrough, "true (client bytes passed through; TLS for health checks and member sync only)")
		} else {
			row(keyUpPassthrough, "false (the gateway speaks TLS to the members for its clients)")
		}
	}
	lt := l.TLS
	if !lt.Enabled() {
		row(keyTLS, "none (clients speak plain TCP to the listener)")
		return
	}
	row(keyTLSCertFile, "%s", lt.CertFile)
	row(keyTLSKeyFile, "%s", lt.KeyFile)
	row(keyTLSClientCA, "%s", orNone(lt.ClientCAFile, "none (no client certificate asked)"))
}

// srvNames returns the SRV names queried for a domain: the TLS one
// (_etcd-client-ssl) and the plain one (_etcd-client), with the optional
// service name suffix.
func srvNames(domain, name string) (tlsName, plainName string) {
	suffix := ""
	if name != "" {
		suffix = "-" + name
	}
	domain = strings.TrimSuffix(domain, ".")
	return "_etcd-client-ssl" + suffix + "._tcp." + domain, "_etcd-client" + suffix + "._tcp." + domain
}

// fmtDuration formats d without trailing zero units: "1m", not "1m0s".
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// isLoopback reports whether the host of addr, a valid host:port, is a
// loopback address or "localhost". An empty host (every address) is not.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
