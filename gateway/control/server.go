// Package control serves the gateway's control socket: the one door for
// calls that change the running gateway (reload, drain, undrain). It is a
// unix socket, so that the kernel says who connects, open to root, the
// gateway's own user and one configured group only; the TCP admin port,
// which every local user can reach, only reads. The calls are JSON over
// HTTP, as Docker's socket is: a framing every tool speaks (curl
// --unix-socket) and nothing to invent.
package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/internal/unixsock"
)

// Access is who may use the socket besides root and the gateway's own
// user: the members of one group, when Group is set.
type Access struct {
	// Group is the group's number; GroupName how the file named it.
	Group     *uint32
	GroupName string
}

// Server answers calls on the control socket.
type Server struct {
	ln     *unixsock.Listener
	http   *http.Server
	access Access
	log    logrus.FieldLogger
}

// credKey is the request context's key of the caller's credentials.
type credKey struct{}

// Listen binds the control socket at path (mode 0600, or 0660 and owned by
// the access group) and serves h there, behind the access check, once
// Serve runs.
func Listen(path string, access Access, h http.Handler, log logrus.FieldLogger) (*Server, error) {
	mode := os.FileMode(0o600)
	if access.Group != nil {
		mode = 0o660
	}
	ln, err := unixsock.Listen("unix", path, mode)
	if err != nil {
		return nil, fmt.Errorf("control-socket %q: %w", path, err)
	}
	if access.Group != nil {
		if err := os.Chown(path, -1, int(*access.Group)); err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("control-socket %q: control-group %q: %w", path, access.GroupName, err)
		}
	}
	s := &Server{ln: ln, access: access, log: log}
	s.http = &http.Server{Handler: s.authorize(h), ReadHeaderTimeout: 10 * time.Second, ConnContext: withCred}
	return s, nil
}

// Path is where the socket is bound.
func (s *Server) Path() string { return s.ln.Path() }

// Serve answers calls until Close.
func (s *Server) Serve() {
	if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.WithError(err).Error("control socket: serving stopped")
	}
}

// Close waits up to ctx for the calls in progress, then stops, and
// removes the socket's path while it is still this process's.
func (s *Server) Close(ctx context.Context) {
	_ = s.http.Shutdown(ctx)
	_ = s.ln.Close()
}

// withCred puts the credentials of the process behind c in ctx.
func withCred(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	cred, err := unixsock.PeerCred(uc)
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, credKey{}, cred)
}
