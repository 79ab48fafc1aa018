package gateway

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// statusDocs returns the /status section of docs/operations.md.
func statusDocs(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Skipf("documentation not found: %v", err)
	}
	_, section, ok := strings.Cut(string(doc), "### /status\n")
	if !ok {
		t.Fatal(`docs/operations.md has no "### /status" section`)
	}
	section, _, _ = strings.Cut(section, "\n### ")
	return section
}

// jsonFields returns the JSON names of the fields of t and of the structs
// it holds, depth first.
func jsonFields(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeOf(time.Time{}) {
		return nil
	}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		names = append(names, name)
		names = append(names, jsonFields(f.Type)...)
	}
	return names
}

// TestStatusDocsCoverEveryField holds the /status documentation to the
// code: every JSON field of Status, and every value of an endpoint's state
// and health, is named in it.
func TestStatusDocsCoverEveryField(t *testing.T) {
	doc := statusDocs(t)
	fields := jsonFields(reflect.TypeOf(Status{}))
	if len(fields) < 30 {
		t.Fatalf("found only %d JSON fields in Status: %v", len(fields), fields)
	}
	for _, f := range fields {
		if !strings.Contains(doc, "`"+f+"`") {
			t.Errorf("/status field %q is not documented in docs/operations.md", f)
		}
	}
	for _, v := range endpointValues() {
		if !strings.Contains(doc, "`"+v+"`") {
			t.Errorf("endpoint state or health %q is not documented in docs/operations.md", v)
		}
	}
}
