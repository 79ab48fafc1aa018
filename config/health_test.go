package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestParseHealthKeysErrors covers the keys of health checks, policies,
// member sync and TLS: each problem names the file, the listener and the
// (qualified) key, and is reported once.
func TestParseHealthKeysErrors(t *testing.T) {
	tests := slices.Concat(healthCheckKeyCases(), upstreamTLSKeyCases(), listenerTLSKeyCases())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("/etc/gw.yaml", []byte(tt.data))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse: %v, want a *ValidationError", err)
			}
			for _, w := range tt.want {
				if n := strings.Count(err.Error(), w); n != 1 {
					t.Errorf("%q appears %d times in:\n%v", w, n, err)
				}
			}
			if len(ve.Problems) != len(tt.want) {
				t.Errorf("%d problems, want %d:\n%v", len(ve.Problems), len(tt.want), err)
			}
		})
	}
}

// keyErrorCase is a file Parse must reject, and the lines its error must
// have, each exactly once.
type keyErrorCase struct {
	name, data string
	want       []string
}

// withTopLevel is a file of top-level lines and a valid listener.
func withTopLevel(lines string) string { return lines + listenerYAML(okListener) }

// healthCheckKeyCases are the key errors of policies, on-unhealthy and health checks.
func healthCheckKeyCases() []keyErrorCase {
	const ok = okListener
	return []keyErrorCase{
		{"unknown policy", listenerYAML(ok, "policy: random"),
			[]string{`/etc/gw.yaml: listener "a": key "policy": "random" is not one of "sticky-random", "round-robin", "least-connections"`}},
		{"unknown top-level policy, inherited once", withTopLevel("policy: weighted\n"),
			[]string{`/etc/gw.yaml: key "policy": "weighted" is not one of`}},
		{"unknown on-unhealthy", listenerYAML(ok, "on-unhealthy: drain"),
			[]string{`listener "a": key "on-unhealthy": "drain" is not one of "keep", "close"`}},
		{"unknown check type", listenerYAML(ok, "health-check: {type: http}"),
			[]string{`listener "a": key "health-check.type": "http" is not one of "none", "tcp", "etcd"`}},
		{"health-check not a table", listenerYAML(ok, "health-check: etcd"),
			[]string{`listener "a": key "health-check": must be a table of keys (type, interval, timeout, fall, rise, leaderless-max, lag-max, suspect-after), not the string "etcd"`}},
		{"top-level health-check not a table, inherited once", withTopLevel("health-check: [etcd]\n"),
			[]string{`/etc/gw.yaml: key "health-check": must be a table of keys`}},
		{"unknown key in health-check", listenerYAML(ok, "health-check: {type: etcd, intervl: 5s}"),
			[]string{`listener "a": unknown key "health-check.intervl"; did you mean "health-check.interval"?`}},
		{"unknown key in top-level health-check", withTopLevel("health-check:\n  rize: 2\n"),
			[]string{`/etc/gw.yaml: unknown key "health-check.rize"; did you mean "health-check.rise"?`}},
		{"bare-number interval", listenerYAML(ok, "health-check: {interval: 5}"),
			[]string{`listener "a": key "health-check.interval": 5 has no unit`}},
		{"zero timeout", listenerYAML(ok, "health-check: {timeout: 0s}"),
			[]string{`listener "a": key "health-check.timeout": 0s: must be greater than zero`}},
		{"timeout longer than interval", listenerYAML(ok, "health-check: {interval: 1s, timeout: 3s}"),
			[]string{`listener "a": key "health-check.timeout": 3s is longer than health-check.interval 1s`}},
		{"timeout longer than the inherited interval", withTopLevel("health-check: {interval: 1s, timeout: 500ms}\n") + "    health-check: {timeout: 2s}\n",
			[]string{`listener "a": key "health-check.timeout": 2s is longer than health-check.interval 1s`}},
		{"written top-level timeout longer than a listener's interval", withTopLevel("health-check: {timeout: 3s}\n") + "    health-check: {interval: 1s}\n",
			[]string{`listener "a": key "health-check.timeout": 3s is longer than health-check.interval 1s`}},
		{"fall zero", listenerYAML(ok, "health-check: {fall: 0}"),
			[]string{`listener "a": key "health-check.fall": 0: must be from 1 to 1000`}},
		{"rise not a number", listenerYAML(ok, "health-check: {rise: 'two'}"),
			[]string{`listener "a": key "health-check.rise": must be a whole number, not the string "two"`}},
		{"rise fractional", listenerYAML(ok, "health-check: {rise: 1.5}"),
			[]string{`listener "a": key "health-check.rise": 1.5 is not a whole number`}},
	}
}

