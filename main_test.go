package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// execute runs the CLI with args and returns its stdout, stderr and an
// error when the exit code is not 0.
func execute(args ...string) (string, string, error) {
	out, errOut, code := executeCode(args...)
	if code != 0 {
		return out, errOut, fmt.Errorf("exit code %d", code)
	}
	return out, errOut, nil
}

// executeCode runs the CLI with args and returns its stdout, stderr and
// exit code.
func executeCode(args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	code := runCLI(args, &out, &errOut)
	return out.String(), errOut.String(), code
}

// TestCommandLineMistakes checks that a typo in the command line is never
// silent: the error and the usage on stderr, exit code 2.
func TestCommandLineMistakes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"strat", "--config", "x"}, []string{`unknown command "strat" for "etcd-gateway"`, "Did you mean this?", "start", "Usage:"}},
		{[]string{"check", "x", "y"}, []string{`unknown command "x" for "etcd-gateway check"`, "Usage:\n  etcd-gateway check"}},
		{[]string{"start", "--confg", "x"}, []string{"unknown flag: --confg", "Usage:\n  etcd-gateway start"}},
		{[]string{"version", "now"}, []string{`unknown command "now"`, "Usage:\n  etcd-gateway version"}},
	} {
		out, errOut, code := executeCode(tc.args...)
		if code != exitUsage {
			t.Errorf("%q: exit code %d, want %d", tc.args, code, exitUsage)
		}
		if out != "" {
			t.Errorf("%q: stdout %q, want nothing", tc.args, out)
		}
		for _, want := range tc.want {
			if !strings.Contains(errOut, want) {
				t.Errorf("%q: stderr lacks %q:\n%s", tc.args, want, errOut)
			}
		}
	}
	// A command that runs and fails is no usage error.
	_, errOut, code := executeCode("check", "--config", filepath.Join(t.TempDir(), "none.yaml"))
	if code != exitFailure || strings.Contains(errOut, "Usage:") || !strings.Contains(errOut, "none.yaml") {
		t.Errorf("check of a missing file: exit code %d, stderr %q; want %d, the error and no usage", code, errOut, exitFailure)
	}
}
