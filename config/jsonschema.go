package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// schemaURL is where the committed copy of JSONSchema's output is
// published: the examples' modelines point editors at it.
const schemaURL = "https://raw.githubusercontent.com/etcd-gateway/etcd-gateway/main/docs/etcd-gateway.schema.json"

// docsURL is the page whose tables the keys' descriptions point to.
const docsURL = "https://github.com/etcd-gateway/etcd-gateway/blob/main/docs/configuration.md"

// object is a JSON Schema, or a part of one.
type object = map[string]any

// JSONSchema returns a JSON Schema (draft 2020-12) of the configuration
// file, for editors: completion, types, defaults, allowed values and
// error marks while the file is written. It is built from the key schema,
// as the decoder is, so that a key added there appears in it by itself.
// It checks what a value's form shows; what needs the host, the other
// listeners or several keys at once is the decoder's alone. The output is
// stable (sorted keys, two-space indentation), so that a committed copy
// can be compared with it.
func JSONSchema() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rootSchema()); err != nil {
		return nil, fmt.Errorf("json schema: %w", err)
	}
	return buf.Bytes(), nil
}

// rootSchema is the schema of the whole file: the top level, with the
// listener and the blocks as definitions.
func rootSchema() object {
	s := levelSchema(true)
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["$id"] = schemaURL
	s["title"] = "etcd-gateway configuration file"
	s["description"] = "The config file of etcd-gateway (YAML or TOML). Every key: " + docsURL +
		". `etcd-gateway check --config FILE` checks what the schema can't."
	s["required"] = []string{keyListeners}
	defs := object{"listener": listenerSchema()}
	for _, sp := range schema() {
		if sp.kind == blockKind {
			defs[sp.key] = blockSchema(sp.key)
		}
	}
	s["$defs"] = defs
	return s
}

// levelSchema is the table of the top level (top) or of a listener: its
// keys, and no other, since the decoder refuses unknown keys.
func levelSchema(top bool) object {
	props := object{}
	for _, sp := range specsOf(top) {
		props[sp.key] = keyJSONSchema(sp, top)
	}
	return object{"type": "object", "properties": props, "additionalProperties": false}
}

// listenerSchema is one element of the listeners list: a name, an
// address, and exactly one of a non-empty endpoints list and
// discovery-srv.
func listenerSchema() object {
	s := levelSchema(false)
	s["description"] = "A listener: name, listen-addr, and exactly one of endpoints (a non-empty list) and discovery-srv."
	s["required"] = []string{keyName, keyListenAddr}
	s["oneOf"] = []object{
		{"required": []string{keyEndpoints}, "properties": object{keyEndpoints: object{"type": "array", "minItems": 1}}},
		{"required": []string{keyDiscoverySRV}, "properties": object{keyDiscoverySRV: object{"type": "string", "minLength": 1}}},
	}
	return s
}

// blockSchema is the table of a block's keys, written without the block's
// name; an empty value is the block left out.
func blockSchema(block string) object {
	props := object{}
	var required []string
	for _, key := range blockKeys(block) {
		short := strings.TrimPrefix(key, block+".")
		props[short] = keyJSONSchema(specOf(key), false)
		if requiredKey(key) {
			required = append(required, short)
		}
	}
	s := object{"type": []string{"object", "null"}, "properties": props, "additionalProperties": false}
	if required != nil {
		s["required"] = required
	}
	return s
}

// requiredKey reports whether a key must be written, with a value: a
// listener's name and address, and a tls block's certificate and key.
func requiredKey(key string) bool {
	switch key {
	case keyName, keyListenAddr, keyTLSCertFile, keyTLSKeyFile:
		return true
	}
	return false
}

// keyJSONSchema is the schema of the value of the key sp, at the top level
// (top) or in a listener, with its description and its default. A key
// with an empty value counts as left out, so an optional key takes null.
func keyJSONSchema(sp *spec, top bool) object {
	s := valueSchema(sp)
	if sp.kind != listKind && !requiredKey(sp.key) {
		s = orNull(s)
	}
	s["description"] = keyDescription(sp, top)
	if def, ok := defaultOf(sp); ok {
		s["default"] = def
	}
	return s
}

// orNull makes s take null too.
func orNull(s object) object {
	switch t := s["type"].(type) {
	case string:
		s["type"] = []string{t, "null"}
		return s
	case []string:
		s["type"] = append(t, "null")
		return s
	}
	return object{"anyOf": []object{{"type": "null"}, s}}
}

