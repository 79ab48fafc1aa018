//go:build linux

package e2e

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/etcd-gateway/etcd-gateway/config"
)

// yamlDoc reads a YAML file into a generic document.
func yamlDoc(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc
}

// dig follows keys (strings for maps, ints for lists) into doc.
func dig(t *testing.T, doc any, path ...any) any {
	t.Helper()
	cur := doc
	for i, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				t.Fatalf("%v: not a mapping", path[:i+1])
			}
			cur, ok = m[k]
			if !ok {
				t.Fatalf("%v: missing", path[:i+1])
			}
		case int:
			l, ok := cur.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("%v: not a list with index %d", path[:i+1], k)
			}
			cur = l[k]
		}
	}
	return cur
}

// TestKubernetesExample checks that the ConfigMap's gateway config passes
// `etcd-gateway check` and that the DaemonSet fits it: the file path, the
// readiness probe on the admin server, no subPath, a grace period longer
// than the shutdown timeout.
func TestKubernetesExample(t *testing.T) {
	cm := yamlDoc(t, "../examples/kubernetes/configmap.yaml")
	ds := yamlDoc(t, "../examples/kubernetes/daemonset.yaml")
	if dig(t, cm, "kind") != "ConfigMap" || dig(t, ds, "kind") != "DaemonSet" {
		t.Fatal("the examples are not a ConfigMap and a DaemonSet")
	}
	fileName, text := configMapFile(t, cm)
	snap, adminPort := checkConfigMapConfig(t, fileName, text)

	spec := dig(t, ds, "spec", "template", "spec")
	checkPodSpec(t, spec, snap)
	ctr := dig(t, spec, "containers", 0)
	checkConfigMount(t, cm, spec, ctr, fileName)
	checkProbes(t, ctr, snap, adminPort)
}

// configMapFile returns the one file the ConfigMap holds, its name and its
// text.
func configMapFile(t *testing.T, cm map[string]any) (fileName, text string) {
	t.Helper()
	data := dig(t, cm, "data").(map[string]any)
	if len(data) != 1 {
		t.Fatalf("the ConfigMap holds %d files, want 1", len(data))
	}
	for k, v := range data {
		fileName, text = k, v.(string)
	}
	return fileName, text
}

// checkConfigMapConfig checks that the ConfigMap's config passes
// `etcd-gateway check` and listens, admin server included, on 127.0.0.1
// only; it returns the config and the admin server's port.
func checkConfigMapConfig(t *testing.T, fileName, text string) (*config.Snapshot, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), fileName)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// Its member names exist only in the example's cluster: no DNS.
	if out, err := gatewayCommand(setup{}, "check", "--no-dns", "--config", path).CombinedOutput(); err != nil {
		t.Fatalf("etcd-gateway check on the ConfigMap's config: %v\n%s", err, out)
	}
	snap, err := config.Parse(path, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range snap.Listeners {
		if host, _, _ := net.SplitHostPort(l.ListenAddr); host != "127.0.0.1" {
			t.Errorf("listener %q listens on %s, want 127.0.0.1", l.Name, l.ListenAddr)
		}
	}
	adminHost, adminPort, err := net.SplitHostPort(snap.AdminAddr)
	if err != nil || adminHost != "127.0.0.1" {
		t.Fatalf("admin-addr %q, want 127.0.0.1:PORT", snap.AdminAddr)
	}
	return snap, adminPort
}

// checkPodSpec checks that the DaemonSet's pod is on the host network and
// is given longer to stop than the gateway's shutdown timeout.
func checkPodSpec(t *testing.T, spec any, snap *config.Snapshot) {
	t.Helper()
	if dig(t, spec, "hostNetwork") != true {
		t.Error("the DaemonSet is not on the host network")
	}
	grace := dig(t, spec, "terminationGracePeriodSeconds").(int)
	if time.Duration(grace)*time.Second <= snap.ShutdownTimeout {
		t.Errorf("terminationGracePeriodSeconds %d is not longer than shutdown-timeout %s", grace, snap.ShutdownTimeout)
	}
}

