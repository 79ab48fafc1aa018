package config

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestFromFlagsDefaultsAreEtcds(t *testing.T) {
	f := DefaultFlags()
	// etcd gateway start: --listen-addr 127.0.0.1:23790,
	// --endpoints 127.0.0.1:2379, --retry-delay 1m.
	want := Flags{ListenAddr: "127.0.0.1:23790", Endpoints: []string{"127.0.0.1:2379"}, RetryDelay: time.Minute}
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("DefaultFlags() = %#v, want %#v", f, want)
	}
	s, err := FromFlags(f)
	if err != nil {
		t.Fatal(err)
	}
	wantSnap := &Snapshot{
		LogLevel:        "info",
		LogFormat:       "text",
		ShutdownTimeout: 10 * time.Second,
		Listeners: []Listener{{
			Name:              "default",
			ListenAddr:        "127.0.0.1:23790",
			Endpoints:         []string{"127.0.0.1:2379"},
			DNSRefresh:        30 * time.Second,
			RetryDelay:        time.Minute,
			DialTimeout:       3 * time.Second,
			OnEndpointRemoved: RemovedKeep,
			DrainTimeout:      30 * time.Second,
			KeepAlive:         15 * time.Second,
			SocketMode:        DefaultSocketMode,
			Policy:            "sticky-random",
			HealthCheck:       HealthCheck{Type: "none", Interval: 5 * time.Second, Timeout: 2 * time.Second, Fall: 2, Rise: 2, LeaderlessMax: DefaultLeaderlessMax, LagMax: DefaultLagMax, SuspectAfter: DefaultSuspectAfter},
			OnUnhealthy:       "keep",
		}},
	}
	if !reflect.DeepEqual(s, wantSnap) {
		t.Errorf("FromFlags(DefaultFlags())\n got %#v\nwant %#v", s, wantSnap)
	}
}

