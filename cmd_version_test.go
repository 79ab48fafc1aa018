package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	out, _, err := execute("version")
	if err != nil || !strings.HasPrefix(out, "etcd-gateway ") || strings.Contains(out, "(devel)") {
		t.Fatalf("version: %q %v", out, err)
	}
	flagOut, _, err := execute("--version")
	if err != nil || flagOut != out {
		t.Fatalf("--version printed %q (%v), want what version prints: %q", flagOut, err, out)
	}
}

func TestVersionFromBuildInfo(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-11-20T10:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	for _, tc := range []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"module version", debug.BuildInfo{GoVersion: "go1.26", Main: debug.Module{Version: "v1.2.3"}, Settings: vcs},
			"v1.2.3 (go1.26)"},
		{"git checkout", debug.BuildInfo{GoVersion: "go1.26", Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			"revision 0123456789abcdef0123456789abcdef01234567 from 2026-11-20T10:00:00Z, modified (go1.26)"},
		{"clean checkout", debug.BuildInfo{GoVersion: "go1.26", Main: debug.Module{Version: "(devel)"}, Settings: vcs[:3]},
			"revision 0123456789abcdef0123456789abcdef01234567 from 2026-11-20T10:00:00Z (go1.26)"},
		{"no VCS information", debug.BuildInfo{GoVersion: "go1.26", Main: debug.Module{Version: "(devel)"}},
			"devel, built without version or VCS information (go1.26)"},
	} {
		if got := version(&tc.bi, true); got != tc.want {
			t.Errorf("%s: version = %q, want %q", tc.name, got, tc.want)
		}
	}
}
