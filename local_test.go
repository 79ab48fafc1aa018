package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckWarnsOfIdentityLeak: `check` warns, in one sentence with both
// fixes, of a listener that originates TLS with a client certificate and
// that every local user can reach, and says nothing of one on a unix
// socket only a group can reach.
func TestCheckWarnsOfIdentityLeak(t *testing.T) {
	const warning = "hands the gateway's etcd client certificate"
	for _, c := range []struct {
		name, addr string
		warn       bool
	}{
		{"tcp", "127.0.0.1:23790", true},
		{"unix 0660", `"unix:///run/etcd-gateway/main.sock"`, false},
		{"unix 0666", "\"unix:///run/etcd-gateway/main.sock\"\n    socket-mode: \"0666\"", true},
	} {
		path := filepath.Join(t.TempDir(), "gw.yaml")
		text := "listeners:\n  - name: main\n    endpoints: [10.0.0.1:2379]\n    upstream-tls: {cert-file: /etc/gw.pem, key-file: /etc/gw-key.pem}\n    listen-addr: " + c.addr + "\n"
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		out, errOut, err := execute("check", "--no-dns", "--config", path)
		if err != nil {
			t.Fatalf("%s: check: %v\n%s", c.name, err, errOut)
		}
		if got := strings.Contains(out, warning); got != c.warn {
			t.Errorf("%s: warning shown: %v, want %v:\n%s", c.name, got, c.warn, out)
		}
		if c.warn && (!strings.Contains(out, "listen on a unix socket") || !strings.Contains(out, "client-ca-file")) {
			t.Errorf("%s: the warning lacks a fix:\n%s", c.name, out)
		}
	}
}
