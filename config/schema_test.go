package config

import (
	"reflect"
	"testing"
)

// TestSchemaFields checks that every key of the schema names a field of
// the struct its level decodes into, of a type its default and its rule
// fit, so that a typo in the table fails here rather than in a decode.
func TestSchemaFields(t *testing.T) {
	seen := make(map[string]bool)
	for i := range schema() {
		sp := &schema()[i]
		if seen[sp.key] {
			t.Errorf("key %q is in the schema twice", sp.key)
		}
		seen[sp.key] = true
		if sp.field == "" {
			if sp.kind == byType || sp.kind == syncKind {
				t.Errorf("key %q has no field", sp.key)
			}
			continue
		}
		root := reflect.ValueOf(&Listener{})
		if sp.at == topOnly {
			root = reflect.ValueOf(&Snapshot{})
		}
		f := fieldOf(root, sp.field)
		switch {
		case !f.IsValid():
			t.Errorf("key %q: no field %s", sp.key, sp.field)
		case sp.def != nil && !reflect.TypeOf(sp.def).ConvertibleTo(f.Type()):
			t.Errorf("key %q: default %v does not fit %s", sp.key, sp.def, f.Type())
		case sp.values != nil && f.Kind() != reflect.String:
			t.Errorf("key %q: enumerated values in a %s", sp.key, f.Type())
		}
	}
}