// upstreamTLSKeyCases are the key errors of member sync and upstream-tls.
func upstreamTLSKeyCases() []keyErrorCase {
	const ok = okListener
	return []keyErrorCase{
		{"member-sync zero", listenerYAML(ok, "member-sync: 0s"),
			[]string{`listener "a": key "member-sync": 0s: must be greater than zero; write "off" to turn member sync off`}},
		{"member-sync true", listenerYAML(ok, "member-sync: true"),
			[]string{`listener "a": key "member-sync": true is not an interval`}},
		{"member-sync bare number", withTopLevel("member-sync: 60\n"),
			[]string{`/etc/gw.yaml: key "member-sync": 60 has no unit`}},
		{"upstream-tls at the top level", withTopLevel("upstream-tls: {ca-file: /ca.pem}\n"),
			[]string{`/etc/gw.yaml: unknown key "upstream-tls" here: it is a listener key`}},
		{"upstream-tls not a table", listenerYAML(ok, "upstream-tls: true"),
			[]string{`listener "a": key "upstream-tls": must be a table of keys (ca-file, cert-file, key-file, server-name, passthrough), not the boolean true`}},
		{"unknown key in upstream-tls", listenerYAML(ok, "upstream-tls: {ca_file: /ca.pem}"),
			[]string{`listener "a": unknown key "upstream-tls.ca_file"; did you mean "upstream-tls.ca-file"?`}},
		{"cert-file without key-file", listenerYAML(ok, "upstream-tls: {cert-file: /gw.pem}"),
			[]string{`listener "a": key "upstream-tls.key-file": missing: upstream-tls.cert-file needs upstream-tls.key-file`}},
		{"key-file without cert-file", listenerYAML(ok, "upstream-tls: {key-file: /gw-key.pem}"),
			[]string{`listener "a": key "upstream-tls.cert-file": missing: upstream-tls.key-file needs upstream-tls.cert-file`}},
		{"bad server-name", listenerYAML(ok, "upstream-tls: {server-name: 'etcd:2379'}"),
			[]string{`listener "a": key "upstream-tls.server-name": "etcd:2379" is not a host name`}},
		{"ca-file not a string", listenerYAML(ok, "upstream-tls: {ca-file: [a, b]}"),
			[]string{`listener "a": key "upstream-tls.ca-file": must be a string, not a list`}},
		{"passthrough not a boolean", listenerYAML(ok, "upstream-tls: {passthrough: 'yes'}"),
			[]string{`listener "a": key "upstream-tls.passthrough": must be true or false, not the string "yes"`}},
	}
}

// listenerTLSKeyCases are the key errors of the tls block.
func listenerTLSKeyCases() []keyErrorCase {
	const ok = okListener
	return []keyErrorCase{
		{"old tls key for the members", listenerYAML(ok, "tls: {ca-file: /ca.pem}"),
			[]string{`listener "a": unknown key "tls.ca-file"; did you mean "upstream-tls.ca-file"? The members' TLS settings are in the upstream-tls block`}},
		{"unknown key in tls", listenerYAML(ok, "tls: {cert-file: /c.pem, key-file: /k.pem, client_ca_file: /ca.pem}"),
			[]string{`listener "a": unknown key "tls.client_ca_file"; did you mean "tls.client-ca-file"?`}},
		{"tls not a table", listenerYAML(ok, "tls: true"),
			[]string{`listener "a": key "tls": must be a table of keys (cert-file, key-file, client-ca-file), not the boolean true`}},
		{"empty tls block", listenerYAML(ok, "tls: {}"),
			[]string{`listener "a": key "tls.cert-file": missing: a tls block serves TLS to the clients and needs tls.cert-file and tls.key-file`}},
		{"tls with client-ca-file only", listenerYAML(ok, "tls: {client-ca-file: /ca.pem}"),
			[]string{`listener "a": key "tls.cert-file": missing: a tls block serves TLS to the clients`}},
		{"tls cert-file without key-file", listenerYAML(ok, "tls: {cert-file: /gw.pem}"),
			[]string{`listener "a": key "tls.key-file": missing: tls.cert-file needs tls.key-file`}},
		{"tls with passthrough", listenerYAML(ok, "tls: {cert-file: /c.pem, key-file: /k.pem}", "upstream-tls: {passthrough: true}"),
			[]string{`listener "a": key "upstream-tls.passthrough": true together with a tls block`}},
	}
}

