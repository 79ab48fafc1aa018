package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// twoListenersYAML and twoListenersTOML are the same configuration: the
// first listener inherits the top-level defaults, the second overrides them.
const twoListenersYAML = `
log-level: debug
log-format: json
shutdown-timeout: 20s
dns-server: 10.0.0.53:53
admin-addr: 127.0.0.1:23800
admin-pprof: true
retry-delay: 30s
dial-timeout: 2s
on-endpoint-removed: drain
drain-timeout: 45s
max-connections: 1000
keepalive: 30s
policy: round-robin
health-check:
  type: tcp
  interval: 10s
  fall: 3
on-unhealthy: close
member-sync: 1m
listeners:
  - name: main
    listen-addr: 127.0.0.1:23790
    endpoints:
      - 10.0.0.1:2379
      - http://10.0.0.2:2379
      - https://etcd-3.example.com:2379/
  - name: discovered
    listen-addr: "[::1]:23791"
    discovery-srv: example.com
    discovery-srv-name: prod
    insecure-discovery: true
    trusted-ca-file: /etc/ssl/etcd-ca.pem
    dns-refresh: 1m
    retry-delay: 5s
    dial-timeout: 500ms
    on-endpoint-removed: close
    drain-timeout: 1h30m
    max-connections: 0
    idle-timeout: 10m
    keepalive: 1m
    policy: Least-Connections
    health-check:
      type: etcd
      timeout: 1s
      rise: 5
    on-unhealthy: keep
    member-sync: off
    upstream-tls:
      ca-file: /etc/ssl/etcd-ca.pem
      cert-file: /etc/ssl/gw.pem
      key-file: /etc/ssl/gw-key.pem
      server-name: etcd.example.com
`

const twoListenersTOML = `
log-level = "debug"
log-format = "json"
shutdown-timeout = "20s"
dns-server = "10.0.0.53:53"
admin-addr = "127.0.0.1:23800"
admin-pprof = true
retry-delay = "30s"
dial-timeout = "2s"
on-endpoint-removed = "drain"
drain-timeout = "45s"
max-connections = 1000
keepalive = "30s"
policy = "round-robin"
on-unhealthy = "close"
member-sync = "1m"

[health-check]
type = "tcp"
interval = "10s"
fall = 3

[[listeners]]
name = "main"
listen-addr = "127.0.0.1:23790"
endpoints = ["10.0.0.1:2379", "http://10.0.0.2:2379", "https://etcd-3.example.com:2379/"]

[[listeners]]
name = "discovered"
listen-addr = "[::1]:23791"
discovery-srv = "example.com"
discovery-srv-name = "prod"
insecure-discovery = true
trusted-ca-file = "/etc/ssl/etcd-ca.pem"
dns-refresh = "1m"
retry-delay = "5s"
dial-timeout = "500ms"
on-endpoint-removed = "close"
drain-timeout = "1h30m"
max-connections = 0
idle-timeout = "10m"
keepalive = "1m"
policy = "Least-Connections"
health-check = { type = "etcd", timeout = "1s", rise = 5 }
on-unhealthy = "keep"
member-sync = "off"

[listeners.upstream-tls]
ca-file = "/etc/ssl/etcd-ca.pem"
cert-file = "/etc/ssl/gw.pem"
key-file = "/etc/ssl/gw-key.pem"
server-name = "etcd.example.com"
`

// twoListeners is what both files decode to, File aside.
func twoListeners(file string) *Snapshot {
	return &Snapshot{
		File:            file,
		LogLevel:        "debug",
		LogFormat:       "json",
		ShutdownTimeout: 20 * time.Second,
		DNSServer:       "10.0.0.53:53",
		AdminAddr:       "127.0.0.1:23800",
		AdminPprof:      true,
		Listeners:       []Listener{mainListener(), discoveredListener()},
	}
}

// mainListener is listener main of twoListeners: static endpoints, most
// settings inherited.
func mainListener() Listener {
	return Listener{
		Name:              "main",
		ListenAddr:        "127.0.0.1:23790",
		Endpoints:         []string{"10.0.0.1:2379", "10.0.0.2:2379", "etcd-3.example.com:2379"},
		TLSEndpoints:      []string{"etcd-3.example.com:2379"},
		DNSRefresh:        DefaultDNSRefresh, // no top-level value: the built-in default
		RetryDelay:        30 * time.Second,  // inherited
		DialTimeout:       2 * time.Second,   // inherited
		OnEndpointRemoved: RemovedDrain,      // inherited
		DrainTimeout:      45 * time.Second,  // inherited
		MaxConnections:    1000,              // inherited
		KeepAlive:         30 * time.Second,  // inherited
		SocketMode:        DefaultSocketMode,
		Policy:            PolicyRoundRobin, // inherited
		// inherited, the rest from the built-in defaults
		SlowStart:   DefaultSlowStart,
		Rebalance:   DefaultRebalance,
		HealthCheck: HealthCheck{Type: CheckTCP, Interval: 10 * time.Second, Timeout: DefaultCheckTimeout, Fall: 3, Rise: DefaultRise, LeaderlessMax: DefaultLeaderlessMax, LagMax: DefaultLagMax, SuspectAfter: DefaultSuspectAfter},
		OnUnhealthy: UnhealthyClose, // inherited
		MemberSync:  time.Minute,    // inherited
	}
}

// discoveredListener is listener discovered of twoListeners: SRV
// discovery, its own settings.
func discoveredListener() Listener {
	return Listener{
		Name:              "discovered",
		ListenAddr:        "[::1]:23791",
		DiscoverySRV:      "example.com",
		DiscoverySRVName:  "prod",
		InsecureDiscovery: true,
		TrustedCAFile:     "/etc/ssl/etcd-ca.pem",
		DNSRefresh:        time.Minute,
		RetryDelay:        5 * time.Second,
		DialTimeout:       500 * time.Millisecond,
		OnEndpointRemoved: RemovedClose,
		DrainTimeout:      90 * time.Minute,
		MaxConnections:    0, // set: no limit, not the inherited 1000
		IdleTimeout:       10 * time.Minute,
		KeepAlive:         time.Minute,
		SocketMode:        DefaultSocketMode,
		Policy:            PolicyLeastConnections,
		// type, timeout and rise set; interval and fall inherited
		SlowStart:   DefaultSlowStart,
		Rebalance:   DefaultRebalance,
		HealthCheck: HealthCheck{Type: CheckEtcd, Interval: 10 * time.Second, Timeout: time.Second, Fall: 3, Rise: 5, LeaderlessMax: DefaultLeaderlessMax, LagMax: DefaultLagMax, SuspectAfter: DefaultSuspectAfter},
		OnUnhealthy: UnhealthyKeep,
		MemberSync:  0, // off
		UpstreamTLS: UpstreamTLS{
			Enabled:    true,
			CAFile:     "/etc/ssl/etcd-ca.pem",
			CertFile:   "/etc/ssl/gw.pem",
			KeyFile:    "/etc/ssl/gw-key.pem",
			ServerName: "etcd.example.com",
		},
	}
}

