// Package kubernetes decodes the Kubernetes examples strictly with the
// Kubernetes API types, so that a misspelt or misplaced field fails here
// and not at `kubectl apply`. It is a module of its own so that the
// gateway's module doesn't carry the Kubernetes API.
package kubernetes

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// decodeStrict decodes the YAML file path into out, failing on unknown or
// duplicate fields, and checks its apiVersion and kind.
func decodeStrict(t *testing.T, path, apiVersion, kind string, out any, typeMeta func() (string, string)) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(raw, out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if v, k := typeMeta(); v != apiVersion || k != kind {
		t.Fatalf("%s: %s %s, want %s %s", path, v, k, apiVersion, kind)
	}
}

// TestManifestsDecodeStrictly decodes the ConfigMap and the DaemonSet as
// the API server would see them, and checks that the DaemonSet runs the
// image the Dockerfile builds, as the user the image runs as.
func TestManifestsDecodeStrictly(t *testing.T) {
	var cm corev1.ConfigMap
	decodeStrict(t, "configmap.yaml", "v1", "ConfigMap", &cm, func() (string, string) { return cm.APIVersion, cm.Kind })
	var ds appsv1.DaemonSet
	decodeStrict(t, "daemonset.yaml", "apps/v1", "DaemonSet", &ds, func() (string, string) { return ds.APIVersion, ds.Kind })

	if len(cm.Data) != 1 {
		t.Errorf("the ConfigMap holds %d files, want 1", len(cm.Data))
	}
	if ds.Namespace != cm.Namespace {
		t.Errorf("the DaemonSet is in %q, the ConfigMap in %q", ds.Namespace, cm.Namespace)
	}
	spec := ds.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	if !strings.HasPrefix(c.Image, "etcd-gateway:") && !strings.Contains(c.Image, "/etcd-gateway:") {
		t.Errorf("image %q is not the etcd-gateway image", c.Image)
	}
	if len(c.Command) != 0 || len(c.Args) == 0 || c.Args[0] != "start" {
		t.Errorf("command %v args %v: want the image's entrypoint with start ...", c.Command, c.Args)
	}

	// The Dockerfile's final USER is the pod's runAsUser.
	docker, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	users := regexp.MustCompile(`(?m)^USER (\d+)`).FindAllStringSubmatch(string(docker), -1)
	if len(users) == 0 {
		t.Fatal("the Dockerfile sets no numeric USER")
	}
	user := users[len(users)-1][1]
	sc := spec.SecurityContext
	if sc == nil || sc.RunAsUser == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Fatal("the pod does not run as a non-root user")
	}
	if got := strconv.FormatInt(*sc.RunAsUser, 10); got != user {
		t.Errorf("runAsUser %s, the Dockerfile's USER %s", got, user)
	}
	if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Error("the container's root file system is not read-only")
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/healthz" {
		t.Error("no readiness probe on /healthz")
	}
}
