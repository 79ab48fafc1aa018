package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

// callerEnv makes the test binary a caller of the socket it names: it
// makes the call "echo" and prints the answer or the error.
const callerEnv = "ETCD_GATEWAY_TEST_CONTROL_CALLER"

func TestMain(m *testing.M) {
	if path := os.Getenv(callerEnv); path != "" {
		var out echo
		if err := NewClient(path).Call(context.Background(), "echo", echo{Text: "hi"}, &out); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("answer:", out.Text)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type echo struct {
	Text string `json:"text"`
}

// serve starts a control socket in dir with one call, echo, which fails
// on the text "fail".
func serve(t *testing.T, dir string, access Access) *Server {
	t.Helper()
	mux := http.NewServeMux()
	Handle(mux, "echo", func(_ context.Context, in echo) (echo, error) {
		if in.Text == "fail" {
			return echo{}, errors.New("asked to fail")
		}
		return in, nil
	})
	log := logrus.New()
	log.SetOutput(io.Discard)
	s, err := Listen(filepath.Join(dir, "control.sock"), access, mux, log)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func TestCallRoundTripsAndCarriesErrors(t *testing.T) {
	s := serve(t, t.TempDir(), Access{})
	c := NewClient(s.Path())
	var out echo
	if err := c.Call(context.Background(), "echo", echo{Text: "hi"}, &out); err != nil || out.Text != "hi" {
		t.Fatalf("echo: %+v, %v", out, err)
	}
	err := c.Call(context.Background(), "echo", echo{Text: "fail"}, &out)
	if err == nil || err.Error() != "asked to fail" {
		t.Fatalf("a failing call returned %v, want its message", err)
	}
	if err := c.Call(context.Background(), "nosuch", echo{}, &out); err == nil {
		t.Fatal("an unknown call succeeded")
	}
	fi, err := os.Stat(s.Path())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
}

func TestNoGatewayIsSaid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control.sock")
	err := NewClient(path).Call(context.Background(), "echo", echo{}, &echo{})
	if err == nil || !strings.Contains(err.Error(), "no gateway answers on control socket "+path) {
		t.Fatalf("call with no gateway: %v", err)
	}
}

// TestCloseLeavesANewProcessSocket: a socket bound over the path by a
// newer process (a handover) stays when the old one closes.
func TestCloseLeavesANewProcessSocket(t *testing.T) {
	dir := t.TempDir()
	old := serve(t, dir, Access{})
	newer := serve(t, dir, Access{})
	old.Close(context.Background())
	var out echo
	if err := NewClient(newer.Path()).Call(context.Background(), "echo", echo{Text: "x"}, &out); err != nil {
		t.Fatalf("the newer socket is gone after the old one closed: %v", err)
	}
}
