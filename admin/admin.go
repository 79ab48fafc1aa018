// Package admin serves the gateway's admin HTTP endpoints on their own
// address: a status page for a person at /, /metrics for Prometheus,
// /healthz for probes, /status as JSON and, when enabled, Go's profiler
// under /debug/pprof/. It knows nothing of the gateway: what it serves
// comes from the Options.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
)

// Options are what the admin server serves.
type Options struct {
	// Gatherer is what /metrics exposes.
	Gatherer prometheus.Gatherer
	// Health returns nil when the gateway is healthy, else the reason it
	// is not; /healthz answers 200 or 503 with that reason.
	Health func() error
	// Status returns the value /status sends, encoded as JSON.
	Status func() any
	// Page, when set, serves / (the status page, for a person); without
	// it / lists the endpoints as plain text.
	Page http.Handler
	// Pprof serves /debug/pprof/; SetPprof changes it later.
	Pprof bool
	// Log receives the server's errors.
	Log logrus.FieldLogger
}

// Server is a running admin HTTP server.
type Server struct {
	ln    net.Listener
	srv   *http.Server
	opts  Options
	pprof atomic.Bool
	done  chan struct{}
	open  *unanswered
	// stopping is set when Shutdown begins.
	stopping atomic.Bool
}

// Timeouts of the admin server. There is no write timeout, so that a CPU
// profile can take as long as asked for.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
)

// Start serves the admin endpoints on ln until Shutdown.
func Start(ln net.Listener, opts Options) *Server {
	s := &Server{ln: ln, opts: opts, done: make(chan struct{}), open: newUnanswered()}
	s.pprof.Store(opts.Pprof)
	s.srv = &http.Server{
		Handler:           s.routes(),
		ConnState:         s.open.track,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			opts.Log.WithError(err).Error("admin server stopped")
		}
	}()
	return s
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// SetPprof turns /debug/pprof/ on or off.
func (s *Server) SetPprof(on bool) { s.pprof.Store(on) }

// Shutdown stops the server: it answers the connections it accepted that
// are not idle (see unanswered), stops accepting, lets requests in flight
// finish until ctx is done, then closes the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	s.open.wait(ctx)
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	<-s.done
	if err != nil {
		return fmt.Errorf("admin server shutdown: %w", err)
	}
	return nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{
		ErrorLog:      s.opts.Log,
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /status", s.status)
	mux.HandleFunc("/debug/pprof/", s.debug)
	mux.HandleFunc("GET /{$}", s.index)
	return mux
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	if s.opts.Page != nil {
		s.opts.Page.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "etcd-gateway admin server")
	fmt.Fprintln(w, "  /metrics   Prometheus metrics")
	fmt.Fprintln(w, "  /healthz   200 when healthy, 503 and the reason otherwise")
	fmt.Fprintln(w, "  /status    listeners, endpoints and reloads as JSON")
	if s.pprof.Load() {
		fmt.Fprintln(w, "  /debug/pprof/   Go profiler")
	}
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.opts.Health(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, err.Error())
		return
	}
	fmt.Fprintln(w, "ok")
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	body, err := json.MarshalIndent(s.opts.Status(), "", "  ")
	if err != nil {
		s.opts.Log.WithError(err).Error("admin /status: encoding failed")
		http.Error(w, "status encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(body, '\n'))
}

// debug serves Go's profiler when it is on, else 404.
func (s *Server) debug(w http.ResponseWriter, r *http.Request) {
	if !s.pprof.Load() {
		http.Error(w, "pprof is off: set admin-pprof: true", http.StatusNotFound)
		return
	}
	switch strings.TrimPrefix(r.URL.Path, "/debug/pprof/") {
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		pprof.Index(w, r) // the index, and every named profile
	}
}