func TestParseYAMLAndTOMLAreEqual(t *testing.T) {
	tests := []struct {
		path, data string
	}{
		{"/etc/gw.yaml", twoListenersYAML},
		{"/etc/gw.yml", twoListenersYAML},
		{"/etc/gw.toml", twoListenersTOML},
		{"/etc/GW.TOML", twoListenersTOML},
	}
	var got []*Snapshot
	for _, tt := range tests {
		s, err := Parse(tt.path, []byte(tt.data))
		if err != nil {
			t.Fatalf("Parse(%s): %v", tt.path, err)
		}
		if want := twoListeners(tt.path); !reflect.DeepEqual(s, want) {
			t.Errorf("Parse(%s)\n got %#v\nwant %#v", tt.path, s, want)
		}
		s.File = ""
		got = append(got, s)
	}
	for i := 1; i < len(got); i++ {
		if !reflect.DeepEqual(got[0], got[i]) {
			t.Errorf("%s and %s decode differently:\n%#v\n%#v", tests[0].path, tests[i].path, got[0], got[i])
		}
	}
}

func TestParseDefaults(t *testing.T) {
	s, err := Parse("gw.yaml", []byte("listeners:\n  - name: a\n    listen-addr: :23790\n    endpoints: [127.0.0.1:2379]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Snapshot{
		File:            "gw.yaml",
		LogLevel:        DefaultLogLevel,
		LogFormat:       DefaultLogFormat,
		ShutdownTimeout: DefaultShutdownTimeout,
		Listeners: []Listener{{
			Name:              "a",
			ListenAddr:        ":23790",
			Endpoints:         []string{"127.0.0.1:2379"},
			DNSRefresh:        DefaultDNSRefresh,
			RetryDelay:        DefaultRetryDelay,
			DialTimeout:       DefaultDialTimeout,
			OnEndpointRemoved: RemovedKeep,
			DrainTimeout:      DefaultDrainTimeout,
			KeepAlive:         DefaultKeepAlive,
			SocketMode:        DefaultSocketMode,
			Policy:            PolicyStickyRandom,
			SlowStart:         DefaultSlowStart,
			Rebalance:         DefaultRebalance,
			HealthCheck:       HealthCheck{Type: CheckEtcd, Interval: 5 * time.Second, Timeout: 2 * time.Second, Fall: 2, Rise: 2, LeaderlessMax: DefaultLeaderlessMax, LagMax: DefaultLagMax, SuspectAfter: DefaultSuspectAfter},
			OnUnhealthy:       UnhealthyClose,
		}},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got  %#v\nwant %#v", s, want)
	}
}

// listener wraps one listener's YAML lines (indented by 4) into a file.
func listenerYAML(lines ...string) string {
	return "listeners:\n  - " + strings.TrimPrefix(strings.Join(lines, "\n    "), "") + "\n"
}

func TestParseErrors(t *testing.T) {
	tests := slices.Concat(syntaxErrorCases(), fileErrorCases(), adminErrorCases(), limitErrorCases(),
		listenerNameErrorCases(), listenAddrErrorCases(), endpointErrorCases(), discoveryErrorCases(),
		unknownKeyErrorCases(), misplacedKeyErrorCases(), durationErrorCases(), bareDurationErrorCases(), valueErrorCases())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.path, []byte(tt.data))
			if err == nil {
				t.Fatalf("Parse succeeded, want an error; got %#v", s)
			}
			if s != nil {
				t.Errorf("Parse returned a snapshot with its error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			if tt.problem == nil {
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error is a %T, want a *ValidationError: %v", err, err)
			}
			if ve.File != tt.path {
				t.Errorf("File = %q, want %q", ve.File, tt.path)
			}
			if !hasProblem(ve.Problems, *tt.problem) {
				t.Errorf("no problem matching %+v in %+v", *tt.problem, ve.Problems)
			}
		})
	}
}

// okListener is a valid listener's YAML lines, for listenerYAML.
const okListener = "name: a\n    listen-addr: 127.0.0.1:23790\n    endpoints: [10.0.0.1:2379]"

// parseErrorCase is a file Parse must reject, and what the error says.
type parseErrorCase struct {
	name string
	path string
	data string
	// want are substrings of the error, all required.
	want []string
	// problem, when set, must be one of the ValidationError's problems.
	problem *Problem
}

// syntaxErrorCases are the errors of the file's syntax and format.
func syntaxErrorCases() []parseErrorCase {
	return []parseErrorCase{
		{
			name: "yaml syntax",
			path: "/etc/gw.yaml",
			data: "log-level: info\nlisteners: [\n  - name: a\n",
			want: []string{"/etc/gw.yaml", "yaml syntax error", "line 3"}, // a block entry in a flow list
		},
		{
			name: "yaml tab indentation",
			path: "/etc/gw.yaml",
			data: "log-level: info\nlisteners:\n\t- name: a\n",
			want: []string{"/etc/gw.yaml", "yaml syntax error", "line 3"},
		},
		{
			name: "toml syntax",
			path: "/etc/gw.toml",
			data: "log-level = \"info\"\n[[listeners]]\nname = \n",
			want: []string{"/etc/gw.toml", "toml syntax error", "line 3, column"},
		},
		{
			name: "yaml top level is a list",
			path: "/etc/gw.yaml",
			data: "- name: a\n",
			want: []string{"/etc/gw.yaml", "line 1", "top level must be a mapping"},
		},
		{
			name: "yaml duplicate key",
			path: "/etc/gw.yaml",
			data: "log-level: info\nlog-level: debug\n",
			want: []string{"/etc/gw.yaml", "line 2", `"log-level" already defined`},
		},
	}
}

