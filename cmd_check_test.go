package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcd-gateway/etcd-gateway/internal/dnstest"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

func TestCheckExampleConfigs(t *testing.T) {
	for _, f := range []string{"examples/etcd-gateway.yaml", "examples/etcd-gateway.toml"} {
		out, errOut, err := execute("check", "--config", f)
		if err != nil {
			t.Fatalf("check %s: %v\n%s", f, err, errOut)
		}
		for _, want := range []string{`"main"`, `"events"`, "127.0.0.1:23790", "10.0.1.12:2379", "10.0.2.10:2379", "127.0.0.1:23800"} {
			if !strings.Contains(out, want) {
				t.Errorf("check %s output lacks %q:\n%s", f, want, out)
			}
		}
	}
}

func TestCheckListsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.yaml")
	bad := "listeners:\n  - name: a\n    endpoint: [x:1]\n    listen-addr: 127.0.0.1:1\n  - name: a\n    listen-addr: 127.0.0.1:1\n    endpoints: [x]\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := execute("check", "--config", path)
	if err == nil {
		t.Fatal("check accepted a bad config")
	}
	for _, want := range []string{path, `unknown key "endpoint"`, `duplicate name "a"`, "listen-addr", "port"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestCheckWithoutAnyConfig(t *testing.T) {
	t.Setenv("ETCD_GATEWAY_CONFIG", "")
	if _, err := os.Stat("/etc/etcd-gateway.yaml"); err == nil {
		t.Skip("this machine has /etc/etcd-gateway.yaml")
	}
	if _, _, err := execute("check"); err == nil {
		t.Fatal("check with no config file succeeded")
	}
}

func TestCheckReadsConfigFromEnvironment(t *testing.T) {
	t.Setenv("ETCD_GATEWAY_CONFIG", "examples/etcd-gateway.toml")
	out, _, err := execute("check")
	if err != nil || !strings.Contains(out, "etcd-gateway.toml") {
		t.Fatalf("check with $ETCD_GATEWAY_CONFIG: err=%v out=%q", err, out)
	}
}

func TestCheckResolvesSRVDiscovery(t *testing.T) {
	d := testutil.DNS(t)
	d.SetSRV("_etcd-client._tcp.example.test",
		dnstest.SRV{Priority: 1, Weight: 5, Port: 2379, Target: "a.example.test"},
		dnstest.SRV{Port: 2379, Target: "."})
	write := func(insecure bool) string {
		path := filepath.Join(t.TempDir(), "gw.yaml")
		cfg := fmt.Sprintf("dns-server: %s\nlisteners:\n  - name: discovered\n    listen-addr: 127.0.0.1:23790\n    discovery-srv: example.test\n    insecure-discovery: %t\n", d.Addr, insecure)
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	out, errOut, err := execute("check", "--config", write(true))
	if err != nil {
		t.Fatalf("check: %v\n%s", err, errOut)
	}
	for _, want := range []string{
		`listener "discovered": SRV discovery of example.test (` + d.Addr + ")",
		"queried _etcd-client-ssl._tcp.example.test", "NXDOMAIN",
		"queried _etcd-client._tcp.example.test", "2 records",
		"endpoint a.example.test:2379", "priority 1, weight 5, plain",
		"dropped .", "not available",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}

	// Plain records without insecure-discovery: nothing usable, exit 1.
	path := write(false)
	out, errOut, err = execute("check", "--config", path)
	if err == nil {
		t.Fatalf("check succeeded for a listener whose discovery yields nothing:\n%s", out)
	}
	if !strings.Contains(out, "dropped a.example.test:2379") || !strings.Contains(out, "insecure-discovery") {
		t.Errorf("check output does not say what was dropped and why:\n%s", out)
	}
	for _, want := range []string{path, `listener "discovered"`, `key "discovery-srv"`,
		"_etcd-client-ssl._tcp.example.test", "_etcd-client._tcp.example.test"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

// TestCheckWarnsOfTLSCheckFallback: `check` of the migration example
// (https:// members, no CA, no client certificate) says in one sentence
// that their health check may fall back to tcp, and how to fix it.
func TestCheckWarnsOfTLSCheckFallback(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.yaml")
	text := "listeners:\n  - name: main\n    listen-addr: 127.0.0.1:23790\n    endpoints: [https://infra0.example.com:2379, https://infra1.example.com:2379]\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := execute("check", "--no-dns", "--config", path) // example.com names
	if err != nil {
		t.Fatalf("check: %v\n%s", err, errOut)
	}
	for _, want := range []string{
		"https://infra0.example.com:2379 (TLS)",
		"health-checked with tcp instead",
		"trusted-ca-file", "cert-file and key-file", "health-check: {type: tcp}",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}

// TestCheckResolvesHostNames: check resolves static host names at
// dns-server, prints their addresses, and fails naming each name that does
// not resolve; --no-dns skips DNS.
func TestCheckResolvesHostNames(t *testing.T) {
	d := testutil.DNS(t)
	d.SetAddr("m1.example.test", "127.0.0.7")
	path := filepath.Join(t.TempDir(), "gw.yaml")
	cfg := fmt.Sprintf("dns-server: %s\nlisteners:\n  - name: main\n    listen-addr: 127.0.0.1:23790\n    endpoints: [m1.example.test:2379, typo.example.test:2379, 10.0.0.1:2379]\n", d.Addr)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := executeCode("check", "--config", path)
	if code != exitFailure {
		t.Fatalf("check with a name that does not resolve: exit code %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "m1.example.test") || !strings.Contains(out, "127.0.0.7") || !strings.Contains(out, "typo.example.test\tdid not resolve") {
		t.Errorf("check output does not list the names and their addresses:\n%s", out)
	}
	if !strings.Contains(errOut, `host name "typo.example.test" did not resolve`) || strings.Contains(errOut, "m1.example.test") || !strings.Contains(errOut, `key "endpoints"`) {
		t.Errorf("stderr does not name exactly the name that did not resolve:\n%s", errOut)
	}
	if _, errOut, err := execute("check", "--no-dns", "--config", path); err != nil {
		t.Fatalf("check --no-dns: %v\n%s", err, errOut)
	}
}

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

// TestCheckDiffNeedsAValidFileAndAGateway: check --diff of an invalid
// file fails with check's errors, before any call; of a valid one where
// no gateway answers, with an error that says so.
func TestCheckDiffNeedsAValidFileAndAGateway(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none.sock")
	_, errOut, code := executeCode("check", "--diff", "--config", "examples/etcd-gateway.yaml", "--control-socket", none)
	if code != 1 || !strings.Contains(errOut, "examples/etcd-gateway.yaml is valid") || !strings.Contains(errOut, "no gateway answers on control socket "+none) {
		t.Fatalf("check --diff with no gateway: exit %d, %q", code, errOut)
	}
	path := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(path, []byte("listeners:\n  - name: a\n    listen-addr: 127.0.0.1:1\n    endpoints: [x]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, checkErr, _ := executeCode("check", "--no-dns", "--config", path)
	_, diffErr, code := executeCode("check", "--diff", "--config", path, "--control-socket", none)
	if code != 1 || diffErr != checkErr || strings.Contains(diffErr, "control socket") {
		t.Fatalf("check --diff of a bad file: exit %d, %q; want 1 and check's errors %q", code, diffErr, checkErr)
	}
}
