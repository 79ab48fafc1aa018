package admin

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

func get(t *testing.T, addr, path string) (int, string, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

func TestEndpoints(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "etcd_gateway_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	var unhealthy atomic.Pointer[string]
	log := logrus.New()
	log.SetOutput(io.Discard)
	s := Start(ln, Options{
		Gatherer: reg,
		Health: func() error {
			if r := unhealthy.Load(); r != nil {
				return errors.New(*r)
			}
			return nil
		},
		Status: func() any { return map[string]int{"listeners": 2} },
		Log:    log,
	})
	addr := s.Addr().String()

	if code, _, body := get(t, addr, "/metrics"); code != 200 || !strings.Contains(body, "etcd_gateway_test_total 3") {
		t.Fatalf("/metrics: %d %q", code, body)
	}
	if code, _, body := get(t, addr, "/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz healthy: %d %q", code, body)
	}
	reason := `listener "main" is not accepting connections`
	unhealthy.Store(&reason)
	if code, _, body := get(t, addr, "/healthz"); code != 503 || body != reason+"\n" {
		t.Fatalf("/healthz unhealthy: %d %q", code, body)
	}
	if code, ct, body := get(t, addr, "/status"); code != 200 || ct != "application/json" || !strings.Contains(body, `"listeners": 2`) {
		t.Fatalf("/status: %d %s %q", code, ct, body)
	}
	if code, _, _ := get(t, addr, "/debug/pprof/"); code != 404 {
		t.Fatalf("/debug/pprof/ off: %d, want 404", code)
	}
	s.SetPprof(true)
	if code, _, body := get(t, addr, "/debug/pprof/cmdline"); code != 200 || body == "" {
		t.Fatalf("/debug/pprof/cmdline on: %d %q", code, body)
	}
	if code, _, _ := get(t, addr, "/nothing"); code != 404 {
		t.Fatalf("/nothing: %d, want 404", code)
	}

	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("the admin server still accepts after Shutdown")
	}
}

// TestIndexServesThePage: with a Page, / is the page (and only / : other
// paths stay 404); without one, / lists the endpoints as text.
func TestIndexServesThePage(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	for _, withPage := range []bool{true, false} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		opts := Options{Gatherer: prometheus.NewRegistry(), Health: func() error { return nil }, Status: func() any { return nil }, Log: log}
		if withPage {
			opts.Page = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				_, _ = io.WriteString(w, "<p>the page</p>")
			})
		}
		s := Start(ln, opts)
		addr := s.Addr().String()
		code, ct, body := get(t, addr, "/")
		switch {
		case withPage && (code != 200 || !strings.HasPrefix(ct, "text/html") || body != "<p>the page</p>"):
			t.Errorf("/ with a page: %d %s %q", code, ct, body)
		case !withPage && (code != 200 || !strings.HasPrefix(ct, "text/plain") || !strings.Contains(body, "/metrics")):
			t.Errorf("/ without a page: %d %s %q", code, ct, body)
		}
		if code, _, _ := get(t, addr, "/index.html"); code != 404 {
			t.Errorf("/index.html: %d, want 404", code)
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestShutdownAnswersAcceptedConnections checks that a request sent on a
// connection accepted before Shutdown, and read after Shutdown began, is
// answered: net/http alone would close it without a word, which is what
// an admin client saw when the gateway handed its admin socket over.
func TestShutdownAnswersAcceptedConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	s := Start(ln, Options{Gatherer: prometheus.NewRegistry(), Health: func() error { return nil }, Status: func() any { return nil }, Log: log})
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testutil.WaitFor(t, "the connection to be tracked", 10*time.Second, func() bool { return s.open.count() == 1 })
	stopped := make(chan error, 1)
	go func() { stopped <- s.Shutdown(context.Background()) }()
	testutil.WaitFor(t, "Shutdown to wait for the connection", 10*time.Second, s.stopping.Load)
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 200") {
		t.Fatalf("answer after Shutdown began: %q, %v", b, err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}