// fileErrorCases are the errors of empty files and file names.
func fileErrorCases() []parseErrorCase {
	return []parseErrorCase{
		{
			name: "empty file",
			path: "/etc/gw.yaml",
			data: "",
			want: []string{"/etc/gw.yaml", "file is empty"},
		},
		{
			name: "whitespace-only file",
			path: "/etc/gw.toml",
			data: " \n\t\n",
			want: []string{"/etc/gw.toml", "file is empty"},
		},
		{
			name: "unknown extension",
			path: "/etc/gw.json",
			data: "{}",
			want: []string{"/etc/gw.json", `".json"`, ".yaml"},
		},
		{
			name: "no extension",
			path: "/etc/gw",
			data: "log-level: info\n",
			want: []string{"/etc/gw", "no extension"},
		},
	}
}

// adminErrorCases are the errors of the admin server's keys.
func adminErrorCases() []parseErrorCase {
	const ok = okListener
	return []parseErrorCase{
		{
			name:    "admin-addr without port",
			path:    "/etc/gw.yaml",
			data:    "admin-addr: 127.0.0.1\n" + listenerYAML(ok),
			want:    []string{`/etc/gw.yaml: key "admin-addr": "127.0.0.1": missing port`},
			problem: &Problem{Key: "admin-addr"},
		},
		{
			name:    "admin-addr on a listener's address",
			path:    "/etc/gw.yaml",
			data:    "admin-addr: 0.0.0.0:23790\n" + listenerYAML(ok),
			want:    []string{`key "admin-addr": "0.0.0.0:23790" overlaps "127.0.0.1:23790" of listener "a"`},
			problem: &Problem{Key: "admin-addr"},
		},
		{
			name:    "admin-pprof without admin-addr",
			path:    "/etc/gw.yaml",
			data:    "admin-pprof: true\n" + listenerYAML(ok),
			problem: &Problem{Key: "admin-pprof", Msg: "only valid with admin-addr: pprof is served by the admin server"},
		},
		{
			name:    "admin-pprof not a boolean",
			path:    "/etc/gw.toml",
			data:    "admin-addr = \"127.0.0.1:23800\"\nadmin-pprof = \"yes\"\n[[listeners]]\nname = \"a\"\nlisten-addr = \"127.0.0.1:23790\"\nendpoints = [\"10.0.0.1:2379\"]\n",
			problem: &Problem{Key: "admin-pprof", Msg: `must be true or false, not the string "yes"`},
		},
	}
}

// limitErrorCases are the errors of connection limits and keepalive.
func limitErrorCases() []parseErrorCase {
	const ok = okListener
	return []parseErrorCase{
		{
			name:    "negative max-connections",
			path:    "/etc/gw.yaml",
			data:    listenerYAML(ok, "max-connections: -1"),
			problem: &Problem{Listener: "a", Key: "max-connections", Msg: "-1: must be 0 (no limit) or more"},
		},
		{
			name:    "max-connections as a string",
			path:    "/etc/gw.toml",
			data:    "max-connections = \"100\"\n[[listeners]]\nname = \"a\"\nlisten-addr = \"127.0.0.1:23790\"\nendpoints = [\"10.0.0.1:2379\"]\n",
			problem: &Problem{Key: "max-connections", Msg: `must be a whole number, not the string "100"`},
		},
		{
			name:    "max-connections as a fraction",
			path:    "/etc/gw.yaml",
			data:    listenerYAML(ok, "max-connections: 1.5"),
			problem: &Problem{Listener: "a", Key: "max-connections", Msg: "1.5 is not a whole number"},
		},
		{
			name:    "negative idle-timeout",
			path:    "/etc/gw.yaml",
			data:    listenerYAML(ok, "idle-timeout: -1m"),
			problem: &Problem{Listener: "a", Key: "idle-timeout", Msg: "-1m: must be 0s (off) or more"},
		},
		{
			name:    "sub-second keepalive",
			path:    "/etc/gw.yaml",
			data:    "keepalive: 500ms\n" + listenerYAML(ok),
			want:    []string{`/etc/gw.yaml: key "keepalive": 500ms: TCP keepalive counts in whole seconds`},
			problem: &Problem{Key: "keepalive"},
		},
		{
			name:    "zero keepalive",
			path:    "/etc/gw.yaml",
			data:    listenerYAML(ok, "keepalive: 0s"),
			problem: &Problem{Listener: "a", Key: "keepalive", Msg: "0s: must be greater than zero"},
		},
		{
			name:    "keepalive too long",
			path:    "/etc/gw.yaml",
			data:    listenerYAML(ok, "keepalive: 10h"),
			problem: &Problem{Listener: "a", Key: "keepalive", Msg: "10h: the longest TCP keepalive is 9h6m7s"},
		},
		{
			name:    "negative top-level max-connections",
			path:    "/etc/gw.yaml",
			data:    "max-connections: -5\n" + listenerYAML(ok),
			want:    []string{`/etc/gw.yaml: key "max-connections": -5`},
			problem: &Problem{Key: "max-connections"},
		},
	}
}

