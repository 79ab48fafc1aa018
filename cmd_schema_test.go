package main

import (
	"os"
	"testing"
)

// schemaCopy is the committed copy of `etcd-gateway schema`, which the
// examples' modelines point editors at.
const schemaCopy = "docs/etcd-gateway.schema.json"

// TestSchemaCommandPrintsTheCommittedCopy keeps the committed copy equal
// to what the command prints.
func TestSchemaCommandPrintsTheCommittedCopy(t *testing.T) {
	out, errOut, err := execute("schema")
	if err != nil {
		t.Fatalf("schema: %v\n%s", err, errOut)
	}
	committed, err := os.ReadFile(schemaCopy)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(committed) {
		t.Fatalf("%s differs from the output of etcd-gateway schema: regenerate it with\n\tgo run . schema > %s", schemaCopy, schemaCopy)
	}
}
