package buildinfo

import (
	"runtime/debug"
	"testing"
)

// TestReleaseWinsOverBuildInfo: a stamped release is what a build says it
// is, whatever the module version or the VCS revision.
func TestReleaseWinsOverBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26", Main: debug.Module{Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef"}}}
	if got, want := Describe("1.4.0", bi, true), "1.4.0 (go1.26)"; got != want {
		t.Errorf("stamped: %q, want %q", got, want)
	}
	if got, want := Describe("", bi, true), "revision 0123456789abcdef (go1.26)"; got != want {
		t.Errorf("unstamped: %q, want %q", got, want)
	}
	if got, want := Describe("1.4.0", nil, false), "1.4.0"; got != want {
		t.Errorf("stamped, no build info: %q, want %q", got, want)
	}
}
