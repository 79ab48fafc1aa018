package config

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"reflect"
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
	d := describer{tw}
	if s.File != "" {
		fmt.Fprintf(tw, "config file %s\n", s.File)
	} else {
		fmt.Fprintf(tw, "config from command-line flags\n")
	}
	top := reflect.ValueOf(s)
	d.show(top, keyLogLevel, "")
	d.show(top, keyLogFormat, "")
	d.show(top, keyShutdownTimeout, "")
	if s.DNSStaleMax > 0 {
		d.show(top, keyDNSStaleMax, "")
	}
	d.show(top, keyDNSServer, "")
	d.show(top, keyAdminAddr, noteIf(s.AdminAddr != "" && !IsLoopback(s.AdminAddr), " (not loopback: reachable from other hosts)"))
	if s.AdminAddr != "" {
		d.show(top, keyAdminPprof, "")
	}
	for _, k := range []string{keyUpgradeSocket, keyControlSocket, keyControlGroup} {
		if !fieldOf(top, specOf(k).field).IsZero() {
			d.show(top, k, "")
		}
	}
	fmt.Fprintf(tw, "%d listener%s\n", len(s.Listeners), plural(len(s.Listeners)))
	for _, l := range s.Listeners {
		d.listener(l)
	}
	_ = tw.Flush()
}

// describer writes the rows of Describe.
type describer struct{ w io.Writer }

// row writes one row: the key, and its value.
func (d describer) row(key, format string, args ...any) {
	fmt.Fprintf(d.w, "  %s\t%s\n", key, fmt.Sprintf(format, args...))
}

// show writes the row of key with the value root (a *Snapshot or a
// *Listener) holds, as the schema shows it, followed by note.
func (d describer) show(root reflect.Value, key, note string) {
	sp := specOf(key)
	f := fieldOf(root, sp.field)
	v := fmt.Sprint(f.Interface())
	if f.Type() == reflect.TypeFor[time.Duration]() {
		v = fmtDuration(time.Duration(f.Int()))
	}
	switch {
	case f.IsZero() && sp.none != "":
		v = sp.none
	case sp.kind == syncKind:
		v = "every " + v
	case sp.shows[v] != "":
		v = sp.shows[v]
	}
	d.row(key, "%s%s", v, note)
}

// noteIf returns note when cond holds, else "".
func noteIf(cond bool, note string) string {
	if cond {
		return note
	}
	return ""
}

// listener writes the rows of one listener.
func (d describer) listener(l Listener) {
	fmt.Fprintf(d.w, "\nlistener %q\n", l.Name)
	lv := reflect.ValueOf(&l)
	d.show(lv, keyListenAddr, "")
	d.socket(l, lv)
	d.source(l, lv)
	d.show(lv, keyRetryDelay, noteIf(l.HealthCheck.Type != CheckNone, " (unused: health checks bring endpoints back)"))
	d.show(lv, keyDialTimeout, "")
	d.show(lv, keyOnEndpointRemoved, "")
	d.show(lv, keyDrainTimeout, noteIf(l.OnEndpointRemoved != RemovedDrain, " (used by on-endpoint-removed: drain only)"))
	for _, k := range []string{keyMaxConnections, keyIdleTimeout, keyKeepAlive, keyPolicy, keySlowStart, keyRebalance, keyMaxConnectionAge} {
		d.show(lv, k, "")
	}
	unused := noteIf(l.HealthCheck.Type == CheckNone, " (unused with type none)")
	d.show(lv, keyCheckType, "")
	for _, k := range []string{keyCheckInterval, keyCheckTimeout, keyCheckFall, keyCheckRise, keyOnUnhealthy} {
		d.show(lv, k, unused)
	}
	etcdOnly := noteIf(l.HealthCheck.Type != CheckEtcd, " (used by type etcd only)")
	d.show(lv, keyLeaderlessMax, etcdOnly)
	d.show(lv, keyLagMax, etcdOnly)
	d.show(lv, keySuspectAfter, etcdOnly)
	d.show(lv, keyMemberSync, "")
	if note := tlsCheckNote(l); note != "" {
		d.row("note", "%s", note)
	}
	if warn := IdentityLeak(l); warn != "" {
		d.row("warning", "%s", warn)
	}
	d.tls(l, lv)
}

// socket writes the rows of a unix socket's file and of the allow-lists,
// for the listeners they apply to.
func (d describer) socket(l Listener, lv reflect.Value) {
	network, _ := SplitListenAddr(l.ListenAddr)
	if network == NetworkUnix {
		for _, k := range []string{keySocketMode, keySocketOwner, keySocketGroup} {
			d.show(lv, k, "")
		}
	}
	if network != NetworkTCP {
		d.show(lv, keyAllowedUIDs, "")
		d.show(lv, keyAllowedGIDs, "")
	}
}

// source writes the rows of a listener's endpoints, or of its SRV
// discovery.
func (d describer) source(l Listener, lv reflect.Value) {
	if l.DiscoverySRV == "" {
		for i, ep := range l.Endpoints {
			key := ""
			if i == 0 {
				key = fmt.Sprintf("endpoints (%d)", len(l.Endpoints))
			}
			if slices.Contains(l.TLSEndpoints, ep) {
				ep = "https://" + ep + " (TLS)"
			}
			d.row(key, "%s", ep)
		}
		d.show(lv, keyDNSRefresh, " (used by discovery-srv only)")
		return
	}
	d.show(lv, keyDiscoverySRV, "")
	if l.DiscoverySRVName != "" {
		d.show(lv, keyDiscoverySRVName, "")
	}
	tlsName, plainName := srvNames(l.DiscoverySRV, l.DiscoverySRVName)
	d.row("srv-records", "%s (TLS), %s (plain)", tlsName, plainName)
	d.show(lv, keyInsecureDiscovery, "")
	d.show(lv, keyTrustedCAFile, "")
	d.show(lv, keyDNSRefresh, "")
}

// tls writes the upstream-tls and tls rows of a listener.
func (d describer) tls(l Listener, lv reflect.Value) {
	if !l.UpstreamTLS.Enabled {
		d.row(keyUpstreamTLS, "%s", specOf(keyUpstreamTLS).none)
	} else {
		for _, k := range blockKeys(keyUpstreamTLS) {
			d.show(lv, k, "")
		}
	}
	if !l.TLS.Enabled() {
		d.row(keyTLS, "%s", specOf(keyTLS).none)
		return
	}
	for _, k := range blockKeys(keyTLS) {
		d.show(lv, k, "")
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

// IsLoopback reports whether the host of addr, a valid host:port, is a
// loopback address or "localhost". An empty host (every address) is not.
func IsLoopback(addr string) bool {
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
