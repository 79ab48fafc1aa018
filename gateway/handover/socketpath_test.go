package handover

import "testing"

func TestSocketPath(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	systemd := env(map[string]string{"RUNTIME_DIRECTORY": "/run/etcd-gateway:/run/other"})
	for _, c := range []struct {
		flag, key string
		getenv    func(string) string
		want      string
	}{
		{"/a.sock", "/b.sock", systemd, "/a.sock"},
		{"", "/b.sock", systemd, "/b.sock"},
		{"", "", systemd, "/run/etcd-gateway/upgrade.sock"},
		{"", "", env(nil), ""},
	} {
		if got := SocketPath(c.flag, c.key, c.getenv); got != c.want {
			t.Errorf("SocketPath(%q, %q) = %q, want %q", c.flag, c.key, got, c.want)
		}
	}
}