// checkConfigMount checks that the container's --config is the
// ConfigMap's file, mounted whole (no subPath) from the example's
// ConfigMap.
func checkConfigMount(t *testing.T, cm map[string]any, spec, ctr any, fileName string) {
	t.Helper()
	args := dig(t, ctr, "args").([]any)
	i := slices.Index(args, any("--config"))
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("args %v lack --config", args)
	}
	configPath := args[i+1].(string)
	mount := dig(t, ctr, "volumeMounts", 0).(map[string]any)
	if _, ok := mount["subPath"]; ok {
		t.Error("the config is mounted with subPath: the kubelet would never update it")
	}
	if want := filepath.Join(mount["mountPath"].(string), fileName); configPath != want {
		t.Errorf("--config %s, but the ConfigMap's file is mounted at %s", configPath, want)
	}
	if vol := dig(t, spec, "volumes", 0, "configMap", "name"); vol != dig(t, cm, "metadata", "name") {
		t.Errorf("the volume uses ConfigMap %v, the example is %v", vol, dig(t, cm, "metadata", "name"))
	}
}

// checkProbes checks that the container's readiness probe asks the admin
// server's /healthz and that it has no liveness probe.
func checkProbes(t *testing.T, ctr any, snap *config.Snapshot, adminPort string) {
	t.Helper()
	probe := dig(t, ctr, "readinessProbe", "httpGet")
	if dig(t, probe, "path") != "/healthz" || dig(t, probe, "host") != "127.0.0.1" ||
		strconv.Itoa(dig(t, probe, "port").(int)) != adminPort {
		t.Errorf("readiness probe %v does not ask the admin server's /healthz at %s", probe, snap.AdminAddr)
	}
	if _, ok := ctr.(map[string]any)["livenessProbe"]; ok {
		t.Error("a liveness probe would restart the pod on a rejected config")
	}
}

// unitFile reads a systemd unit into its assignments, key → values.
func unitFile(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: bad line %q", path, line)
		}
		out[k] = append(out[k], v)
	}
	return out
}

func TestSystemdUnitExample(t *testing.T) {
	const path = "../examples/etcd-gateway.service"
	u := unitFile(t, path)
	want := map[string]string{
		"Type":                  "notify",
		"DynamicUser":           "yes",
		"ProtectSystem":         "strict",
		"NoNewPrivileges":       "yes",
		"CapabilityBoundingSet": "",
		"AmbientCapabilities":   "",
	}
	for k, v := range want {
		if got := u[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	start := strings.Fields(u["ExecStart"][0])
	if len(start) != 4 || start[1] != "start" || start[2] != "--config" {
		t.Fatalf("ExecStart=%v", start)
	}
	// systemctl reload asks the same gateway, about the same file, and
	// waits for the outcome.
	if want := []string{start[0], "reload", "--config", start[3]}; len(u["ExecReload"]) != 1 || !slices.Equal(strings.Fields(u["ExecReload"][0]), want) {
		t.Errorf("ExecReload=%q, want %q", u["ExecReload"], strings.Join(want, " "))
	}
	if snap, err := config.Load("../examples/etcd-gateway.yaml"); err != nil || snap.AdminAddr == "" {
		t.Errorf("the example config to install has no admin-addr (%v)", err)
	}
	stop, err := time.ParseDuration(u["TimeoutStopSec"][0])
	if err != nil || stop <= config.DefaultShutdownTimeout {
		t.Errorf("TimeoutStopSec=%v is not longer than the default shutdown-timeout", u["TimeoutStopSec"])
	}

	// systemd's own check, where systemd is installed. It wants the binary
	// to exist: point ExecStart at one that does.
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "etcd-gateway.service")
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(string(text), start[0], os.Getenv(binaryEnv))), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSystemdSocketExample checks the socket unit beside the service: it
// names its socket for a systemd: listen-addr, makes it a unix socket for
// a group, and passes systemd's own check where systemd is installed.
func TestSystemdSocketExample(t *testing.T) {
	const path = "../examples/etcd-gateway.socket"
	u := unitFile(t, path)
	for k, v := range map[string]string{"FileDescriptorName": "main", "SocketMode": "0660", "ListenStream": "/run/etcd-gateway/main.sock"} {
		if got := u[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "listen-addr: systemd:"+u["FileDescriptorName"][0]) {
		t.Errorf("%s does not show the listen-addr that takes its socket", path)
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