// valueSchema is the form of the values the decoder converts for sp; see
// converter.
func valueSchema(sp *spec) object {
	switch sp.kind {
	case listKind:
		return object{"type": "array", "minItems": 1, "items": object{"$ref": "#/$defs/listener"}}
	case blockKind:
		return object{"$ref": "#/$defs/" + sp.key}
	case syncKind:
		return object{"anyOf": []object{{"const": false}, kindForm(syncKind).schema(), durationSchema(above0)}}
	case endpointsKind:
		return object{"type": "array", "items": kindForm(endpointsKind).schema()}
	case idKind:
		return idSchema()
	case idsKind:
		return object{"anyOf": []object{orNull(idSchema()), {"type": "array", "items": orNull(idSchema())}}}
	case modeKind:
		return kindForm(modeKind).schema()
	}
	return typedSchema(sp)
}

// idSchema is a user or group: a name, or a number.
func idSchema() object {
	return object{"type": []string{"string", "integer"}, "minimum": 0, "maximum": int64(1<<32 - 1)}
}

// typedSchema is the form of a key decoded by the type of its field.
func typedSchema(sp *spec) object {
	f := fieldOf(rootOf(sp), sp.field)
	switch {
	case f.Type() == reflect.TypeFor[time.Duration]():
		return durationSchema(sp.rule)
	case sp.values != nil:
		return object{"type": "string", "anyOf": []object{{"enum": sp.values}, {"pattern": "^(" + anyCase(sp.values...) + ")$"}}}
	case f.Kind() == reflect.String:
		return stringSchema(sp.key)
	case f.Kind() == reflect.Bool:
		return object{"type": "boolean"}
	case f.Kind() == reflect.Int:
		return intSchema(sp.rule)
	}
	return object{}
}

// rootOf returns a pointer to a zero struct of the level sp's field is in.
func rootOf(sp *spec) reflect.Value {
	if sp.at == topOnly {
		return reflect.ValueOf(&Snapshot{})
	}
	return reflect.ValueOf(&Listener{})
}

// intSchema is a whole number that obeys r.
func intSchema(r rule) object {
	s := object{"type": "integer"}
	switch r {
	case atLeast0:
		s["minimum"] = 0
	case checksInRow:
		s["minimum"], s["maximum"] = minFallRise, maxFallRise
	}
	return s
}

// stringSchema is a string, in the form its key takes when it has one.
func stringSchema(key string) object {
	s := object{"type": "string"}
	if f := stringForm(key); f.pattern != "" {
		s = f.schema()
	}
	if requiredKey(key) {
		s["minLength"] = 1
	}
	return s
}

// keyDescription is what an editor shows of the key sp: its type as the
// docs' table gives it, its rule, what leaving it out means, and where
// its row is.
func keyDescription(sp *spec, top bool) string {
	var b strings.Builder
	b.WriteString(strings.ReplaceAll(sp.doc, "`", ""))
	if r := ruleText(sp); r != "" {
		b.WriteString(", " + r)
	}
	b.WriteString(".")
	if sp.none != "" {
		fmt.Fprintf(&b, " Not set: %s.", sp.none)
	}
	section := "#listener-keys"
	if top && sp.at == inherited {
		fmt.Fprintf(&b, " The default of every listener that leaves %s out.", sp.key)
	}
	if top {
		section = "#top-level-keys"
	}
	fmt.Fprintf(&b, " %s%s", docsURL, section)
	return b.String()
}

// ruleText says the rule of sp in words, or "".
func ruleText(sp *spec) string {
	if sp.kind == listKind {
		return "at least one listener"
	}
	switch sp.rule {
	case oneOf:
		return "one of " + strings.Join(sp.values, ", ") + " (in any case)"
	case above0:
		return "greater than zero"
	case atLeast0:
		return fmt.Sprintf("0 (%s) or more", sp.zero)
	case checksInRow:
		return fmt.Sprintf("%d to %d checks in a row", minFallRise, maxFallRise)
	case keepAliveRule:
		return fmt.Sprintf("whole seconds from %s to %s", fmtDuration(minKeepAlive), fmtDuration(maxKeepAlive))
	case syncRule:
		return "greater than zero, or off"
	case modeRule:
		return `from "0" to "0777", quoted`
	}
	return ""
}

// defaultOf returns the default of sp as the file writes it, and whether
// it has one to show: the built-in default, else the zero value of a
// boolean, a number or a duration (off, or no limit).
func defaultOf(sp *spec) (any, bool) {
	if sp.field == "" {
		return nil, false
	}
	v := fieldOf(rootOf(sp), sp.field)
	if sp.def != nil {
		v = reflect.ValueOf(sp.def)
	}
	switch {
	case sp.kind == syncKind:
		return memberSyncOff, true
	case v.Type() == reflect.TypeFor[time.Duration]():
		return fmtDuration(time.Duration(v.Int())), true
	case v.Kind() == reflect.String && v.String() != "":
		return v.String(), true
	case v.Kind() == reflect.Bool || v.Kind() == reflect.Int:
		return v.Interface(), true
	}
	return nil, false
}
