package control

import (
	"fmt"
	"net/http"
	"os"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/internal/unixsock"
)

// authorize lets a call through when its caller may use the socket, and
// answers 403 otherwise. The socket file's mode keeps others out already;
// this also holds when the file's mode or its directory's was loosened,
// and tells the refused caller why.
func (s *Server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cred, ok := r.Context().Value(credKey{}).(unixsock.Cred)
		if ok && s.allows(cred) {
			next.ServeHTTP(w, r)
			return
		}
		s.log.WithFields(logrus.Fields{"uid": cred.UID, "gid": cred.GID, "pid": cred.PID, "call": r.URL.Path}).
			Warn("control socket: call refused: the caller is not root, the gateway's user or in control-group")
		writeError(w, http.StatusForbidden, fmt.Errorf("refused: user %d is not root, the gateway's user%s", cred.UID, s.groupClause()))
	})
}

// allows reports whether the process of cred may use the socket.
func (s *Server) allows(cred unixsock.Cred) bool {
	switch {
	case cred.UID == 0, int(cred.UID) == os.Geteuid():
		return true
	case s.access.Group != nil:
		return cred.InGroup(*s.access.Group)
	}
	return false
}

// groupClause names the access group for an error, or says there is none.
func (s *Server) groupClause() string {
	if s.access.Group == nil {
		return " (no control-group is set)"
	}
	return fmt.Sprintf(" or in control-group %q", s.access.GroupName)
}
