package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// compiledSchema compiles JSONSchema's output with a validator of its
// own, which also checks it against the 2020-12 meta-schema.
func compiledSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	return compiledAs(t, "")
}

// compiledAs compiles JSONSchema's output as a schema of the draft
// metaSchema names ("" leaves its own).
func compiledAs(t *testing.T, metaSchema string) *jsonschema.Schema {
	t.Helper()
	data, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the schema is not JSON: %v", err)
	}
	if metaSchema != "" {
		doc.(map[string]any)["$schema"] = metaSchema
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaURL, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(schemaURL)
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return sch
}

// instance reads a config file's content (YAML or TOML by path's
// extension) into the JSON value an editor validates.
func instance(t *testing.T, path string, data []byte) any {
	t.Helper()
	var doc any
	var err error
	if strings.HasSuffix(path, ".toml") {
		err = toml.Unmarshal(data, &doc)
	} else {
		err = yaml.Unmarshal(data, &doc)
	}
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	js, err := json.Marshal(jsonKeys(doc))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// jsonKeys turns YAML's maps of any keys into JSON's maps of strings.
func jsonKeys(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonKeys(e)
		}
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonKeys(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = jsonKeys(e)
		}
	}
	return v
}

// TestJSONSchemaIsStable: two calls give the same bytes, so that the
// committed copy can be compared with the command's output.
func TestJSONSchemaIsStable(t *testing.T) {
	a, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := JSONSchema()
	if !bytes.Equal(a, b) {
		t.Fatal("two calls of JSONSchema differ")
	}
	compiledSchema(t)
}

// TestJSONSchemaHasEveryKey: every key of the key schema is a property
// of the level (or the block) it is written at.
func TestJSONSchemaHasEveryKey(t *testing.T) {
	root := rootSchema()
	defs := root["$defs"].(object)
	props := map[string]object{
		"top":      root["properties"].(object),
		"listener": defs["listener"].(object)["properties"].(object),
	}
	for i := range schema() {
		sp := &schema()[i]
		where := []string{}
		switch {
		case sp.block() != "":
			where = append(where, sp.block())
			props[sp.block()] = defs[sp.block()].(object)["properties"].(object)
		default:
			if sp.in(true) {
				where = append(where, "top")
			}
			if sp.in(false) && sp.kind != listKind {
				where = append(where, "listener")
			}
		}
		for _, w := range where {
			if _, ok := props[w][strings.TrimPrefix(sp.key, sp.block()+".")]; !ok {
				t.Errorf("key %q is not in the JSON schema's %s properties", sp.key, w)
			}
		}
	}
}

// acceptedConfig is a config file the decoder accepts.
type acceptedConfig struct {
	path string
	data []byte
}

// acceptedConfigs returns every config the package's tests accept, the
// shipped examples and the docs' code blocks.
func acceptedConfigs(t *testing.T) []acceptedConfig {
	t.Helper()
	out := []acceptedConfig{
		{"two-listeners.yaml", []byte(twoListenersYAML)},
		{"two-listeners.toml", []byte(twoListenersTOML)},
	}
	for i, form := range goodForms {
		out = append(out, acceptedConfig{fmt.Sprintf("form-%d.yaml", i), []byte(form)})
	}
	for _, path := range []string{"../examples/etcd-gateway.yaml", "../examples/etcd-gateway.toml"} {
		out = append(out, acceptedConfig{path, readFile(t, path)})
	}
	out = append(out, acceptedConfig{"configmap.yaml", []byte(configMapFile(t))})
	for _, doc := range []string{"../docs/configuration.md", "../docs/operations.md", "../README.md"} {
		for i, block := range codeBlocks(string(readFile(t, doc))) {
			out = append(out, acceptedConfig{fmt.Sprintf("%s-%d.%s", filepath.Base(doc), i, block.lang), []byte(block.body)})
		}
	}
	return out
}

