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
