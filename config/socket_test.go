package config

import (
	"strings"
	"testing"
)

// TestLocalListenAddrs checks the unix:// and systemd: listen addresses
// and the keys of unix sockets: what is accepted, and what each mistake
// says.
func TestLocalListenAddrs(t *testing.T) {
	cases := []struct {
		name, listener, want string // want: "" for valid, else part of the error
	}{
		{"unix", `listen-addr: "unix:///run/gw/main.sock"`, ""},
		{"unix keys", `{listen-addr: "unix:///run/gw/a.sock", socket-mode: "0600", socket-owner: root, socket-group: 0, allowed-uids: [0, root], allowed-gids: [root]}`, ""},
		{"systemd", `{listen-addr: "systemd:main", allowed-gids: [0]}`, ""},
		{"relative", `listen-addr: "unix://run/gw.sock"`, "must be absolute"},
		{"one slash", `listen-addr: "unix:/run/gw.sock"`, "unix:///absolute/path"},
		{"too long", `listen-addr: "unix:///` + strings.Repeat("a", 120) + `"`, "at most 107 bytes"},
		{"systemd empty", `listen-addr: "systemd:"`, "write systemd:NAME"},
		{"mode number", `{listen-addr: "unix:///run/gw.sock", socket-mode: 0660}`, "quoted octal string"},
		{"mode bad", `{listen-addr: "unix:///run/gw.sock", socket-mode: "0999"}`, "not a file mode"},
		{"mode too big", `{listen-addr: "unix:///run/gw.sock", socket-mode: "1777"}`, "not a file mode"},
		{"mode on tcp", `{listen-addr: "127.0.0.1:1", socket-mode: "0600"}`, "only valid with a unix:// listen-addr"},
		{"group on systemd", `{listen-addr: "systemd:x", socket-group: "0"}`, "SocketGroup="},
		{"uids on tcp", `{listen-addr: "127.0.0.1:1", allowed-uids: [0]}`, "use a unix socket"},
		{"unknown user: looked up when applied", `{listen-addr: "unix:///run/gw.sock", allowed-uids: [no-such-user-here]}`, ""},
		{"bad name", `{listen-addr: "unix:///run/gw.sock", socket-group: "a:b"}`, "not a user or group name"},
		{"bad id type", `{listen-addr: "unix:///run/gw.sock", allowed-gids: [true]}`, "must be a name or a number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := "listeners:\n  - {name: a, endpoints: [\"127.0.0.1:2379\"]}\n"
			l := c.listener
			if !strings.HasPrefix(l, "{") {
				l = "{" + l + "}"
			}
			doc = strings.Replace(doc, "{name: a, ", l[:len(l)-1]+", name: a, ", 1)
			doc = strings.Replace(doc, "}, name: a", ", name: a", 1)
			_, err := Parse("gw.yaml", []byte(doc))
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("%s: %v", doc, err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("%s: got %v, want an error with %q", doc, err, c.want)
			}
		})
	}
}

// TestDuplicateSocketPaths checks that two listeners can't share a socket
// path, however written, or a systemd socket.
func TestDuplicateSocketPaths(t *testing.T) {
	for _, pair := range [][2]string{
		{"unix:///run/a.sock", "unix:///run//a.sock"},
		{"systemd:x", "systemd:x"},
	} {
		doc := `listeners:
  - {name: a, listen-addr: "` + pair[0] + `", endpoints: ["127.0.0.1:2379"]}
  - {name: b, listen-addr: "` + pair[1] + `", endpoints: ["127.0.0.1:2379"]}
`
		_, err := Parse("gw.yaml", []byte(doc))
		if err == nil || !strings.Contains(err.Error(), "duplicate address") {
			t.Errorf("%v: got %v, want a duplicate address", pair, err)
		}
	}
}

// TestIdentityLeak checks that the warning appears exactly for a listener
// that originates TLS with a client certificate and that every local user
// can connect to.
func TestIdentityLeak(t *testing.T) {
	withCert := UpstreamTLS{Enabled: true, CertFile: "c.pem", KeyFile: "k.pem"}
	cases := []struct {
		name string
		l    Listener
		want bool
	}{
		{"tcp, cert", Listener{ListenAddr: "127.0.0.1:1", UpstreamTLS: withCert}, true},
		{"tcp, no upstream-tls", Listener{ListenAddr: "127.0.0.1:1"}, false},
		{"tcp, tls without cert", Listener{ListenAddr: "127.0.0.1:1", UpstreamTLS: UpstreamTLS{Enabled: true, CAFile: "ca.pem"}}, false},
		{"tcp, passthrough", Listener{ListenAddr: "127.0.0.1:1", UpstreamTLS: UpstreamTLS{Enabled: true, CertFile: "c.pem", Passthrough: true}}, false},
		{"tcp, client CA", Listener{ListenAddr: "127.0.0.1:1", UpstreamTLS: withCert, TLS: ListenTLS{CertFile: "s.pem", KeyFile: "s-key.pem", ClientCAFile: "ca.pem"}}, false},
		{"tcp, server tls only", Listener{ListenAddr: "127.0.0.1:1", UpstreamTLS: withCert, TLS: ListenTLS{CertFile: "s.pem", KeyFile: "s-key.pem"}}, true},
		{"unix 0660", Listener{ListenAddr: "unix:///run/a.sock", SocketMode: "0660", UpstreamTLS: withCert}, false},
		{"unix 0666", Listener{ListenAddr: "unix:///run/a.sock", SocketMode: "0666", UpstreamTLS: withCert}, true},
		{"unix 0662", Listener{ListenAddr: "unix:///run/a.sock", SocketMode: "0662", UpstreamTLS: withCert}, true},
		{"unix 0666, uids", Listener{ListenAddr: "unix:///run/a.sock", SocketMode: "0666", AllowedUIDs: []string{"0"}, UpstreamTLS: withCert}, false},
		{"unix 0666, gids", Listener{ListenAddr: "unix:///run/a.sock", SocketMode: "0666", AllowedGIDs: []string{"0"}, UpstreamTLS: withCert}, false},
		{"unix 0666, client CA", Listener{ListenAddr: "unix:///run/a.sock", SocketMode: "0666", UpstreamTLS: withCert, TLS: ListenTLS{CertFile: "s", KeyFile: "k", ClientCAFile: "ca"}}, false},
		{"unix 0666, no cert", Listener{ListenAddr: "unix:///run/a.sock", SocketMode: "0666"}, false},
		{"systemd", Listener{ListenAddr: "systemd:x", UpstreamTLS: withCert}, false},
	}
	for _, c := range cases {
		c.l.Name = "a"
		got := IdentityLeak(c.l)
		if (got != "") != c.want {
			t.Errorf("%s: got %q, want a warning: %v", c.name, got, c.want)
		}
		if got != "" && (!strings.Contains(got, "unix socket") || !strings.Contains(got, "client-ca-file")) {
			t.Errorf("%s: the warning %q does not give both fixes", c.name, got)
		}
	}
}

// TestLookupIDs checks names and numbers of users and groups, and the
// error that names an unknown one.
func TestLookupIDs(t *testing.T) {
	if uid, err := LookupUID("root"); err != nil || uid != 0 {
		t.Errorf("root: %d, %v", uid, err)
	}
	if gid, err := LookupGID("12345"); err != nil || gid != 12345 {
		t.Errorf("12345: %d, %v", gid, err)
	}
	if _, err := LookupUID("no-such-user-here"); err == nil || !strings.Contains(err.Error(), `no user "no-such-user-here" on this host`) {
		t.Errorf("unknown user: %v", err)
	}
	l := Listener{ListenAddr: "unix:///x", SocketMode: "0660", SocketGroup: "no-such-group-here"}
	if _, err := l.SocketPerms(); err == nil || !strings.Contains(err.Error(), `key "socket-group": no group "no-such-group-here" on this host`) {
		t.Errorf("unknown group: %v", err)
	}
}