// listenerNameErrorCases are the errors of the listeners, their names
// and addresses in use.
func listenerNameErrorCases() []parseErrorCase {
	const ok = okListener
	return []parseErrorCase{
		{
			name:    "no listeners",
			path:    "/etc/gw.yaml",
			data:    "log-level: info\n",
			problem: &Problem{Key: "listeners", Msg: "no listeners: at least one listener is required"},
		},
		{
			name:    "listeners not a list",
			path:    "/etc/gw.toml",
			data:    "[listeners]\nname = \"a\"\n",
			want:    []string{`/etc/gw.toml: key "listeners": must be a list`, "[[listeners]]"},
			problem: &Problem{Key: "listeners"},
		},
		{
			name:    "missing name",
			path:    "/etc/gw.yaml",
			data:    listenerYAML("listen-addr: 127.0.0.1:23790", "endpoints: [10.0.0.1:2379]"),
			want:    []string{`/etc/gw.yaml: listeners[0]: key "name": missing`},
			problem: &Problem{Listener: "listeners[0]", Key: "name", Msg: "missing: every listener needs a name"},
		},
		{
			name: "bad name",
			path: "/etc/gw.yaml",
			data: listenerYAML("name: my listener", "listen-addr: 127.0.0.1:23790", "endpoints: [10.0.0.1:2379]"),
			want: []string{`/etc/gw.yaml: listeners[0]: key "name": "my listener" is not a valid name`},
		},
		{
			name: "duplicate name",
			path: "/etc/gw.yaml",
			data: listenerYAML(ok) + "  - name: a\n    listen-addr: 127.0.0.1:23791\n    endpoints: [10.0.0.1:2379]\n",
			want: []string{`/etc/gw.yaml: listeners[1]: key "name": duplicate name "a": listeners[0] has it too`},
		},
		{
			name: "duplicate listen-addr",
			path: "/etc/gw.yaml",
			data: listenerYAML(ok) + "  - name: b\n    listen-addr: 127.0.0.1:23790\n    endpoints: [10.0.0.1:2379]\n",
			want: []string{`/etc/gw.yaml: listener "b": key "listen-addr": duplicate address "127.0.0.1:23790": listener "a"`},
		},
		{
			name: "duplicate listen-addr, IPv6 spelled differently",
			path: "/etc/gw.yaml",
			data: "listeners:\n" +
				"  - {name: a, listen-addr: '[::1]:2379', endpoints: [10.0.0.1:2379]}\n" +
				"  - {name: b, listen-addr: '[0:0::1]:2379', endpoints: [10.0.0.1:2379]}\n",
			want: []string{`listener "b": key "listen-addr": duplicate address "[0:0::1]:2379"`},
		},
		{
			name: "listen-addr overlapping a wildcard",
			path: "/etc/gw.yaml",
			data: "listeners:\n" +
				"  - {name: a, listen-addr: ':2379', endpoints: [10.0.0.1:2379]}\n" +
				"  - {name: b, listen-addr: '10.1.1.1:2379', endpoints: [10.0.0.1:2379]}\n",
			want: []string{`listener "b": key "listen-addr": "10.1.1.1:2379" overlaps ":2379" of listener "a"`},
		},
	}
}

// listenAddrErrorCases are the errors of listen-addr.
func listenAddrErrorCases() []parseErrorCase {
	return []parseErrorCase{
		{
			name: "missing listen-addr",
			path: "/etc/gw.yaml",
			data: listenerYAML("name: a", "endpoints: [10.0.0.1:2379]"),
			want: []string{`listener "a": key "listen-addr": missing`},
		},
		{
			name: "listen-addr without port",
			path: "/etc/gw.yaml",
			data: listenerYAML("name: a", "listen-addr: 127.0.0.1", "endpoints: [10.0.0.1:2379]"),
			want: []string{`listener "a": key "listen-addr": "127.0.0.1": missing port`},
		},
		{
			name: "listen-addr with a bad port",
			path: "/etc/gw.yaml",
			data: listenerYAML("name: a", "listen-addr: 127.0.0.1:70000", "endpoints: [10.0.0.1:2379]"),
			want: []string{`listener "a": key "listen-addr": "127.0.0.1:70000": port 70000 is out of range`},
		},
		{
			name: "listen-addr with a named port",
			path: "/etc/gw.yaml",
			data: listenerYAML("name: a", "listen-addr: 127.0.0.1:http", "endpoints: [10.0.0.1:2379]"),
			want: []string{`listener "a": key "listen-addr": "127.0.0.1:http": port "http" is not a number`},
		},
		{
			name: "listen-addr with IPv6 unbracketed",
			path: "/etc/gw.yaml",
			data: listenerYAML("name: a", "listen-addr: '::1:2379'", "endpoints: [10.0.0.1:2379]"),
			want: []string{`listener "a": key "listen-addr": "::1:2379": an IPv6 address needs brackets`},
		},
		{
			name: "listen-addr with a bad IPv4",
			path: "/etc/gw.yaml",
			data: listenerYAML("name: a", "listen-addr: '300.1.1.1:2379'", "endpoints: [10.0.0.1:2379]"),
			want: []string{`listener "a": key "listen-addr": "300.1.1.1:2379": "300.1.1.1" is not a valid IPv4 address`},
		},
		{
			name: "listen-addr with a bad host",
			path: "/etc/gw.yaml",
			data: listenerYAML("name: a", "listen-addr: 'my host:2379'", "endpoints: [10.0.0.1:2379]"),
			want: []string{`listener "a": key "listen-addr": "my host:2379": host "my host"`},
		},
	}
}

// endpointErrorCases are the errors of endpoints.
func endpointErrorCases() []parseErrorCase {
	return []parseErrorCase{
		{
			name:    "endpoint without port",
			path:    "/etc/gw.yaml",
			data:    listenerYAML("name: a", "listen-addr: 127.0.0.1:23790", "endpoints: [10.0.0.1:2379, infra1.example.com]"),
			want:    []string{`/etc/gw.yaml: listener "a": key "endpoints": endpoint "infra1.example.com": missing port`},
			problem: &Problem{Listener: "a", Key: "endpoints", Msg: `endpoint "infra1.example.com": missing port: write host:port, e.g. "10.0.0.1:2379"`},
		},
		{
			name: "endpoint with scheme but without port",
			path: "/etc/gw.yaml",
			data: listenerYAML("name: a", "listen-addr: 127.0.0.1:23790", "endpoints: ['https://10.0.0.1']"),
			want: []string{`key "endpoints": endpoint "10.0.0.1": missing port`},
		},
		{
			name: "endpoint with another scheme",
			path: "/etc/gw.yaml",
			data: listenerYAML("name: a", "listen-addr: 127.0.0.1:23790", "endpoints: ['unix://x:1', 'y']"),
			want: []string{`key "endpoints": endpoint "unix://x:1": scheme "unix" not supported`, `endpoint "y": missing port`},
		},
		{
			name: "endpoint with a path",
			path: "/etc/gw.yaml",
			data: listenerYAML("name: a", "listen-addr: 127.0.0.1:23790", "endpoints: ['http://x:1/v3']"),
			want: []string{`key "endpoints": endpoint "http://x:1/v3" has a path`},
		},
		{
			name: "duplicate endpoint",
			path: "/etc/gw.yaml",
			data: listenerYAML("name: a", "listen-addr: 127.0.0.1:23790", "endpoints: [10.0.0.1:2379, 'http://10.0.0.1:2379']"),
			want: []string{`listener "a": key "endpoints": duplicate endpoint "10.0.0.1:2379": listed at positions 0 and 1 (counting from 0); list it once`},
		},
		{
			name: "endpoint listed three times, written two ways",
			path: "/etc/gw.yaml",
			data: listenerYAML("name: a", "listen-addr: 127.0.0.1:23790", "endpoints: [10.0.0.1:2379, b:1, 'http://10.0.0.1:2379', b:1, 'https://10.0.0.1:02379']"),
			want: []string{
				`key "endpoints": duplicate endpoint "10.0.0.1:2379": listed at positions 0, 2 and 4 (counting from 0), written "10.0.0.1:2379", "10.0.0.1:02379"; list it once`,
				`key "endpoints": duplicate endpoint "b:1": listed at positions 1 and 3 (counting from 0); list it once`,
			},
		},
		{
			name: "endpoints not a list",
			path: "/etc/gw.yaml",
			data: listenerYAML("name: a", "listen-addr: 127.0.0.1:23790", "endpoints: 10.0.0.1:2379"),
			want: []string{`listener "a": key "endpoints": must be a list of host:port strings`},
		},
	}
}

