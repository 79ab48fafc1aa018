package config

import (
	"strings"
	"testing"
)

// inListener is a file whose one listener "a" has the lines, after a
// valid name, address and endpoints unless the lines set them.
func inListener(lines ...string) string {
	base := []string{"name: a", "listen-addr: 127.0.0.1:23790", "endpoints: [10.0.0.1:2379]"}
	for _, l := range lines {
		key, _, _ := strings.Cut(l, ":")
		for i, b := range base {
			if strings.HasPrefix(b, key+":") {
				base[i] = ""
			}
		}
	}
	var keep []string
	for _, b := range append(base, lines...) {
		if b != "" {
			keep = append(keep, b)
		}
	}
	return listenerYAML(keep...)
}

// atTop is a file with the top-level lines and a valid listener.
func atTop(lines ...string) string {
	return strings.Join(lines, "\n") + "\n" + inListener()
}

// rejectedConfigs are files the decoder refuses for what a value's form
// or a key's name shows: the schema must refuse them too.
var rejectedConfigs = map[string]string{
	// Unknown keys, at every level.
	"mistyped top-level key":    atTop("log-levl: info"),
	"mistyped listener key":     inListener("endpoint: [10.0.0.1:2379]"),
	"underscore for dash":       atTop("log_level: info"),
	"mistyped block key":        atTop("health-check: {typ: tcp}"),
	"old tls key name":          inListener("tls: {ca-file: /ca.pem}"),
	"listener key at the top":   atTop("name: x"),
	"top-level key in listener": inListener("log-level: debug"),
	"upstream-tls at the top":   atTop("upstream-tls: {ca-file: /ca.pem}"),

	// Wrong types.
	"bare number duration":       inListener("retry-delay: 30"),
	"word duration":              inListener("dial-timeout: fast"),
	"duration without unit":      atTop("shutdown-timeout: '10'"),
	"unknown unit":               inListener("dial-timeout: 3sec"),
	"quoted number":              inListener("max-connections: '10'"),
	"fractional number":          atTop("health-check: {fall: 1.5}"),
	"yes for a boolean":          atTop("admin-pprof: 'yes'"),
	"string endpoints":           inListener("endpoints: 10.0.0.1:2379"),
	"number endpoint":            inListener("endpoints: [2379]"),
	"block not a table":          atTop("health-check: tcp"),
	"listeners not a list":       "listeners: {name: a, listen-addr: ':1', endpoints: [a:1]}\n",
	"listener not a table":       "listeners: [a]\n",
	"number name":                inListener("name: 5"),
	"list for one owner":         inListener("listen-addr: unix:///run/a.sock", "socket-owner: [a]"),
	"table for an allow-list":    inListener("listen-addr: unix:///run/a.sock", "allowed-uids: {a: 1}"),
	"unquoted socket mode":       inListener("listen-addr: unix:///run/a.sock", "socket-mode: 0660"),
	"true for member-sync":       inListener("member-sync: true"),
	"string for a block boolean": inListener("upstream-tls: {passthrough: 'no'}"),

	// Bad values of enumerations and rules.
	"bad log level":           atTop("log-level: verbose"),
	"bad log format":          atTop("log-format: xml"),
	"bad policy":              inListener("policy: random"),
	"bad check type":          atTop("health-check: {type: http}"),
	"bad on-unhealthy":        inListener("on-unhealthy: drain"),
	"bad on-endpoint-removed": atTop("on-endpoint-removed: kill"),
	"enum with spaces":        atTop("log-level: ' info'"),
	"zero fall":               atTop("health-check: {fall: 0}"),
	"rise too high":           inListener("health-check: {rise: 1001}"),
	"zero retry-delay":        inListener("retry-delay: 0s"),
	"negative dial-timeout":   inListener("dial-timeout: -1s"),
	"negative idle-timeout":   inListener("idle-timeout: -1s"),
	"negative dns-stale-max":  atTop("dns-stale-max: -5m"),
	"zero member-sync":        inListener("member-sync: 0s"),
	"zero keepalive":          atTop("keepalive: 0s"),
	"negative connections":    inListener("max-connections: -1"),
	"socket mode not octal":   inListener("listen-addr: unix:///run/a.sock", "socket-mode: '0999'"),
	"socket mode too large":   inListener("listen-addr: unix:///run/a.sock", "socket-mode: '1777'"),

	// Addresses and names.
	"listen-addr without port":  inListener("listen-addr: 127.0.0.1"),
	"port out of range":         inListener("listen-addr: 127.0.0.1:70000"),
	"port zero":                 inListener("listen-addr: 127.0.0.1:0"),
	"unbracketed IPv6":          inListener("listen-addr: '::1:23790'"),
	"relative unix path":        inListener("listen-addr: unix://run/a.sock"),
	"unix path ends in a slash": inListener("listen-addr: unix:///run/"),
	"unix in capitals":          inListener("listen-addr: UNIX:///run/a.sock"),
	"empty systemd name":        inListener("listen-addr: 'systemd:'"),
	"endpoint without port":     inListener("endpoints: [10.0.0.1]"),
	"endpoint scheme":           inListener("endpoints: ['ftp://10.0.0.1:2379']"),
	"endpoint path":             inListener("endpoints: ['http://10.0.0.1:2379/v3']"),
	"slash without scheme":      inListener("endpoints: ['10.0.0.1:2379/']"),
	"empty endpoint":            inListener("endpoints: ['']"),
	"dns-server without host":   atTop("dns-server: ':53'"),
	"admin-addr without port":   atTop("admin-addr: 127.0.0.1"),
	"srv domain with a space":   inListener("endpoints: []", "discovery-srv: 'example com'"),
	"srv label starts with -":   inListener("endpoints: []", "discovery-srv: -example.com"),
	"srv name with a dot":       inListener("endpoints: []", "discovery-srv: example.com", "discovery-srv-name: a.b"),
	"server name with a colon":  inListener("upstream-tls: {server-name: 'etcd:2379'}"),
	"bad listener name":         inListener("name: 'bad name!'"),
	"name too long":             inListener("name: " + strings.Repeat("a", 65)),

	// Missing keys and the listener's one source.
	"no listeners":              "log-level: info\n",
	"empty listeners":           "listeners: []\n",
	"missing name":              listenerYAML("listen-addr: :1", "endpoints: [a:1]"),
	"empty name":                inListener("name:"),
	"missing listen-addr":       listenerYAML("name: a", "endpoints: [a:1]"),
	"endpoints and srv":         inListener("discovery-srv: example.com"),
	"neither endpoints nor srv": listenerYAML("name: a", "listen-addr: :1"),
	"empty endpoints alone":     inListener("endpoints: []"),
	"empty tls block":           inListener("tls: {}"),
	"tls without its key":       inListener("tls: {cert-file: /c.pem}"),
	"tls with a CA only":        inListener("tls: {client-ca-file: /ca.pem}"),
}

