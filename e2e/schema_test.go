//go:build linux

package e2e

import (
	"os"
	"testing"
)

// TestSchemaCommand: the binary's schema is the committed copy that the
// examples name.
func TestSchemaCommand(t *testing.T) {
	out, err := gatewayCommand(setup{}, "schema").Output()
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("../docs/etcd-gateway.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(committed) {
		t.Fatal("etcd-gateway schema differs from docs/etcd-gateway.schema.json: regenerate it with go run . schema > docs/etcd-gateway.schema.json")
	}
}