// discoveryErrorCases are the errors of the source: endpoints or discovery-srv.
func discoveryErrorCases() []parseErrorCase {
	const ok = okListener
	return []parseErrorCase{
		{
			name: "both endpoints and discovery-srv",
			path: "/etc/gw.yaml",
			data: listenerYAML(ok, "discovery-srv: example.com"),
			want: []string{`/etc/gw.yaml: listener "a": key "endpoints": endpoints and discovery-srv are both set`},
		},
		{
			name: "neither endpoints nor discovery-srv",
			path: "/etc/gw.yaml",
			data: listenerYAML("name: a", "listen-addr: 127.0.0.1:23790"),
			want: []string{`/etc/gw.yaml: listener "a": key "endpoints": no etcd endpoints: set endpoints`, "or discovery-srv"},
		},
		{
			name: "empty endpoints list",
			path: "/etc/gw.yaml",
			data: listenerYAML("name: a", "listen-addr: 127.0.0.1:23790", "endpoints: []"),
			want: []string{`listener "a": key "endpoints": no etcd endpoints`},
		},
		{
			name: "SRV-only keys without discovery-srv",
			path: "/etc/gw.yaml",
			data: listenerYAML(ok, "discovery-srv-name: x", "insecure-discovery: true", "trusted-ca-file: /ca.pem"),
			want: []string{
				`listener "a": key "discovery-srv-name": only valid with discovery-srv`,
				`listener "a": key "insecure-discovery": only valid with discovery-srv`,
				`listener "a": key "trusted-ca-file": only valid with discovery-srv or with https:// endpoints`,
			},
		},
		{
			name: "bad discovery-srv",
			path: "/etc/gw.yaml",
			data: listenerYAML("name: a", "listen-addr: 127.0.0.1:23790", "discovery-srv: 'http://example.com'"),
			want: []string{`listener "a": key "discovery-srv": "http://example.com" is not a DNS domain`},
		},
	}
}

// unknownKeyErrorCases are the errors of unknown keys.
func unknownKeyErrorCases() []parseErrorCase {
	const ok = okListener
	return []parseErrorCase{
		{
			name:    "unknown top-level key",
			path:    "/etc/gw.yaml",
			data:    "log-levl: debug\n" + listenerYAML(ok),
			want:    []string{`/etc/gw.yaml: unknown key "log-levl"; did you mean "log-level"?`},
			problem: &Problem{Key: "log-levl", Msg: `unknown key; did you mean "log-level"?`},
		},
		{
			name: "unknown top-level key with null value",
			path: "/etc/gw.yaml",
			data: "verbose:\n" + listenerYAML(ok),
			want: []string{`/etc/gw.yaml: unknown key "verbose"; known keys are "log-level"`},
		},
		{
			name: "unknown nested top-level key",
			path: "/etc/gw.toml",
			data: "[log]\nlevel = \"debug\"\n[[listeners]]\nname = \"a\"\nlisten-addr = \":1\"\nendpoints = [\"a:1\"]\n",
			want: []string{`/etc/gw.toml: unknown key "log.level"`},
		},
		{
			name:    "unknown listener key",
			path:    "/etc/gw.yaml",
			data:    listenerYAML("name: main", "listen-addr: 127.0.0.1:23790", "endpoint: [10.0.0.1:2379]"),
			want:    []string{`/etc/gw.yaml: listener "main": unknown key "endpoint"; did you mean "endpoints"?`},
			problem: &Problem{Listener: "main", Key: "endpoint", Msg: `unknown key; did you mean "endpoints"?`},
		},
		{
			name: "unknown listener key in toml",
			path: "/etc/gw.toml",
			data: "[[listeners]]\nname = \"main\"\nlisten-addr = \":1\"\nendpoints = [\"a:1\"]\nretry_delay = \"1s\"\n",
			want: []string{`/etc/gw.toml: listener "main": unknown key "retry_delay"; did you mean "retry-delay"?`},
		},
	}
}

// misplacedKeyErrorCases are the errors of keys in the wrong place, and
// of listeners that are no table.
func misplacedKeyErrorCases() []parseErrorCase {
	const ok = okListener
	return []parseErrorCase{
		{
			name: "listener key at the top level",
			path: "/etc/gw.yaml",
			data: "endpoints: [a:1]\n" + listenerYAML(ok),
			want: []string{`/etc/gw.yaml: unknown key "endpoints" here: it is a listener key`},
		},
		{
			name: "top-level key in a listener",
			path: "/etc/gw.yaml",
			data: listenerYAML(ok, "log-level: debug"),
			want: []string{`/etc/gw.yaml: listener "a": unknown key "log-level" here: it is a top-level key`},
		},
		{
			name: "bad discovery-srv-name",
			path: "/etc/gw.yaml",
			data: listenerYAML("name: a", "listen-addr: :1", "discovery-srv: example.com", "discovery-srv-name: a.b"),
			want: []string{`listener "a": key "discovery-srv-name": "a.b" is not a valid SRV service name suffix`},
		},
		{
			name: "listener that is not a table",
			path: "/etc/gw.yaml",
			data: "listeners:\n  - main\n",
			want: []string{`/etc/gw.yaml: listeners[0]: a listener must be a table`},
		},
	}
}

