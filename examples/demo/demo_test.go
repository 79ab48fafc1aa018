package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
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

func freeAddr(t *testing.T) string { return testutil.FreeAddr(t) }
