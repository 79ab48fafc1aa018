package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestDocsExamples checks that every YAML and TOML example in
// docs/configuration.md is a valid configuration, and that the two versions
// of the main example are the same configuration.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Skipf("documentation not found: %v", err)
	}
	var parsed []*Snapshot
	rest := string(doc)
	for {
		start := strings.Index(rest, "```")
		if start < 0 {
			break
		}
		rest = rest[start+3:]
		lang, body, _ := strings.Cut(rest, "\n")
		end := strings.Index(body, "```")
		if end < 0 {
			t.Fatal("unterminated code block")
		}
		rest = body[end+3:]
		if lang != "yaml" && lang != "toml" {
			continue
		}
		s, err := Parse("example."+lang, []byte(body[:end]))
		if err != nil {
			t.Errorf("%s example does not parse: %v\n%s", lang, err, body[:end])
			continue
		}
		s.File = ""
		parsed = append(parsed, s)
	}
	if len(parsed) < 3 {
		t.Fatalf("found %d examples, want at least 3", len(parsed))
	}
	if !reflect.DeepEqual(parsed[0], parsed[1]) {
		t.Errorf("the YAML and TOML examples differ:\n%#v\n%#v", parsed[0], parsed[1])
	}
}

// TestDocsCoverEveryKey checks that docs/configuration.md documents every
// key, block keys included, in a table row.
func TestDocsCoverEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Skipf("documentation not found: %v", err)
	}
	keys := append(topKeys(), listenerKeys()...)
	keys = append(keys, blockKeys(keyHealthCheck)...)
	keys = append(keys, blockKeys(keyUpstreamTLS)...)
	keys = append(keys, blockKeys(keyTLS)...)
	for _, k := range keys {
		if !strings.Contains(string(doc), "| `"+k+"` |") {
			t.Errorf("key %q has no row in docs/configuration.md", k)
		}
	}
}

// TestShippedExamples checks that examples/etcd-gateway.yaml and .toml are
// valid and the same configuration.
func TestShippedExamples(t *testing.T) {
	var got []*Snapshot
	for _, path := range []string{"../examples/etcd-gateway.yaml", "../examples/etcd-gateway.toml"} {
		if _, err := os.Stat(path); err != nil {
			t.Skipf("example not found: %v", err)
		}
		s, err := Load(path)
		if err != nil {
			t.Fatalf("Load(%s): %v", path, err)
		}
		s.File = ""
		got = append(got, s)
	}
	if !reflect.DeepEqual(got[0], got[1]) {
		t.Errorf("the YAML and TOML examples differ:\n%#v\n%#v", got[0], got[1])
	}
}

// TestDocsListEveryKey checks that docs/configuration.md has a table row
// for every key a file may hold, at the top level and in a listener.
func TestDocsListEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Skipf("documentation not found: %v", err)
	}
	_, listenerPart, ok := strings.Cut(string(doc), "## Listener keys")
	if !ok {
		t.Fatal(`no "## Listener keys" section`)
	}
	listenerPart, _, _ = strings.Cut(listenerPart, "\n## ")
	_, topPart, _ := strings.Cut(string(doc), "## Top-level keys")
	topPart, _, _ = strings.Cut(topPart, "\n## ")
	for _, k := range topKeys() {
		if !strings.Contains(topPart, "| `"+k+"` |") {
			t.Errorf("top-level key %q has no row in the top-level table", k)
		}
	}
	for _, k := range listenerKeys() {
		if !strings.Contains(listenerPart, "| `"+k+"` |") {
			t.Errorf("listener key %q has no row in the listener table", k)
		}
	}
}

// TestOperationsExamples checks that every YAML config example in
// docs/operations.md is a valid configuration.
func TestOperationsExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Skipf("documentation not found: %v", err)
	}
	n := 0
	for _, block := range strings.Split(string(doc), "```yaml\n")[1:] {
		body, _, ok := strings.Cut(block, "```")
		if !ok {
			t.Fatal("unterminated code block")
		}
		if _, err := Parse("example.yaml", []byte(body)); err != nil {
			t.Errorf("example does not parse: %v\n%s", err, body)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no YAML example found")
	}
}

// TestDocsTopLevelDefaults checks that the default column of the top-level
// table in docs/configuration.md gives the value a file without the key
// really gets, for the keys whose default is a word.
func TestDocsTopLevelDefaults(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Skipf("documentation not found: %v", err)
	}
	s, err := Parse("min.yaml", []byte("listeners: [{name: a, listen-addr: \":1\", endpoints: [\"a:1\"]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	l := s.Listeners[0]
	for key, got := range map[string]string{
		keyOnUnhealthy:       l.OnUnhealthy,
		keyPolicy:            l.Policy,
		keyOnEndpointRemoved: l.OnEndpointRemoved,
		keyLogLevel:          s.LogLevel,
		keyLogFormat:         s.LogFormat,
	} {
		row := "| `" + key + "` | string | `" + got + "` |"
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/configuration.md lacks the row %q: the default of %s is %q", row, key, got)
		}
	}
}

// TestDocsFlagDefaults checks that docs/configuration.md names the
// settings where a gateway run on etcd's flags differs from a file.
func TestDocsFlagDefaults(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Skipf("documentation not found: %v", err)
	}
	_, section, ok := strings.Cut(string(doc), "## Command-line flags")
	if !ok {
		t.Fatal(`no "## Command-line flags" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	section = strings.Join(strings.Fields(section), " ")
	s, err := FromFlags(DefaultFlags())
	if err != nil {
		t.Fatal(err)
	}
	l := s.Listeners[0]
	for _, want := range []string{
		"`" + keyCheckType + "` is `" + l.HealthCheck.Type + "`",
		"`" + keyOnUnhealthy + "` is `" + l.OnUnhealthy + "`",
	} {
		if !strings.Contains(section, want) {
			t.Errorf("the command-line flags section does not say %q", want)
		}
	}
}