// readFile returns the content of path, or fails the test.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// configMapFile returns the config file the Kubernetes example's
// ConfigMap holds.
func configMapFile(t *testing.T) string {
	t.Helper()
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(readFile(t, "../examples/kubernetes/configmap.yaml"), &cm); err != nil {
		t.Fatal(err)
	}
	text, ok := cm.Data["etcd-gateway.yaml"]
	if !ok {
		t.Fatal("the ConfigMap holds no etcd-gateway.yaml")
	}
	return text
}

// codeBlock is a YAML or TOML code block of a Markdown file.
type codeBlock struct{ lang, body string }

// codeBlocks returns the YAML and TOML code blocks of doc.
func codeBlocks(doc string) []codeBlock {
	var out []codeBlock
	for _, lang := range []string{"yaml", "toml"} {
		for _, part := range strings.Split(doc, "```"+lang+"\n")[1:] {
			body, _, _ := strings.Cut(part, "```")
			out = append(out, codeBlock{lang, body})
		}
	}
	return out
}

// goodForms are files in forms the decoder accepts, beyond the examples:
// those of the parse tests, and one of every kind of value.
var goodForms = []string{
	inListener(),
	atTop("log-level: info"),
	listenerYAML("name: a", "listen-addr: '[fe80::1%eth0]:23790'", "endpoints: ['HTTPS://infra0.example.com:2379/', '[::1]:2379', ' 10.0.0.1:2379 ']"),
	listenerYAML("name: a.b_c-1", "listen-addr: :23790", "endpoints: [localhost:1]", "retry-delay: 1h30m", "dial-timeout: 1.5s", "on-endpoint-removed: DRAIN"),
	listenerYAML("name: a", "listen-addr: :1", "endpoints: [a:1]", "retry-delay:", "health-check:", "tls:", "policy:", "allowed-uids:"),
	listenerYAML("name: a", "listen-addr: unix:///run/etcd-gateway/main.sock", "endpoints: [a:1]", "socket-mode: '0600'", "socket-owner: 0",
		"socket-group: '0'", "allowed-uids: [0, '0']", "allowed-gids: 0", "max-connections: 0", "idle-timeout: 0s", "keepalive: 1m"),
	listenerYAML("name: a", "listen-addr: systemd:etcd", "endpoints: [a:1]", "member-sync: false", "on-unhealthy: KEEP"),
	listenerYAML("name: a", "listen-addr: 127.0.0.1:1", "endpoints: [a:1]", "member-sync: ' Off '", "health-check: {type: TCP, interval: 1s, fall: 1, rise: 1000}"),
	listenerYAML("name: a", "listen-addr: 127.0.0.1:65535", "endpoints: []", "discovery-srv: example.com.", "discovery-srv-name: prod_1",
		"insecure-discovery: true", "trusted-ca-file: /ca.pem", "dns-refresh: 1m"),
	listenerYAML("name: a", "listen-addr: 127.0.0.1:1", "endpoints: [a:1]", "upstream-tls: {}", "tls: {cert-file: /c.pem, key-file: /k.pem, client-ca-file: /ca.pem}"),
	listenerYAML("name: a", "listen-addr: 127.0.0.1:1", "endpoints: [a:1]", "upstream-tls: {ca-file: /ca.pem, server-name: etcd.example.com, passthrough: true}"),
	"dns-server: 10.0.0.53:53\ndns-stale-max: 0s\nadmin-addr: ':23800'\nadmin-pprof: true\nupgrade-socket: /run/u.sock\ncontrol-socket: /run/c.sock\n" +
		"log-level: DEBUG\nlog-format: Json\nmember-sync: 30s\nkeepalive: 15s\n" + listenerYAML("name: a", "listen-addr: 127.0.0.1:1", "endpoints: [a:1]"),
	"shutdown-timeout: +2m\ndns-server:\nadmin-addr: ''\n" + listenerYAML("name: a", "listen-addr: '[::]:1'", "endpoints: [a:1]", "discovery-srv: ''"),
}

// TestSchemaAcceptsWhatTheDecoderAccepts: every config the decoder
// accepts in the tests, the examples and the docs, the schema accepts.
func TestSchemaAcceptsWhatTheDecoderAccepts(t *testing.T) {
	checkAccepts(t, compiledSchema(t))
}

