package config

import (
	"bytes"
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
	want := []string{
		"config file /etc/gw.yaml",
		"log-level", "debug",
		"log-format", "json",
		"shutdown-timeout", "20s",
		"dns-server", "10.0.0.53:53",
		"admin-addr", "127.0.0.1:23800",
		"admin-pprof", "true",
		"2 listeners",
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
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("%q missing or out of order in:\n%s", w, out)
		}
		rest = rest[i+len(w):]
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
