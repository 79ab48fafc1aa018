// Package buildinfo says which build of the gateway runs, in one place for
// `etcd-gateway version`, /status, the status page and the build_info
// metric: the release version when the release build stamped it, else the
// module version (go install ...@v1.2.3), else the VCS revision, so that a
// running binary can always be traced to its source.
package buildinfo

import (
	"fmt"
	"runtime/debug"
)

// release is the release version, stamped by release builds with
//
//	-ldflags "-X github.com/etcd-gateway/etcd-gateway/internal/buildinfo.release=1.2.3"
//
// (scripts/package-deb and the Dockerfile do). It is a variable only
// because -X can set nothing else: only the linker writes it.
var release string

// Release is the stamped release version; "" when the build was not
// stamped.
func Release() string { return release }

// Version describes this build: "1.2.3 (go1.26.8)" for a stamped release,
// else what Describe says of the build info.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	return Describe(release, bi, ok)
}

// Short is the version alone, without the Go version: the release, the
// module version, or "revision REV" (the first 12 digits); "devel" when
// the build carries none of them. It labels the build_info metric.
func Short() string {
	if release != "" {
		return release
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			rev := s.Value
			if len(rev) > 12 {
				rev = rev[:12]
			}
			return "revision " + rev
		}
	}
	return "devel"
}

// Describe describes a build from its stamped release (may be "") and its
// build info: the release, else the module version when built as a module,
// else the VCS revision, its time and whether the tree was modified, as go
// build stamps them from a git checkout; then the Go version.
func Describe(release string, bi *debug.BuildInfo, ok bool) string {
	if !ok {
		if release != "" {
			return release
		}
		return "(no build information)"
	}
	v := release
	if v == "" {
		v = bi.Main.Version
	}
	if v == "" || v == "(devel)" {
		v = vcsVersion(bi.Settings)
	}
	return fmt.Sprintf("%s (%s)", v, bi.GoVersion)
}

// vcsVersion returns "revision REV from TIME", with ", modified" when the
// tree had uncommitted changes, or a note that the build carries no VCS
// information (go run, go test, -buildvcs=false).
func vcsVersion(settings []debug.BuildSetting) string {
	kv := make(map[string]string, len(settings))
	for _, s := range settings {
		kv[s.Key] = s.Value
	}
	rev := kv["vcs.revision"]
	if rev == "" {
		return "devel, built without version or VCS information"
	}
	v := "revision " + rev
	if t := kv["vcs.time"]; t != "" {
		v += " from " + t
	}
	if kv["vcs.modified"] == "true" {
		v += ", modified"
	}
	return v
}