// durationErrorCases are the errors of durations.
func durationErrorCases() []parseErrorCase {
	const ok = okListener
	return []parseErrorCase{
		{
			name:    "zero duration",
			path:    "/etc/gw.yaml",
			data:    listenerYAML(ok, "retry-delay: 0s"),
			want:    []string{`/etc/gw.yaml: listener "a": key "retry-delay": 0s: must be greater than zero`},
			problem: &Problem{Listener: "a", Key: "retry-delay", Msg: "0s: must be greater than zero"},
		},
		{
			name: "zero duration without unit",
			path: "/etc/gw.yaml",
			data: listenerYAML(ok, "dial-timeout: '0'"),
			want: []string{`listener "a": key "dial-timeout": 0s: must be greater than zero`},
		},
		{
			name: "negative duration",
			path: "/etc/gw.yaml",
			data: listenerYAML(ok, "drain-timeout: -5s"),
			want: []string{`listener "a": key "drain-timeout": -5s: must be greater than zero`},
		},
		{
			name: "negative top-level duration",
			path: "/etc/gw.toml",
			data: "shutdown-timeout = \"-1m\"\n[[listeners]]\nname = \"a\"\nlisten-addr = \":1\"\nendpoints = [\"a:1\"]\n",
			want: []string{`/etc/gw.toml: key "shutdown-timeout": -1m: must be greater than zero`},
		},
	}
}

// bareDurationErrorCases are the errors of durations without a unit or
// of the wrong type.
func bareDurationErrorCases() []parseErrorCase {
	const ok = okListener
	return []parseErrorCase{
		{
			name:    "bare integer duration",
			path:    "/etc/gw.yaml",
			data:    listenerYAML(ok, "retry-delay: 30"),
			want:    []string{`/etc/gw.yaml: listener "a": key "retry-delay": 30 has no unit`, `"30s"`},
			problem: &Problem{Listener: "a", Key: "retry-delay"},
		},
		{
			name: "bare integer duration in toml",
			path: "/etc/gw.toml",
			data: "retry-delay = 30\n[[listeners]]\nname = \"a\"\nlisten-addr = \":1\"\nendpoints = [\"a:1\"]\n",
			want: []string{`/etc/gw.toml: key "retry-delay": 30 has no unit`, `"30s"`},
		},
		{
			name: "quoted bare integer duration",
			path: "/etc/gw.yaml",
			data: listenerYAML(ok, "dial-timeout: '3'"),
			want: []string{`key "dial-timeout": 3 has no unit`, `"3s"`},
		},
		{
			name: "bad duration string",
			path: "/etc/gw.yaml",
			data: listenerYAML(ok, "dns-refresh: 5 minutes"),
			want: []string{`key "dns-refresh": "5 minutes" is not a duration`},
		},
		{
			name: "duration of the wrong type",
			path: "/etc/gw.yaml",
			data: listenerYAML(ok, "dial-timeout: true"),
			want: []string{`key "dial-timeout": must be a duration`, "not the boolean true"},
		},
	}
}

// valueErrorCases are the errors of the other values.
func valueErrorCases() []parseErrorCase {
	const ok = okListener
	return []parseErrorCase{
		{
			name:    "bad log-level",
			path:    "/etc/gw.yaml",
			data:    "log-level: verbose\n" + listenerYAML(ok),
			want:    []string{`/etc/gw.yaml: key "log-level": "verbose" is not one of "debug", "info", "warn", "error"`},
			problem: &Problem{Key: "log-level", Msg: `"verbose" is not one of "debug", "info", "warn", "error"`},
		},
		{
			name: "bad log-format",
			path: "/etc/gw.yaml",
			data: "log-format: xml\n" + listenerYAML(ok),
			want: []string{`key "log-format": "xml" is not one of "text", "json"`},
		},
		{
			name: "log-level of the wrong type",
			path: "/etc/gw.yaml",
			data: "log-level: 3\n" + listenerYAML(ok),
			want: []string{`key "log-level": must be a string, not the number 3`},
		},
		{
			name: "bad on-endpoint-removed",
			path: "/etc/gw.yaml",
			data: listenerYAML(ok, "on-endpoint-removed: kill"),
			want: []string{`/etc/gw.yaml: listener "a": key "on-endpoint-removed": "kill" is not one of "keep", "drain", "close"`},
		},
		{
			name: "bad top-level on-endpoint-removed",
			path: "/etc/gw.yaml",
			data: "on-endpoint-removed: kill\n" + listenerYAML(ok),
			want: []string{`/etc/gw.yaml: key "on-endpoint-removed": "kill"`},
		},
		{
			name: "insecure-discovery not a boolean",
			path: "/etc/gw.yaml",
			data: listenerYAML("name: a", "listen-addr: :1", "discovery-srv: example.com", "insecure-discovery: 'yes'"),
			want: []string{`listener "a": key "insecure-discovery": must be true or false, not the string "yes"`},
		},
		{
			name: "bad dns-server",
			path: "/etc/gw.yaml",
			data: "dns-server: 10.0.0.53\n" + listenerYAML(ok),
			want: []string{`/etc/gw.yaml: key "dns-server": "10.0.0.53": missing port`},
		},
	}
}

// hasProblem reports whether list holds a problem with want's listener and
// key and, when want.Msg is set, its message.
func hasProblem(list []Problem, want Problem) bool {
	for _, p := range list {
		if p.Listener == want.Listener && p.Key == want.Key && (want.Msg == "" || p.Msg == want.Msg) {
			return true
		}
	}
	return false
}

