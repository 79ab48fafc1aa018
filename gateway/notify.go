package gateway

import (
	"strings"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/sirupsen/logrus"
)

// notify sends state to systemd when the gateway runs as a Type=notify or
// Type=notify-reload service (NOTIFY_SOCKET is set); elsewhere it does
// nothing. A failure is logged and otherwise ignored.
func (g *Gateway) notify(state string) { notifyLogged(g.log, state) }

// notifyLogged is notify with log, for a gateway not built yet.
func notifyLogged(log logrus.FieldLogger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.WithError(err).Warn("sd_notify failed")
	}
}

// notifyReloading tells systemd a reload has begun, with the monotonic
// time that Type=notify-reload requires next to RELOADING=1.
func (g *Gateway) notifyReloading() {
	g.notify(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
}

// firstLine returns the first line of s, for a one-line STATUS=.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