func TestFromFlagsEqualsFile(t *testing.T) {
	tests := []struct {
		name  string
		flags Flags
		yaml  string
	}{
		{
			name:  "endpoints",
			flags: Flags{ListenAddr: "0.0.0.0:23790", Endpoints: []string{"https://10.0.0.1:2379", "10.0.0.2:2379"}, RetryDelay: 10 * time.Second},
			// etcd's gateway has no health checks: the drop-in mode neither.
			yaml: `health-check: {type: none}
on-unhealthy: keep
slow-start: 0s
rebalance: false
listeners:
  - name: default
    listen-addr: 0.0.0.0:23790
    endpoints: [https://10.0.0.1:2379, 10.0.0.2:2379]
    retry-delay: 10s
`,
		},
		{
			name: "discovery",
			flags: Flags{ListenAddr: "127.0.0.1:23790", Endpoints: []string{DefaultEndpoint}, RetryDelay: time.Minute,
				DiscoverySRV: "example.com", DiscoverySRVName: "prod", InsecureDiscovery: true, TrustedCAFile: "/ca.pem"},
			yaml: `health-check: {type: none}
on-unhealthy: keep
slow-start: 0s
rebalance: false
listeners:
  - name: default
    listen-addr: 127.0.0.1:23790
    discovery-srv: example.com
    discovery-srv-name: prod
    insecure-discovery: true
    trusted-ca-file: /ca.pem
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fromFlags, err := FromFlags(tt.flags)
			if err != nil {
				t.Fatal(err)
			}
			fromFile, err := Parse("gw.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if fromFlags.File != "" {
				t.Errorf("File = %q, want empty", fromFlags.File)
			}
			fromFile.File = ""
			if !reflect.DeepEqual(fromFlags, fromFile) {
				t.Errorf("FromFlags and Parse differ:\nflags %#v\nfile  %#v", fromFlags, fromFile)
			}
		})
	}
}

func TestFromFlagsDiscoverySRVAlone(t *testing.T) {
	f := DefaultFlags()
	f.DiscoverySRV = "example.com"
	s, err := FromFlags(f)
	if err != nil {
		t.Fatalf("--discovery-srv alone: %v", err)
	}
	if l := s.Listeners[0]; l.Endpoints != nil || l.DiscoverySRV != "example.com" {
		t.Errorf("default endpoints not ignored: %#v", l)
	}
}

func TestFromFlagsErrors(t *testing.T) {
	withDefaults := func(change func(*Flags)) Flags {
		f := DefaultFlags()
		change(&f)
		return f
	}
	tests := []struct {
		name  string
		flags Flags
		want  []string
		key   string
	}{
		{"endpoint without port", withDefaults(func(f *Flags) { f.Endpoints = []string{"infra0.example.com", "infra1.example.com:2379"} }),
			[]string{`flag --endpoints: endpoint "infra0.example.com": missing port`}, "--endpoints"},
		{"empty endpoint", withDefaults(func(f *Flags) { f.Endpoints = []string{"a:1", ""} }),
			[]string{`flag --endpoints: empty endpoint`}, "--endpoints"},
		{"no endpoints", withDefaults(func(f *Flags) { f.Endpoints = nil }),
			[]string{`flag --endpoints: no etcd endpoints: set --endpoints`, "or --discovery-srv"}, "--endpoints"},
		{"explicit endpoints with discovery", withDefaults(func(f *Flags) { f.Endpoints = []string{"10.0.0.1:2379"}; f.DiscoverySRV = "example.com" }),
			[]string{`flag --endpoints: --endpoints and --discovery-srv are both set`}, "--endpoints"},
		{"bad listen address", withDefaults(func(f *Flags) { f.ListenAddr = "localhost" }),
			[]string{`flag --listen-addr: "localhost": missing port`}, "--listen-addr"},
		{"empty listen address", withDefaults(func(f *Flags) { f.ListenAddr = "" }),
			[]string{`flag --listen-addr: missing`}, "--listen-addr"},
		{"zero retry-delay", withDefaults(func(f *Flags) { f.RetryDelay = 0 }),
			[]string{`flag --retry-delay: 0s: must be greater than zero`}, "--retry-delay"},
		{"negative retry-delay", withDefaults(func(f *Flags) { f.RetryDelay = -time.Second }),
			[]string{`flag --retry-delay: -1s: must be greater than zero`}, "--retry-delay"},
		{"insecure-discovery without discovery", withDefaults(func(f *Flags) { f.InsecureDiscovery = true }),
			[]string{`flag --insecure-discovery: only valid with --discovery-srv`}, "--insecure-discovery"},
		{"srv name without discovery", withDefaults(func(f *Flags) { f.DiscoverySRVName = "x" }),
			[]string{`flag --discovery-srv-name: only valid with --discovery-srv`}, "--discovery-srv-name"},
		{"ca without discovery", withDefaults(func(f *Flags) { f.TrustedCAFile = "/ca.pem" }),
			[]string{`flag --trusted-ca-file: only valid with --discovery-srv`}, "--trusted-ca-file"},
		{"bad domain", withDefaults(func(f *Flags) { f.DiscoverySRV = "exa mple.com" }),
			[]string{`flag --discovery-srv: "exa mple.com" is not a DNS domain`}, "--discovery-srv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := FromFlags(tt.flags)
			if err == nil {
				t.Fatalf("FromFlags succeeded: %#v", s)
			}
			errorContains(t, err, tt.want)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error is a %T, want *ValidationError", err)
			}
			if ve.File != "" || !hasProblem(ve.Problems, Problem{Key: tt.key}) {
				t.Errorf("no top-level problem with key %q in %+v", tt.key, ve)
			}
		})
	}
}

func TestFromFlagsCopiesEndpoints(t *testing.T) {
	f := DefaultFlags()
	f.Endpoints = []string{"10.0.0.1:2379", "10.0.0.2:2379"}
	s, err := FromFlags(f)
	if err != nil {
		t.Fatal(err)
	}
	f.Endpoints[0] = "changed:1"
	if s.Listeners[0].Endpoints[0] != "10.0.0.1:2379" {
		t.Errorf("snapshot shares the caller's slice")
	}
}