// TestSchemaReadsTheSameAsDraft7: the schema uses only what draft 7 has
// too, since the YAML language server validates as draft 7: read as
// draft 7, it accepts and refuses the same files.
func TestSchemaReadsTheSameAsDraft7(t *testing.T) {
	sch := compiledAs(t, "http://json-schema.org/draft-07/schema#")
	checkAccepts(t, sch)
	for name, data := range rejectedConfigs {
		if sch.Validate(instance(t, "gw.yaml", []byte(data))) == nil {
			t.Errorf("%s: read as draft 7, the schema accepts it:\n%s", name, data)
		}
	}
}

// checkAccepts checks that sch accepts every config the decoder accepts.
func checkAccepts(t *testing.T, sch *jsonschema.Schema) {
	t.Helper()
	configs := acceptedConfigs(t)
	for _, c := range configs {
		if _, err := Parse(c.path, c.data); err != nil {
			t.Errorf("%s: the decoder refuses it: %v\n%s", c.path, err, c.data)
			continue
		}
		if err := sch.Validate(instance(t, c.path, c.data)); err != nil {
			t.Errorf("%s: the decoder accepts it, the schema refuses it: %v\n%s", c.path, err, c.data)
		}
	}
	if len(configs) < 20 {
		t.Fatalf("only %d configs found", len(configs))
	}
}

// TestSchemaStricterThanDecoder: what the schema refuses on purpose,
// though the decoder accepts it (docs/configuration.md, "Editor support").
func TestSchemaStricterThanDecoder(t *testing.T) {
	sch := compiledSchema(t)
	for name, data := range map[string]string{
		"a key in capitals": listenerYAML("name: a", "listen-addr: :1", "endpoints: [a:1]", "Retry-Delay: 2s"),
		// The decoder leaves a user or group to the lookup when the
		// listener is applied, which fails for a negative number.
		"a negative user": listenerYAML("name: a", "listen-addr: unix:///run/a.sock", "endpoints: [a:1]", "socket-owner: -1"),
	} {
		if _, err := Parse("gw.yaml", []byte(data)); err != nil {
			t.Errorf("%s: the decoder refuses it: %v", name, err)
		}
		if sch.Validate(instance(t, "gw.yaml", []byte(data))) == nil {
			t.Errorf("%s: the schema accepts it", name)
		}
	}
}

// TestExamplesNameTheSchema: the shipped examples and the docs' full
// examples start with the directive that points an editor at the
// committed schema: the YAML language server's modeline, taplo's
// #:schema for TOML.
func TestExamplesNameTheSchema(t *testing.T) {
	yamlLine, tomlLine := "# yaml-language-server: $schema="+schemaURL, "#:schema "+schemaURL
	files := map[string]string{
		"examples/etcd-gateway.yaml":            string(readFile(t, "../examples/etcd-gateway.yaml")),
		"examples/etcd-gateway.toml":            string(readFile(t, "../examples/etcd-gateway.toml")),
		"the ConfigMap's etcd-gateway.yaml":     configMapFile(t),
		"docs/configuration.md's example":       docExample(t, "YAML (`/etc/etcd-gateway.yaml`):"),
		"docs/configuration.md's TOML example":  docExample(t, "The same in TOML (`/etc/etcd-gateway.toml`):"),
		"docs/configuration.md's smallest file": docExample(t, "The smallest valid file:"),
	}
	for name, text := range files {
		first, _, _ := strings.Cut(text, "\n")
		want := yamlLine
		if strings.Contains(name, "toml") || strings.Contains(name, "TOML") {
			want = tomlLine
		}
		if first != want {
			t.Errorf("%s starts with %q, want %q", name, first, want)
		}
	}
}

// docExample returns the code block that follows intro in
// docs/configuration.md.
func docExample(t *testing.T, intro string) string {
	t.Helper()
	_, rest, ok := strings.Cut(readDoc(t, "configuration.md"), intro+"\n\n```")
	if !ok {
		t.Fatalf("docs/configuration.md has no %q followed by a code block", intro)
	}
	_, body, _ := strings.Cut(rest, "\n")
	return body
}
