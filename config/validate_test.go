package config

import (
	"errors"
	"strings"
	"testing"
)

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{Key: "log-level", Msg: "bad"}, `key "log-level": bad`},
		{Problem{Listener: "main", Key: "endpoints", Msg: "bad"}, `listener "main": key "endpoints": bad`},
		{Problem{Listener: "listeners[2]", Key: "name", Msg: "missing"}, `listeners[2]: key "name": missing`},
		{Problem{Listener: "main", Key: "endpoint", Msg: "unknown key; did you mean \"endpoints\"?"}, `listener "main": unknown key "endpoint"; did you mean "endpoints"?`},
		{Problem{Key: "--endpoints", Msg: "bad"}, `flag --endpoints: bad`},
		{Problem{Listener: "listeners[0]", Msg: "not a table"}, `listeners[0]: not a table`},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestValidationErrorFormat(t *testing.T) {
	var err error = &ValidationError{File: "/etc/gw.yaml", Problems: []Problem{
		{Key: "log-levl", Msg: "unknown key"},
		{Listener: "main", Key: "retry-delay", Msg: "0s: must be greater than zero"},
	}}
	want := "/etc/gw.yaml: unknown key \"log-levl\"\n" +
		"/etc/gw.yaml: listener \"main\": key \"retry-delay\": 0s: must be greater than zero"
	if err.Error() != want {
		t.Errorf("Error() =\n%s\nwant\n%s", err, want)
	}
	wrapped := errors.Join(errors.New("reload"), err)
	var ve *ValidationError
	if !errors.As(wrapped, &ve) || len(ve.Problems) != 2 {
		t.Errorf("errors.As through a wrapper failed")
	}
}

func TestSnapshotValidate(t *testing.T) {
	s, err := Parse("gw.yaml", []byte(twoListenersYAML))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("parsed snapshot does not validate: %v", err)
	}

	bad := twoListeners("gw.yaml")
	bad.LogLevel = "INFO" // Parse lower-cases; a snapshot must hold the canonical value
	bad.Listeners[0].Endpoints = append(bad.Listeners[0].Endpoints, "http://10.0.0.9:2379")
	bad.Listeners[1].Name = bad.Listeners[0].Name
	bad.Listeners[1].DialTimeout = 0
	err = bad.Validate()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate() = %v, want a *ValidationError", err)
	}
	for _, w := range []Problem{
		{Key: "log-level"},
		{Listener: "main", Key: "endpoints"},
		{Listener: "listeners[1]", Key: "name"},
		{Listener: "listeners[1]", Key: "dial-timeout"},
	} {
		if !hasProblem(ve.Problems, w) {
			t.Errorf("missing %+v in\n%v", w, err)
		}
	}
	if !strings.HasPrefix(err.Error(), "gw.yaml: ") {
		t.Errorf("error does not name the file: %v", err)
	}
}

func TestParseHostPort(t *testing.T) {
	tests := []struct {
		addr     string
		optional bool
		wantErr  string // empty: valid
	}{
		{"10.0.0.1:2379", false, ""},
		{"etcd-0.etcd.svc.cluster.local:2379", false, ""},
		{"etcd_0.example.com.:2379", false, ""},
		{"[::1]:2379", false, ""},
		{"[2001:db8::1]:1", false, ""},
		{":2379", true, ""},
		{":2379", false, "missing host"},
		{"10.0.0.1", false, "missing port"},
		{"[::1]", false, "missing port"},
		{"10.0.0.1:", false, "missing port number"},
		{"10.0.0.1:0", false, "out of range"},
		{"10.0.0.1:65536", false, "out of range"},
		{"10.0.0.1:+80", false, "not a number"},
		{"::1:2379", false, "needs brackets"},
		{"[example.com]:2379", false, "not an IPv6 address"},
		{"[10.0.0.1]:2379", false, "not an IPv6 address"},
		{"[]:2379", true, "empty IPv6"},
		{"-bad-.com:1", false, "starts or ends with '-'"},
		{"a..b:1", false, "empty label"},
		{"10.0.0.256:1", false, "not a valid IPv4"},
		{" 10.0.0.1:1", false, "space"},
		{"", true, "empty"},
	}
	for _, tt := range tests {
		_, err := parseHostPort(tt.addr, tt.optional, "x:1")
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("parseHostPort(%q) = %v, want no error", tt.addr, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("parseHostPort(%q) = %v, want an error containing %q", tt.addr, err, tt.wantErr)
		}
	}
}

// TestKeyError checks the one form of "file, listener, key" errors, as the
// listener and gateway packages write it, and that the cause is kept.
func TestKeyError(t *testing.T) {
	cause := errors.New("open /ca.pem: no such file or directory")
	tests := []struct {
		e    *KeyError
		want string
	}{
		{&KeyError{File: "/etc/gw.yaml", Listener: "main", Key: "upstream-tls.ca-file", Err: cause},
			`/etc/gw.yaml: listener "main": key "upstream-tls.ca-file": open /ca.pem: no such file or directory`},
		{&KeyError{File: "command line", Listener: "default", Err: cause},
			`command line: listener "default": open /ca.pem: no such file or directory`},
		{&KeyError{File: "/etc/gw.yaml", Key: "admin-addr", Err: cause},
			`/etc/gw.yaml: key "admin-addr": open /ca.pem: no such file or directory`},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		if !errors.Is(tt.e, cause) {
			t.Errorf("%v does not unwrap to its cause", tt.e)
		}
	}
}