func TestParseHealthKeysValues(t *testing.T) {
	for _, tt := range []struct {
		name, path, data string
		check            func(l Listener) bool
	}{
		{"empty upstream-tls block enables TLS", "gw.yaml", listenerYAML("name: a", "listen-addr: :1", "endpoints: [a:1]", "upstream-tls: {}"),
			func(l Listener) bool {
				return l.UpstreamTLS == UpstreamTLS{Enabled: true} && l.UpstreamTLS.Originates()
			}},
		{"null upstream-tls is no tls", "gw.yaml", listenerYAML("name: a", "listen-addr: :1", "endpoints: [a:1]", "upstream-tls:"),
			func(l Listener) bool { return l.UpstreamTLS == UpstreamTLS{} && !l.UpstreamTLS.Originates() }},
		{"empty upstream-tls table in toml", "gw.toml", "[[listeners]]\nname = \"a\"\nlisten-addr = \":1\"\nendpoints = [\"a:1\"]\n[listeners.upstream-tls]\n",
			func(l Listener) bool { return l.UpstreamTLS.Enabled }},
		{"passthrough", "gw.yaml", listenerYAML("name: a", "listen-addr: :1", "endpoints: [a:1]", "upstream-tls: {ca-file: /ca.pem, passthrough: true}"),
			func(l Listener) bool { return l.UpstreamTLS.Passthrough && !l.UpstreamTLS.Originates() }},
		{"tls in and out", "gw.yaml", listenerYAML("name: a", "listen-addr: :1", "endpoints: [a:1]", "upstream-tls: {ca-file: /ca.pem}", "tls: {cert-file: /c.pem, key-file: /k.pem, client-ca-file: /cca.pem}"),
			func(l Listener) bool {
				return l.UpstreamTLS.Originates() && l.TLS == ListenTLS{CertFile: "/c.pem", KeyFile: "/k.pem", ClientCAFile: "/cca.pem"}
			}},
		{"no tls block", "gw.yaml", listenerYAML("name: a", "listen-addr: :1", "endpoints: [a:1]"),
			func(l Listener) bool { return !l.TLS.Enabled() && !l.UpstreamTLS.Enabled }},
		{"member-sync off overrides the top level", "gw.yaml", "member-sync: 1m\n" + listenerYAML("name: a", "listen-addr: :1", "endpoints: [a:1]", "member-sync: OFF"),
			func(l Listener) bool { return l.MemberSync == 0 }},
		{"member-sync false is off", "gw.yaml", listenerYAML("name: a", "listen-addr: :1", "endpoints: [a:1]", "member-sync: false"),
			func(l Listener) bool { return l.MemberSync == 0 }},
		{"member-sync inherited", "gw.yaml", "member-sync: 30s\n" + listenerYAML("name: a", "listen-addr: :1", "endpoints: [a:1]"),
			func(l Listener) bool { return l.MemberSync == 30*time.Second }},
		{"values are not case-sensitive", "gw.yaml", listenerYAML("name: a", "listen-addr: :1", "endpoints: [a:1]", "policy: Round-Robin", "on-unhealthy: CLOSE", "health-check: {type: TCP}"),
			func(l Listener) bool {
				return l.Policy == PolicyRoundRobin && l.OnUnhealthy == UnhealthyClose && l.HealthCheck.Type == CheckTCP
			}},
		{"null health-check is the default", "gw.yaml", listenerYAML("name: a", "listen-addr: :1", "endpoints: [a:1]", "health-check:"),
			func(l Listener) bool { return l.HealthCheck == defaultListener().HealthCheck }},
		{"interval alone shortens the default timeout", "gw.yaml", listenerYAML("name: a", "listen-addr: :1", "endpoints: [a:1]", "health-check: {interval: 1s}"),
			func(l Listener) bool {
				return l.HealthCheck.Interval == time.Second && l.HealthCheck.Timeout == time.Second
			}},
		{"top-level interval alone shortens the default timeout", "gw.yaml", "health-check: {interval: 500ms}\n" + listenerYAML("name: a", "listen-addr: :1", "endpoints: [a:1]"),
			func(l Listener) bool { return l.HealthCheck.Timeout == 500*time.Millisecond }},
		{"a listener's longer interval gets the default timeout back", "gw.yaml", "health-check: {interval: 1s}\n" + listenerYAML("name: a", "listen-addr: :1", "endpoints: [a:1]", "health-check: {interval: 10s}"),
			func(l Listener) bool { return l.HealthCheck.Timeout == DefaultCheckTimeout }},
		{"a written timeout is kept", "gw.yaml", "health-check: {timeout: 700ms}\n" + listenerYAML("name: a", "listen-addr: :1", "endpoints: [a:1]", "health-check: {interval: 1s}"),
			func(l Listener) bool { return l.HealthCheck.Timeout == 700*time.Millisecond }},
		{"type none keeps the other values", "gw.yaml", listenerYAML("name: a", "listen-addr: :1", "endpoints: [a:1]", "health-check: {type: none, fall: 7}"),
			func(l Listener) bool { return l.HealthCheck.Type == CheckNone && l.HealthCheck.Fall == 7 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.path, []byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(s.Listeners[0]) {
				t.Fatalf("got %+v", s.Listeners[0])
			}
		})
	}
}
