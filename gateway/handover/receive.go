package handover

import (
	"context"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/listener"
)

// Incoming is a handover this process receives, by either transport: the
// listening sockets first, which its configuration claims (Received)
// while it builds; then Finish, or Abort if the build failed.
type Incoming interface {
	// Sockets are the listening sockets received; their files are the
	// caller's.
	Sockets() []Socket
	// Finish ends the handover once the gateway is built on the sockets
	// in holds: the unclaimed ones are closed, the claimed ones accept,
	// and lns adopt the connections received. It logs the outcome; false
	// when the handover failed and this process serves without the
	// connections.
	Finish(in *Received, lns map[string]*listener.Listener) (Summary, bool)
	// Abort ends the handover before Finish: the connections received
	// are closed (the old process, if any, adopts them again).
	Abort()
}

// Receive starts receiving the handover this process starts with: from
// systemd's file descriptor store when sd holds the gateway's
// descriptors, else from the gateway listening on socketPath (the upgrade
// socket; "" for none). It returns nil when there is none: the gateway
// binds its own sockets. notify sends a state to systemd.
func Receive(ctx context.Context, sd *Systemd, socketPath string, notify func(string), log logrus.FieldLogger) Incoming {
	if r := restore(sd, notify, log); r != nil {
		return r
	}
	if socketPath == "" {
		return nil
	}
	r, err := dial(ctx, socketPath, log)
	if err != nil {
		// A gateway answered but refused: it serves on. Binding will say
		// whether its addresses are free.
		log.WithError(err).Warn("upgrade: could not take over from the running gateway; binding")
	}
	if r == nil {
		return nil
	}
	return r
}
