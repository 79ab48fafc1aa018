package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestWithFileDigestsSeesRenewedFiles: Parse stays off the file system;
// Load digests the referenced files, so that a file rewritten under the
// same name makes the snapshot differ.
func TestWithFileDigestsSeesRenewedFiles(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "gw.pem")
	if err := os.WriteFile(cert, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gw.yaml")
	text := "listeners:\n  - name: a\n    listen-addr: 127.0.0.1:1\n    endpoints: [a:1]\n    tls: {cert-file: " + cert + ", key-file: " + cert + "}\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	parsed, err := Parse(path, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Listeners[0].FilesDigest != "" {
		t.Fatal("Parse read the referenced files")
	}
	if got := parsed.Files(); !reflect.DeepEqual(got, []string{cert}) {
		t.Fatalf("Files() = %q", got)
	}
	a, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.Listeners[0].FilesDigest == "" || !reflect.DeepEqual(a, b) {
		t.Fatalf("digests: %q and %q", a.Listeners[0].FilesDigest, b.Listeners[0].FilesDigest)
	}
	if err := os.WriteFile(cert, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(a, c) {
		t.Fatal("a renewed file left the snapshot unchanged")
	}
}
