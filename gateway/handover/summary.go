package handover

import (
	"syscall"
	"time"
)

// The transports, as the metrics' via label names them.
const (
	ViaSocket = "handover"
	ViaStore  = "fdstore"
)

// Summary describes one handover, for the log and the metrics of both
// processes.
type Summary struct {
	// Via is the transport: ViaSocket or ViaStore.
	Via string
	// PID is the other process's (the socket transport's only).
	PID int
	// Listeners counts the listeners' sockets given or received, Admin
	// whether the admin server's was one of them. Through the store, the
	// new process counts the sockets its configuration claimed.
	Listeners int
	Admin     bool
	// Unused counts the sockets received that no configuration claimed.
	Unused int
	// Conns counts the connections given or received, Left those left to
	// drain in the old process, Adopted those the new one adopted.
	Conns, Left, Adopted int
	// Duration is from the first message to the last; of it, Export is
	// the time the old process took to export its connections, and Send
	// the time it spent sending them (the two alternate, a batch at a
	// time); Receive the time the new one took to receive them, and Adopt
	// to adopt them.
	Duration, Export, Send, Receive, Adopt time.Duration
	// CPU is the CPU time this process spent meanwhile (user and system,
	// all its threads): on a shared machine, a figure that waiting for
	// the CPU doesn't inflate.
	CPU time.Duration
}

// cpuTime returns the CPU time the process has spent so far (user and
// system); 0 if the system can't tell.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// countSockets fills Listeners and Admin from the sockets given.
func (sum *Summary) countSockets(socks []Socket) {
	for _, sk := range socks {
		if sk.Kind == KindAdmin {
			sum.Admin = true
		} else {
			sum.Listeners++
		}
	}
}
