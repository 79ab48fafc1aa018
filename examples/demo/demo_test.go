package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// TestDemoRuns runs the README's first command in check mode: two real
// clusters, the gateway on the written config, a put and get through each
// listener, and the admin server's /healthz.
func TestDemoRuns(t *testing.T) {
	var out bytes.Buffer
	addrs := demoAddrs{main: testutil.ListenAddr(t), events: testutil.ListenAddr(t), admin: testutil.ListenAddr(t)}
	if err := run(context.Background(), &out, addrs, true); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if n := strings.Count(out.String(), ": ok"); n != 2 {
		t.Fatalf("demo printed %d successful checks, want 2:\n%s", n, out.String())
	}
	if want := "admin server on http://" + addrs.admin + ": /healthz ok"; !strings.Contains(out.String(), want) {
		t.Fatalf("demo output lacks %q:\n%s", want, out.String())
	}
}

// TestReadmeNamesDemoFlags checks that the README names every flag of the
// demo, with its default address.
func TestReadmeNamesDemoFlags(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Skipf("README not found: %v", err)
	}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	defineFlags(fs, &demoAddrs{})
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		if !strings.Contains(string(readme), "`-"+f.Name+"`") {
			t.Errorf("README does not name the demo flag -%s", f.Name)
		}
		if f.DefValue != "false" && !strings.Contains(string(readme), "`"+f.DefValue+"`") {
			t.Errorf("README does not give -%s's default %s", f.Name, f.DefValue)
		}
	})
	if n != 4 {
		t.Errorf("the demo has %d flags, want 4", n)
	}
}