func TestParseSyntaxErrorType(t *testing.T) {
	tests := []struct {
		path, data, format string
		line               int
	}{
		{"gw.yaml", "a: 1\nb: [\n", "yaml", 2},
		{"gw.toml", "a = 1\nb = = 2\n", "toml", 2},
	}
	for _, tt := range tests {
		_, err := Parse(tt.path, []byte(tt.data))
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%s: error %v is a %T, want a *SyntaxError", tt.path, err, err)
			continue
		}
		if se.File != tt.path || se.Format != tt.format || se.Line != tt.line || se.Err == nil || errors.Unwrap(se) != se.Err {
			t.Errorf("%s: got %+v, want file %s, format %s, line %d and the parser's error", tt.path, se, tt.path, tt.format, tt.line)
		}
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	const data = `
log-levl: debug
log-level: loud
retry-delay: 30
listeners:
  - name: main
    listen-addr: 127.0.0.1:23790
    endpoint: [10.0.0.1:2379]
  - listen-addr: 127.0.0.1:23790
    endpoints: [10.0.0.1, 10.0.0.2:2379]
    discovery-srv: example.com
    dial-timeout: 0s
  - name: main
    listen-addr: bad:port
    discovery-srv: example.com
    on-endpoint-removed: explode
`
	_, err := Parse("/etc/gw.yaml", []byte(data))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %T %v, want a *ValidationError", err, err)
	}
	want := []Problem{
		{Key: "log-levl"},
		{Key: "log-level"},
		{Key: "retry-delay"},
		{Listener: "main", Key: "endpoint"},
		{Listener: "main", Key: "endpoints"}, // no endpoints at all, as "endpoint" is unknown
		{Listener: "listeners[1]", Key: "name"},
		{Listener: "listeners[1]", Key: "listen-addr"}, // same as main's
		{Listener: "listeners[1]", Key: "endpoints", Msg: `endpoint "10.0.0.1": missing port: write host:port, e.g. "10.0.0.1:2379"`},
		{Listener: "listeners[1]", Key: "dial-timeout"},
		{Listener: "listeners[2]", Key: "name"}, // duplicate: labelled by index
		{Listener: "listeners[2]", Key: "listen-addr"},
		{Listener: "listeners[2]", Key: "on-endpoint-removed"},
	}
	for _, w := range want {
		if !hasProblem(ve.Problems, w) {
			t.Errorf("missing problem %+v", w)
		}
	}
	// Both endpoints and discovery-srv are set on listeners[1]: reported too.
	if !strings.Contains(err.Error(), `listeners[1]: key "endpoints": endpoints and discovery-srv are both set`) {
		t.Errorf("both endpoints and discovery-srv not reported")
	}
	problemsInForm(t, err, ve, map[string]int{"": 0, "main": 1, "listeners[1]": 2, "listeners[2]": 3})
}

// problemsInForm checks how err, holding ve, reports its problems: a bad
// top-level default is not repeated by the listeners inheriting it, a line
// per problem, each naming the file, and the top-level problems first,
// then each listener's, in the order given.
func problemsInForm(t *testing.T, err error, ve *ValidationError, order map[string]int) {
	t.Helper()
	// The listeners that inherit the bad top-level retry-delay must not
	// repeat it.
	for _, p := range ve.Problems {
		if p.Key == "retry-delay" && p.Listener != "" {
			t.Errorf("inherited bad default reported again: %+v", p)
		}
	}
	if lines := strings.Count(err.Error(), "\n") + 1; lines != len(ve.Problems) {
		t.Errorf("Error() has %d lines for %d problems", lines, len(ve.Problems))
	}
	for i, line := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(line, "/etc/gw.yaml: ") {
			t.Errorf("line %d does not start with the file: %q", i, line)
		}
	}
	// Top-level problems come first, then each listener's, in order.
	last := ""
	for _, p := range ve.Problems {
		if order[p.Listener] < order[last] {
			t.Errorf("problem %+v after one of %q", p, last)
		}
		last = p.Listener
	}
}

func TestParseEndpointsAndAddresses(t *testing.T) {
	tests := []struct {
		name       string
		endpoints  string // YAML flow list
		listenAddr string
		want       []string
	}{
		{"http prefix stripped", "['http://10.0.0.1:2379']", "127.0.0.1:23790", []string{"10.0.0.1:2379"}},
		{"https prefix stripped", "['https://10.0.0.1:2379']", "127.0.0.1:23790", []string{"10.0.0.1:2379"}},
		{"prefix in capitals and trailing slash", "['HTTPS://infra0.example.com:2379/']", "127.0.0.1:23790", []string{"infra0.example.com:2379"}},
		{"IPv6 endpoint", "['[::1]:2379', 'https://[2001:db8::1]:2379']", "127.0.0.1:23790", []string{"[::1]:2379", "[2001:db8::1]:2379"}},
		{"IPv6 listen address", "['10.0.0.1:2379']", "[::1]:23790", []string{"10.0.0.1:2379"}},
		{"IPv6 wildcard listen address", "['10.0.0.1:2379']", "[::]:23790", []string{"10.0.0.1:2379"}},
		{"IPv6 listen address with zone", "['10.0.0.1:2379']", "[fe80::1%eth0]:23790", []string{"10.0.0.1:2379"}},
		{"empty listen host", "['10.0.0.1:2379']", ":23790", []string{"10.0.0.1:2379"}},
		{"named listen host", "['10.0.0.1:2379']", "localhost:23790", []string{"10.0.0.1:2379"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := listenerYAML("name: a", "listen-addr: '"+tt.listenAddr+"'", "endpoints: "+tt.endpoints)
			s, err := Parse("gw.yaml", []byte(data))
			if err != nil {
				t.Fatal(err)
			}
			l := s.Listeners[0]
			if !reflect.DeepEqual(l.Endpoints, tt.want) {
				t.Errorf("Endpoints = %q, want %q", l.Endpoints, tt.want)
			}
			if l.ListenAddr != tt.listenAddr {
				t.Errorf("ListenAddr = %q, want %q", l.ListenAddr, tt.listenAddr)
			}
		})
	}
}