// TestSchemaRefusesWhatTheDecoderRefuses: each of rejectedConfigs is
// refused by the decoder, and by the schema.
func TestSchemaRefusesWhatTheDecoderRefuses(t *testing.T) {
	sch := compiledSchema(t)
	for name, data := range rejectedConfigs {
		if _, err := Parse("gw.yaml", []byte(data)); err == nil {
			t.Errorf("%s: the decoder accepts it:\n%s", name, data)
		}
		if sch.Validate(instance(t, "gw.yaml", []byte(data))) == nil {
			t.Errorf("%s: the decoder refuses it, the schema accepts it:\n%s", name, data)
		}
	}
}

// TestSchemaRefusesInTOML: the schema reads a TOML file as the editors'
// TOML tools do.
func TestSchemaRefusesInTOML(t *testing.T) {
	sch := compiledSchema(t)
	data := "log-level = \"info\"\n[[listeners]]\nname = \"a\"\nlisten-addr = \"127.0.0.1:1\"\nendpoints = [\"a:1\"]\nretry-delay = 30\n"
	if _, err := Parse("gw.toml", []byte(data)); err == nil {
		t.Fatal("the decoder accepts a bare number duration")
	}
	if sch.Validate(instance(t, "gw.toml", []byte(data))) == nil {
		t.Fatal("the schema accepts a bare number duration in TOML")
	}
}
