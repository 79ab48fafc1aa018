package config

import (
	"errors"
	"testing"
)

// FuzzParse checks that Parse never panics, and that whatever it accepts is
// a valid snapshot.
func FuzzParse(f *testing.F) {
	f.Add([]byte(twoListenersYAML), false)
	f.Add([]byte(twoListenersTOML), true)
	f.Add([]byte("listeners:\n  - {name: a, listen-addr: ':1', endpoints: ['http://[::1]:2379']}\n"), false)
	f.Add([]byte("listeners:\n  - name: a\n    endpoint: [x]\n    retry-delay: 30\n  - \n"), false)
	f.Add([]byte("[[listeners]]\nname = 1\nlisten-addr = [\"x\"]\n[listeners.x]\n"), true)
	f.Add([]byte("log.level: {a: [1, {b: c}]}\n"), false)
	f.Add([]byte("listeners = [1, \"a\", {name = \"b\"}]\n"), true)
	f.Add([]byte("- a\n"), false)
	f.Add([]byte{}, true)

	f.Fuzz(func(t *testing.T, data []byte, isTOML bool) {
		path := "fuzz.yaml"
		if isTOML {
			path = "fuzz.toml"
		}
		s, err := Parse(path, data)
		if err != nil {
			if s != nil {
				t.Fatalf("Parse returned both a snapshot and an error: %v", err)
			}
			_ = err.Error()
			var ve *ValidationError
			if errors.As(err, &ve) {
				if len(ve.Problems) == 0 {
					t.Fatalf("ValidationError without problems")
				}
				for _, p := range ve.Problems {
					if p.Msg == "" {
						t.Fatalf("problem without a message: %+v", p)
					}
				}
			}
			return
		}
		if s == nil {
			t.Fatal("Parse returned neither a snapshot nor an error")
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse accepted a snapshot that does not validate: %v\ninput: %q", err, data)
		}
		if s.File != path || len(s.Listeners) == 0 {
			t.Fatalf("bad snapshot %#v", s)
		}
	})
}
