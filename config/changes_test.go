package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// mustParse parses a YAML file, or fails the test.
func mustParse(t *testing.T, text string) *Snapshot {
	t.Helper()
	s, err := Parse("gw.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestChanges: listeners added, removed and re-bound, endpoints added and
// removed, keys changed (top level, inherited, in a block, a block itself),
// each on its line, in order.
func TestChanges(t *testing.T) {
	old := mustParse(t, `
log-level: info
dial-timeout: 1s
listeners:
  - name: main
    listen-addr: 127.0.0.1:1
    endpoints: [10.0.0.1:2379, 10.0.0.2:2379]
  - name: gone
    listen-addr: 127.0.0.1:2
    endpoints: [10.0.0.1:2379]
  - name: same
    listen-addr: 127.0.0.1:3
    endpoints: [10.0.0.1:2379]
`)
	next := mustParse(t, `
log-level: DEBUG
dial-timeout: 1s
admin-addr: 127.0.0.1:23800
control-socket: /run/c.sock
listeners:
  - name: same
    listen-addr: 127.0.0.1:3
    endpoints: [10.0.0.1:2379]
  - name: main
    listen-addr: 127.0.0.1:4
    endpoints: [10.0.0.2:2379, https://10.0.0.3:2379]
    dial-timeout: 2s
    health-check: {fall: 3}
    member-sync: 1m
    upstream-tls: {}
  - name: new
    listen-addr: 127.0.0.1:5
    endpoints: [10.0.0.1:2379]
`)
	want := []string{
		"~ log-level: info → debug",
		"~ admin-addr: off → 127.0.0.1:23800",
		"~ control-socket: off → /run/c.sock (read at start: a restart applies it)",
		"+ listener new",
		"- listener gone",
		"~ listener main",
		"~ listener main listen-addr: 127.0.0.1:1 → 127.0.0.1:4",
		"~ listener main dial-timeout: 1s → 2s",
		"~ listener main health-check.fall: 2 → 3",
		"~ listener main member-sync: off → 1m",
		"~ listener main upstream-tls: none → set",
		"+ listener main endpoint https://10.0.0.3:2379",
		"- listener main endpoint 10.0.0.1:2379",
	}
	if got := Changes(old, next); !slices.Equal(got, want) {
		t.Errorf("Changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestChangesNone: the same configuration, or listeners in another
// order, changes nothing.
func TestChangesNone(t *testing.T) {
	a := mustParse(t, twoListenersYAML)
	if got := Changes(a, mustParse(t, twoListenersYAML)); got != nil {
		t.Errorf("the same file: %q", got)
	}
	b := mustParse(t, twoListenersYAML)
	b.Listeners[0], b.Listeners[1] = b.Listeners[1], b.Listeners[0]
	if got := Changes(a, b); got != nil {
		t.Errorf("listeners reordered: %q", got)
	}
}

// TestChangesEndpointScheme: an endpoint that turns to https:// is
// removed and added, since its health check and member sync change.
func TestChangesEndpointScheme(t *testing.T) {
	old := mustParse(t, listenerYAML("name: a", "listen-addr: :1", "endpoints: [10.0.0.1:2379]"))
	next := mustParse(t, listenerYAML("name: a", "listen-addr: :1", "endpoints: ['https://10.0.0.1:2379']"))
	want := []string{"~ listener a", "+ listener a endpoint https://10.0.0.1:2379", "- listener a endpoint 10.0.0.1:2379"}
	if got := Changes(old, next); !slices.Equal(got, want) {
		t.Errorf("Changes = %q, want %q", got, want)
	}
}

// TestChangesFilesOnDisk: a certificate renewed under the same path is a
// change of the listener's files; a new path is a key change only.
func TestChangesFilesOnDisk(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	write := func(text string) {
		if err := os.WriteFile(ca, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	text := listenerYAML("name: a", "listen-addr: :1", "endpoints: [a:1]", "upstream-tls: {ca-file: "+ca+"}")
	write("old")
	old := WithFileDigests(mustParse(t, text))
	write("new")
	next := WithFileDigests(mustParse(t, text))
	if got, want := Changes(old, next), []string{"~ listener a", "~ listener a files changed on disk: " + ca}; !slices.Equal(got, want) {
		t.Errorf("renewed: %q, want %q", got, want)
	}
	moved := WithFileDigests(mustParse(t, strings.Replace(text, ca, ca+".missing", 1)))
	if got, want := Changes(old, moved), []string{"~ listener a", "~ listener a upstream-tls.ca-file: " + ca + " → " + ca + ".missing"}; !slices.Equal(got, want) {
		t.Errorf("moved: %q, want %q", got, want)
	}
}

// TestChangesShowValues: lists, empty strings and blocks removed show as
// check shows them.
func TestChangesShowValues(t *testing.T) {
	old := mustParse(t, listenerYAML("name: a", "listen-addr: unix:///run/a.sock", "endpoints: [a:1]", "allowed-uids: [0, 1]",
		"upstream-tls: {server-name: x}", "max-connections: 10"))
	next := mustParse(t, listenerYAML("name: a", "listen-addr: unix:///run/a.sock", "endpoints: [a:1]", "allowed-uids: [0]"))
	want := []string{
		"~ listener a",
		"~ listener a allowed-uids: [0, 1] → [0]",
		"~ listener a max-connections: 10 → no limit",
		"~ listener a upstream-tls: set → none",
		`~ listener a upstream-tls.server-name: x → none`,
	}
	if got := Changes(old, next); !slices.Equal(got, want) {
		t.Errorf("Changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
