package main

import (
	"strings"
	"testing"
)

func TestStartRejectsConfigWithListenerFlags(t *testing.T) {
	_, errOut, err := execute("start", "--config", "examples/etcd-gateway.yaml", "--listen-addr", "127.0.0.1:1")
	if err == nil || !strings.Contains(errOut, "--listen-addr") {
		t.Fatalf("err=%v stderr=%q, want a refusal naming --listen-addr", err, errOut)
	}
}
