package config

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// readDoc returns the content of docs/name, and skips the test when it
// is not there.
func readDoc(t *testing.T, name string) string {
	t.Helper()
	doc, err := os.ReadFile("../docs/" + name)
	if err != nil {
		t.Skipf("documentation not found: %v", err)
	}
	return string(doc)
}

// sameConfig reports a YAML and a TOML example that are not the same
// configuration.
func sameConfig(t *testing.T, yaml, toml *Snapshot) {
	t.Helper()
	if !reflect.DeepEqual(yaml, toml) {
		t.Errorf("the YAML and TOML examples differ:\n%#v\n%#v", yaml, toml)
	}
}

// TestDocsExamples checks that every YAML and TOML example in
// docs/configuration.md is a valid configuration, and that the two versions
// of the main example are the same configuration.
func TestDocsExamples(t *testing.T) {
	doc := readDoc(t, "configuration.md")
	var parsed []*Snapshot
	rest := doc
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
	sameConfig(t, parsed[0], parsed[1])
}

// TestDocsCoverEveryKey checks that docs/configuration.md documents every
// key of the schema, block keys included, in a table row whose type is the
// schema's and whose default column gives the schema's default.
func TestDocsCoverEveryKey(t *testing.T) {
	doc := readDoc(t, "configuration.md")
	top, listener := docSection(t, doc, "## Top-level keys"), docSection(t, doc, "## Listener keys")
	for i := range schema() {
		sp := &schema()[i]
		switch {
		case sp.block() != "":
			checkDocRow(t, doc, sp, false)
		default:
			if sp.in(true) {
				checkDocRow(t, top, sp, false)
			}
			if sp.in(false) {
				checkDocRow(t, listener, sp, sp.at == inherited)
			}
		}
	}
}

// docSection returns the part of doc under the heading, up to the next
// heading of its level.
func docSection(t *testing.T, doc, heading string) string {
	t.Helper()
	_, part, ok := strings.Cut(doc, heading+"\n")
	if !ok {
		t.Fatalf("no %q section", heading)
	}
	part, _, _ = strings.Cut(part, "\n## ")
	return part
}

// checkDocRow checks the table row of the key sp in part: its type
// column, and its default column, which starts with "inherited, " for a
// listener's inherited key.
func checkDocRow(t *testing.T, part string, sp *spec, inheritedRow bool) {
	t.Helper()
	_, row, ok := strings.Cut(part, "\n| `"+sp.key+"` | ")
	if !ok {
		t.Errorf("key %q has no row in docs/configuration.md (in its section)", sp.key)
		return
	}
	row, _, _ = strings.Cut(row, "\n")
	cols := strings.Split(row, " | ")
	if len(cols) < 3 {
		t.Errorf("row of %q has %d columns", sp.key, len(cols)+1)
		return
	}
	if cols[0] != sp.doc {
		t.Errorf("key %q: docs give the type %q, the schema %q", sp.key, cols[0], sp.doc)
	}
	if inheritedRow && !strings.HasPrefix(cols[1], "inherited") {
		t.Errorf("key %q: docs give the default %q for a listener, want it inherited", sp.key, cols[1])
	}
	if def := docDefault(sp); def != "" && !strings.Contains(cols[1], "`"+def+"`") {
		t.Errorf("key %q: docs give the default %q, the schema `%s`", sp.key, cols[1], def)
	}
}

// docDefault returns the schema's default of sp as the docs write it, or
// "" when it has none to show (an empty string, a block, a list).
func docDefault(sp *spec) string {
	if sp.field == "" {
		return ""
	}
	s := &Snapshot{}
	setDefaults(reflect.ValueOf(s), true)
	l := defaultListener()
	root := reflect.ValueOf(&l)
	if sp.at == topOnly {
		root = reflect.ValueOf(s)
	}
	f := fieldOf(root, sp.field)
	switch {
	case sp.kind == syncKind && f.Int() == 0:
		return memberSyncOff
	case f.Type() == reflect.TypeFor[time.Duration]():
		return fmtDuration(time.Duration(f.Int()))
	case f.Kind() == reflect.Slice:
		return ""
	}
	return fmt.Sprint(f.Interface())
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
	sameConfig(t, got[0], got[1])
}

// TestDocsListEveryKey checks that docs/configuration.md has a table row
// for every key a file may hold, at the top level and in a listener, and
// one for every flag of etcd's gateway.
func TestDocsListEveryKey(t *testing.T) {
	doc := readDoc(t, "configuration.md")
	listenerPart := docSection(t, doc, "## Listener keys")
	topPart := docSection(t, doc, "## Top-level keys")
	flagPart := docSection(t, doc, "## Command-line flags")
	for _, k := range topKeys() {
		if !strings.Contains(topPart, "| `"+k+"` |") {
			t.Errorf("top-level key %q has no row in the top-level table", k)
		}
	}
	for _, k := range listenerKeys() {
		if !strings.Contains(listenerPart, "| `"+k+"` |") {
			t.Errorf("listener key %q has no row in the listener table", k)
		}
		if f := flagFor(k); f != "" && !strings.Contains(flagPart, "| `"+f+"` |") {
			t.Errorf("flag %s has no row in the flags table", f)
		}
	}
}

// TestOperationsExamples checks that every YAML config example in
// docs/operations.md is a valid configuration.
func TestOperationsExamples(t *testing.T) {
	doc := readDoc(t, "operations.md")
	n := 0
	for _, block := range strings.Split(doc, "```yaml\n")[1:] {
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
	doc := readDoc(t, "configuration.md")
	s, err := Parse("min.yaml", []byte("listeners: [{name: a, listen-addr: \":1\", endpoints: [\"a:1\"]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	l := s.Listeners[0]
	for key, got := range map[string]string{
		keyOnUnhealthy:       string(l.OnUnhealthy),
		keyPolicy:            string(l.Policy),
		keyOnEndpointRemoved: string(l.OnEndpointRemoved),
		keyLogLevel:          s.LogLevel,
		keyLogFormat:         s.LogFormat,
	} {
		row := "| `" + key + "` | string | `" + got + "` |"
		if !strings.Contains(doc, row) {
			t.Errorf("docs/configuration.md lacks the row %q: the default of %s is %q", row, key, got)
		}
	}
}

// TestDocsFlagDefaults checks that docs/configuration.md names the
// settings where a gateway run on etcd's flags differs from a file.
func TestDocsFlagDefaults(t *testing.T) {
	doc := readDoc(t, "configuration.md")
	_, section, ok := strings.Cut(doc, "## Command-line flags")
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
		"`" + keyCheckType + "` is `" + string(l.HealthCheck.Type) + "`",
		"`" + keyOnUnhealthy + "` is `" + string(l.OnUnhealthy) + "`",
	} {
		if !strings.Contains(section, want) {
			t.Errorf("the command-line flags section does not say %q", want)
		}
	}
}
