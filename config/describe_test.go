package config

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDescribe(t *testing.T) {
	s, err := Parse("/etc/gw.yaml", []byte(twoListenersYAML))
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	s.Describe(&a)
	s.Describe(&b)
	if a.String() != b.String() {
		t.Fatalf("Describe is not stable:\n%s\n---\n%s", a.String(), b.String())
	}
	out := a.String()
	// Each entry must appear, in this order.
	want := slices.Concat(describedTop(), describedMain(), describedDiscovered())
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("%q missing or out of order in:\n%s", w, out)
		}
		rest = rest[i+len(w):]
	}
}

// describedTop is what Describe says first of twoListenersYAML: the
// file and the top-level settings.
func describedTop() []string {
	return []string{
		"config file /etc/gw.yaml",
		"log-level", "debug",
		"log-format", "json",
		"shutdown-timeout", "20s",
		"dns-server", "10.0.0.53:53",
		"admin-addr", "127.0.0.1:23800",
		"admin-pprof", "true",
		"2 listeners",
	}
}

// describedMain is what Describe says of twoListenersYAML's listener
// main.
func describedMain() []string {
	return []string{
		`listener "main"`,
		"listen-addr", "127.0.0.1:23790",
		"endpoints (3)", "10.0.0.1:2379", "10.0.0.2:2379", "etcd-3.example.com:2379",
		"retry-delay", "30s",
		"dial-timeout", "2s",
		"on-endpoint-removed", "drain",
		"drain-timeout", "45s",
		"max-connections", "1000",
		"idle-timeout", "off",
		"keepalive", "30s",
		"policy", "round-robin",
		"health-check.type", "tcp",
		"health-check.interval", "10s",
		"health-check.timeout", "2s",
		"health-check.fall", "3",
		"health-check.rise", "2",
		"on-unhealthy", "close",
		"member-sync", "every 1m",
		"upstream-tls", "none",
		"tls", "none",
	}
}

// describedDiscovered is what Describe says of twoListenersYAML's
// listener discovered.
func describedDiscovered() []string {
	return []string{
		`listener "discovered"`,
		"listen-addr", "[::1]:23791",
		"discovery-srv", "example.com",
		"discovery-srv-name", "prod",
		"_etcd-client-ssl-prod._tcp.example.com", "_etcd-client-prod._tcp.example.com",
		"insecure-discovery", "true",
		"trusted-ca-file", "/etc/ssl/etcd-ca.pem",
		"dns-refresh", "1m",
		"retry-delay", "5s",
		"dial-timeout", "500ms",
		"on-endpoint-removed", "close",
		"drain-timeout", "1h30m",
		"max-connections", "no limit",
		"idle-timeout", "10m",
		"keepalive", "1m",
		"policy", "least-connections",
		"health-check.type", "etcd (GET /health",
		"health-check.interval", "10s",
		"health-check.timeout", "1s",
		"health-check.fall", "3",
		"health-check.rise", "5",
		"on-unhealthy", "keep",
		"member-sync", "off",
		"tls.ca-file", "/etc/ssl/etcd-ca.pem",
		"tls.cert-file", "/etc/ssl/gw.pem",
		"tls.key-file", "/etc/ssl/gw-key.pem",
		"tls.server-name", "etcd.example.com",
	}
}

func TestDescribeFlags(t *testing.T) {
	s, err := FromFlags(DefaultFlags())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	s.Describe(&buf)
	for _, w := range []string{"command-line flags", `listener "default"`, "127.0.0.1:23790", "127.0.0.1:2379", "system resolver",
		"policy", "sticky-random", "health-check.type", "etcd", "health-check.interval", "5s"} {
		if !strings.Contains(buf.String(), w) {
			t.Errorf("%q missing in:\n%s", w, buf.String())
		}
	}
}

func TestFmtDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{time.Minute, "1m"},
		{time.Hour, "1h"},
		{90 * time.Minute, "1h30m"},
		{90 * time.Second, "1m30s"},
		{500 * time.Millisecond, "500ms"},
		{0, "0s"},
		{-time.Minute, "-1m"},
	}
	for _, tt := range tests {
		if got := fmtDuration(tt.d); got != tt.want {
			t.Errorf("fmtDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestDescribeAdminAddr(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"", "off"},
		{"127.0.0.1:23800", "127.0.0.1:23800\n"},
		{"localhost:23800", "localhost:23800\n"},
		{"[::1]:23800", "[::1]:23800\n"},
		{":23800", ":23800 (not loopback"},
		{"10.0.0.5:23800", "10.0.0.5:23800 (not loopback"},
	}
	for _, tt := range tests {
		s, err := FromFlags(DefaultFlags())
		if err != nil {
			t.Fatal(err)
		}
		s.AdminAddr = tt.addr
		var buf bytes.Buffer
		s.Describe(&buf)
		line := ""
		for _, l := range strings.Split(buf.String(), "\n") {
			if strings.Contains(l, "admin-addr") {
				line = l + "\n"
			}
		}
		if !strings.Contains(line, tt.want) {
			t.Errorf("admin-addr %q: line %q lacks %q", tt.addr, line, tt.want)
		}
	}
}

// TestDescribeTLSCheckNote: check says, in one sentence with the fixes,
// when the etcd check of https:// members may fall back to tcp; and not
// when the configuration can check them.
func TestDescribeTLSCheckNote(t *testing.T) {
	const base = "name: a\n    listen-addr: 127.0.0.1:23790\n    endpoints: [https://10.0.0.1:2379, 10.0.0.2:2379]"
	for _, tc := range []struct {
		name  string
		extra []string
		want  []string // substrings of the note; none means no note
	}{
		{"no CA, no client certificate", nil, []string{
			"the https:// members are verified with the system roots only, and offered no client certificate",
			"health-checked with tcp instead", "trusted-ca-file", "upstream-tls block with ca-file and passthrough: true",
			"cert-file and key-file", "health-check: {type: tcp}",
		}},
		{"trusted-ca-file, no client certificate", []string{"trusted-ca-file: /ca.pem"}, []string{
			"the https:// members are offered no client certificate", "cert-file and key-file", "health-check: {type: tcp}",
		}},
		{"everything configured", []string{"upstream-tls: {ca-file: /ca.pem, cert-file: /c.pem, key-file: /k.pem, passthrough: true}"}, nil},
		{"tcp checks", []string{"health-check: {type: tcp}"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("/etc/gw.yaml", []byte(listenerYAML(append([]string{base}, tc.extra...)...)))
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			s.Describe(&buf)
			out := buf.String()
			if !strings.Contains(out, "https://10.0.0.1:2379 (TLS)") {
				t.Errorf("the https:// endpoint is not shown as TLS:\n%s", out)
			}
			note := ""
			for line := range strings.SplitSeq(out, "\n") {
				if f := strings.Fields(line); len(f) > 0 && f[0] == "note" {
					note = line
				}
			}
			if len(tc.want) == 0 && note != "" {
				t.Fatalf("unexpected note: %s", note)
			}
			for _, w := range tc.want {
				if !strings.Contains(note, w) {
					t.Errorf("note %q doesn't say %q", note, w)
				}
			}
		})
	}
}
