package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// strictDecoding turns off viper's weak typing and decode hooks: values are
// converted by convert, never silently (an integer is not a duration in
// nanoseconds, a map is not a one-element list).
func strictDecoding(c *mapstructure.DecoderConfig) {
	c.WeaklyTypedInput = false
	c.DecodeHook = nil
}

// decode turns the configuration read by v into a validated snapshot.
func decode(path string, v *viper.Viper) (*Snapshot, error) {
	c := newCollector(false)

	// Unknown keys, and the shape of the listeners list, first: the walk
	// reports every one of them, with its listener.
	shape := walk(c, v)
	top, listeners := decodeRaw(c, v, shape)
	s := convert(c, path, top, listeners, shape)
	validateSnapshot(s, c)
	if err := c.err(path, func(idx int) string { return listenerLabel(s.Listeners, idx) }); err != nil {
		return nil, err
	}
	return s, nil
}

// decodeRaw runs viper's strict decoding, into the structs rawType builds
// from the schema, and returns the values of the top level and of each
// listener by key. The walk has found whatever makes the decoding fail;
// it is run anyway as a backstop, and what it decoded is used even when
// it reports unknown keys, so that all problems are listed.
func decodeRaw(c *collector, v *viper.Viper, shape listenersShape) (map[string]any, []map[string]any) {
	raw := reflect.New(rawType(true))
	if err := v.UnmarshalExact(raw.Interface(), strictDecoding); err != nil && len(c.list) == 0 {
		c.add(topLevel, "", "cannot decode: %v", err)
	}
	list := raw.Elem().FieldByName(rawListeners)
	switch {
	case !shape.ok:
		return rawValues(raw.Elem(), true), nil
	case list.Len() != shape.n:
		if len(c.list) == 0 {
			c.add(topLevel, keyListeners, "cannot decode: %d listeners found, %d decoded", shape.n, list.Len())
		}
		c.markBad(topLevel, keyListeners)
		return rawValues(raw.Elem(), true), nil
	}
	listeners := make([]map[string]any, list.Len())
	for i := range listeners {
		listeners[i] = rawValues(list.Index(i), false)
	}
	return rawValues(raw.Elem(), true), listeners
}

// rawListeners is the name of the listeners field of the top level's
// rawType.
const rawListeners = "Listeners"

// rawType returns the struct viper decodes a level into (top, or a
// listener): a field of type any per key, so that decoding fails only on
// unknown keys and type errors are reported by convert with the key, the
// listener and a useful message; the listeners are a list of structs.
func rawType(top bool) reflect.Type {
	specs := specsOf(top)
	fields := make([]reflect.StructField, len(specs))
	for i, sp := range specs {
		fields[i] = reflect.StructField{
			Name: fmt.Sprintf("F%d", i),
			Type: reflect.TypeFor[any](),
			Tag:  reflect.StructTag(fmt.Sprintf("mapstructure:%q", sp.key)),
		}
		if sp.kind == listKind {
			fields[i].Name, fields[i].Type = rawListeners, reflect.SliceOf(rawType(false))
		}
	}
	return reflect.StructOf(fields)
}

// rawValues returns the values of a struct of rawType(top) by key,
// leaving out the absent ones (nil) and the listeners.
func rawValues(v reflect.Value, top bool) map[string]any {
	m := make(map[string]any)
	for i, sp := range specsOf(top) {
		if sp.kind == listKind {
			continue
		}
		if x := v.Field(i).Interface(); x != nil {
			m[sp.key] = x
		}
	}
	return m
}

// convert builds the snapshot from the values of the top level and of
// each listener, applying defaults and inheritance, and reports to c
// every value of the wrong type.
func convert(c *collector, path string, top map[string]any, listeners []map[string]any, shape listenersShape) *Snapshot {
	cv := converter{c}
	s := &Snapshot{File: path}
	setDefaults(reflect.ValueOf(s), true)
	cv.decodeKeys(topLevel, top, reflect.ValueOf(s), levelSpecs(topOnly))
	if !shape.ok {
		// Do not also report "no listeners".
		c.markBad(topLevel, keyListeners)
	}
	def := cv.topDefaults(top)
	s.Listeners = make([]Listener, len(listeners))
	for i, m := range listeners {
		if shape.badElem[i] {
			// Already reported: keep quiet about its keys.
			for _, k := range listenerKeys() {
				c.markBad(i, k)
			}
			continue
		}
		s.Listeners[i] = cv.listener(i, m, def)
	}
	return s
}

// topDefaults converts the top-level values of the inherited keys: the
// defaults of every listener. They are checked here, once, and a listener
// inheriting a bad one does not report it again.
func (cv converter) topDefaults(m map[string]any) Listener {
	def := defaultListener()
	def.HealthCheck.Timeout = timeoutUnset // until a level sets it
	cv.decodeKeys(topLevel, m, reflect.ValueOf(&def), levelSpecs(inherited))
	checked := def
	checked.HealthCheck = checkTimeout(def.HealthCheck)
	checkRules(cv.c, topLevel, reflect.ValueOf(&checked), levelSpecs(inherited))
	checkCheckTimeout(cv.c, topLevel, checked.HealthCheck)
	return def
}

