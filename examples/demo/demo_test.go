package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
)

// TestDemoRuns runs the README's first command in check mode: two real
// clusters, the gateway on the written config, a put and get through each
// listener.
func TestDemoRuns(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out, freeAddr(t), freeAddr(t), true); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if n := strings.Count(out.String(), ": ok"); n != 2 {
		t.Fatalf("demo printed %d successful checks, want 2:\n%s", n, out.String())
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