func TestParseValueForms(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		check func(l Listener, s *Snapshot) bool
	}{
		{"compound duration", "retry-delay: 1h30m", func(l Listener, _ *Snapshot) bool { return l.RetryDelay == 90*time.Minute }},
		{"fractional duration", "dial-timeout: 1.5s", func(l Listener, _ *Snapshot) bool { return l.DialTimeout == 1500*time.Millisecond }},
		{"enum in capitals", "on-endpoint-removed: DRAIN", func(l Listener, _ *Snapshot) bool { return l.OnEndpointRemoved == RemovedDrain }},
		{"null value means default", "retry-delay:", func(l Listener, _ *Snapshot) bool { return l.RetryDelay == DefaultRetryDelay }},
		{"keys in capitals", "Retry-Delay: 2s", func(l Listener, _ *Snapshot) bool { return l.RetryDelay == 2*time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("gw.yaml", []byte(listenerYAML("name: a", "listen-addr: :1", "endpoints: [a:1]", tt.extra)))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(s.Listeners[0], s) {
				t.Errorf("unexpected result %#v", s.Listeners[0])
			}
		})
	}
}

func TestParseYAMLAnchors(t *testing.T) {
	const data = `
listeners:
  - &base
    name: a
    listen-addr: :1
    endpoints: [a:1]
    retry-delay: 7s
  - <<: *base
    name: b
    listen-addr: :2
`
	s, err := Parse("gw.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if b := s.Listeners[1]; b.Name != "b" || b.RetryDelay != 7*time.Second || !reflect.DeepEqual(b.Endpoints, []string{"a:1"}) {
		t.Errorf("merged listener = %#v", b)
	}
}

func TestParseResultsAreIndependent(t *testing.T) {
	data := []byte(twoListenersYAML)
	a, err := Parse("gw.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("gw.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	a.Listeners[0].Endpoints[0] = "changed:1"
	a.Listeners[1].Name = "changed"
	if b.Listeners[0].Endpoints[0] != "10.0.0.1:2379" || b.Listeners[1].Name != "discovered" {
		t.Errorf("two parses share memory: %#v", b)
	}
	if string(data) != twoListenersYAML {
		t.Errorf("Parse modified its input")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "gw.toml")
	if err := os.WriteFile(good, []byte(twoListenersTOML), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load(good)
	if err != nil {
		t.Fatalf("Load(%s): %v", good, err)
	}
	// Load digests the files a listener references (here missing ones).
	for i, l := range s.Listeners {
		if (len(l.Files()) > 0) != (l.FilesDigest != "") {
			t.Errorf("listener %s: files %q, digest %q", l.Name, l.Files(), l.FilesDigest)
		}
		s.Listeners[i].FilesDigest = ""
	}
	if want := twoListeners(good); !reflect.DeepEqual(s, want) {
		t.Errorf("Load(%s)\n got %#v\nwant %#v", good, s, want)
	}

	confDir := filepath.Join(dir, "conf.yaml")
	if err := os.Mkdir(confDir, 0o700); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		want       []string
	}{
		{"missing file", filepath.Join(dir, "missing.yaml"), []string{filepath.Join(dir, "missing.yaml"), "no such file"}},
		{"directory", confDir, []string{confDir, "is a directory"}},
		{"empty file", empty, []string{empty, "file is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Load(tt.path)
			if err == nil {
				t.Fatalf("Load succeeded: %#v", s)
			}
			errorContains(t, err, tt.want)
		})
	}
}

// errorContains reports each of want that err's text does not contain.
func errorContains(t *testing.T, err error, want []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q:\n%v", w, err)
		}
	}
}

// TestYAMLSyntaxErrorLine checks the line of YAML syntax errors: yaml.v3
// counts its parser errors' lines from 0, and the gateway must not.
func TestYAMLSyntaxErrorLine(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		line       int
	}{
		{"unclosed flow list", "listeners:\n  - name: a\n    listen-addr: 127.0.0.1:1\n    endpoints: [x:1\n", 4},
		{"bad indentation in a list", "log-level: info\nlisteners:\n  - name: a\n   bad: x\n", 4},
		{"unclosed list after two keys", "a: b\nb: c\nx: [a\n", 3},
		{"bad first line", "[a\n", 1},
		{"tab (a scanner error)", "a: b\n\tc: d\n", 2},
		{"mapping in a value (a scanner error)", "a: b\nc: d: e\n", 2},
		{"unquoted IPv6", "listeners:\n  - name: a\n    listen-addr: [::1]:23790\n    endpoints: [x:1]\n", 3},
	} {
		_, err := Parse("gw.yaml", []byte(tc.data))
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%s: err = %v, want a *SyntaxError", tc.name, err)
			continue
		}
		if se.Line != tc.line {
			t.Errorf("%s: line %d, want %d (%v)", tc.name, se.Line, tc.line, err)
		}
	}
}

func TestYAMLUnquotedIPv6Hint(t *testing.T) {
	for _, tc := range []struct{ data, want string }{
		{"listeners:\n  - name: a\n    listen-addr: [::1]:23790\n    endpoints: [x:1]\n",
			`line 3: YAML reads [::1]:23790 as a list: quote it: listen-addr: "[::1]:23790"`},
		{"listeners:\n  - name: a\n    listen-addr: \"[::1]:23790\"\n    endpoints:\n      - [2001:db8::1]:2379 # a\n",
			`line 5: YAML reads [2001:db8::1]:2379 as a list: quote it: - "[2001:db8::1]:2379"`},
	} {
		_, err := Parse("gw.yaml", []byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want it to contain %q", err, tc.want)
		}
	}
}

// TestTrustedCAFileWithHTTPSEndpoints: trusted-ca-file verifies static
// https:// members too, so it is accepted with them.
func TestTrustedCAFileWithHTTPSEndpoints(t *testing.T) {
	data := listenerYAML("name: a", "listen-addr: 127.0.0.1:23790", "endpoints: [https://10.0.0.1:2379, http://10.0.0.2:2379]", "trusted-ca-file: /ca.pem")
	s, err := Parse("/etc/gw.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	l := s.Listeners[0]
	if l.TrustedCAFile != "/ca.pem" || !slices.Equal(l.TLSEndpoints, []string{"10.0.0.1:2379"}) || !slices.Equal(l.Endpoints, []string{"10.0.0.1:2379", "10.0.0.2:2379"}) {
		t.Fatalf("listener: endpoints %v, TLS %v, trusted-ca-file %q", l.Endpoints, l.TLSEndpoints, l.TrustedCAFile)
	}
}