// listener converts one listener; def holds the inherited defaults.
func (cv converter) listener(i int, m map[string]any, def Listener) Listener {
	l := def
	cv.decodeKeys(i, m, reflect.ValueOf(&l), levelSpecs(listenerOnly, inherited))
	l.HealthCheck = checkTimeout(l.HealthCheck)
	// A block, even empty, enables TLS to the members.
	_, l.UpstreamTLS.Enabled = m[keyUpstreamTLS].(map[string]any)
	cv.checkEmptyTLS(i, m[keyTLS], l.TLS)
	return l
}

// decodeKeys converts the keys specs of one level (the top level, or the
// listener idx) from m into the fields of root, a *Snapshot or a
// *Listener. A key left out keeps the value root holds: its built-in
// default, or in a listener the top level's value of an inherited key.
// A listener that leaves out an inherited key whose top-level value was
// bad does not report it again: the key is marked bad in it too.
func (cv converter) decodeKeys(idx int, m map[string]any, root reflect.Value, specs []*spec) {
	blocks := make(map[string]map[string]any)
	for _, sp := range specs {
		v := m[sp.key]
		if b := sp.block(); b != "" {
			v = sub(blocks[b], sp.key)
		}
		if v == nil {
			if idx != topLevel && sp.at == inherited && cv.c.isBad(topLevel, sp.key) {
				cv.c.markBad(idx, sp.key)
			}
			continue
		}
		switch sp.kind {
		case blockKind:
			blocks[sp.key] = cv.block(idx, sp.key, v)
		case endpointsKind:
			l := root.Interface().(*Listener)
			l.Endpoints, l.TLSEndpoints = cv.endpoints(idx, v)
		case byType, syncKind, idKind, idsKind, modeKind:
			cv.set(idx, sp, v, fieldOf(root, sp.field))
		}
	}
}

// listenersShape is what walk found of the listeners value.
type listenersShape struct {
	ok      bool         // absent, or a list
	n       int          // length of the list
	badElem map[int]bool // elements that are not tables
}

// walk reports every unknown key, at the top level, in each listener and in
// their blocks (health-check, upstream-tls, tls), and a listeners value that is not a list
// of tables.
func walk(c *collector, v *viper.Viper) listenersShape {
	// AllKeys, unlike AllSettings, also lists the keys whose value is null.
	// Nested keys come as "a.b": a block's key, or a table where a value
	// was expected.
	keys := v.AllKeys()
	slices.Sort(keys)
	known, other := topKeys(), listenerKeys()
	for _, k := range keys {
		top, rest, nested := strings.Cut(k, ".")
		switch {
		case slices.Contains(known, top):
			if sub := blockKeys(top); sub != nil && nested {
				first, _, _ := strings.Cut(rest, ".")
				walkBlockKey(c, topLevel, top+"."+first, sub)
			}
		case slices.Contains(other, top):
			if !c.isBad(topLevel, top) {
				c.add(topLevel, top, "%s", unknownKeyMsg(top, known, other, "a listener key: set it in each listener"))
			}
		default:
			c.add(topLevel, k, "%s", unknownKeyMsg(k, known, other, "a listener key: set it in each listener"))
		}
	}
	return walkListeners(c, v.AllSettings()[keyListeners])
}

// walkListeners reports the unknown keys of each listener of list, and
// list or elements of it that are not tables.
func walkListeners(c *collector, list any) listenersShape {
	switch list := list.(type) {
	case nil:
		return listenersShape{ok: true}
	case []any:
		shape := listenersShape{ok: true, n: len(list), badElem: make(map[int]bool)}
		for i, elem := range list {
			m, isMap := elem.(map[string]any)
			if !isMap {
				c.add(i, "", "a listener must be a table of keys (name, listen-addr, ...), not %s", describeValue(elem))
				shape.badElem[i] = true
				continue
			}
			walkListener(c, i, m)
		}
		return shape
	default:
		c.add(topLevel, keyListeners, "must be a list of listeners (\"- name: ...\" items in YAML, [[listeners]] tables in TOML), not %s", describeValue(list))
		return listenersShape{}
	}
}

// walkListener reports the unknown keys of the listener i, m, and of its
// blocks.
func walkListener(c *collector, i int, m map[string]any) {
	known := listenerKeys()
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(known, k) {
			c.add(i, k, "%s", unknownKeyMsg(k, known, topKeys(), "a top-level key"))
			continue
		}
		block, isBlock := m[k].(map[string]any)
		if sub := blockKeys(k); sub != nil && isBlock {
			for _, bk := range slices.Sorted(maps.Keys(block)) {
				walkBlockKey(c, i, k+"."+bk, sub)
			}
		}
	}
}

// walkBlockKey reports the qualified key of a block when it is not one of
// known.
func walkBlockKey(c *collector, idx int, key string, known []string) {
	if slices.Contains(known, key) || c.isBad(idx, key) {
		return
	}
	// A members' TLS key under tls is most likely meant for upstream-tls:
	// tls is the listener's own.
	if rest, ok := strings.CutPrefix(key, keyTLS+"."); ok && slices.Contains(blockKeys(keyUpstreamTLS), keyUpstreamTLS+"."+rest) {
		c.add(idx, key, "%s; did you mean %q? The members' TLS settings are in the %s block; tls is the TLS the listener serves to its clients",
			unknownKey, keyUpstreamTLS+"."+rest, keyUpstreamTLS)
		return
	}
	c.add(idx, key, "%s", unknownKeyMsg(key, known, nil, ""))
}
