package handover

import (
	"cmp"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/listener"
)

// Host is the running gateway as the old side of a handover sees it.
type Host interface {
	// Lock holds reloads off until Unlock, so that the sockets given are
	// the sockets paused; its error refuses the handover (the gateway
	// handed over already, or is stopping).
	Lock() error
	Unlock()
	// Gates are the listening sockets to give: every listener's, and the
	// admin server's.
	Gates() []Gate
	// Listeners are the running listeners by name, whose connections
	// move.
	Listeners() map[string]*listener.Listener
	// HandedOver tells the gateway that the new process serves: it stops
	// accepting for good and drains, as at shutdown. Called with the lock
	// held; Unlock follows.
	HandedOver(Summary)
}

// Gate is a listening socket to give, and what the new process matches it
// by.
type Gate struct {
	// Kind is KindListener or KindAdmin; Name the listener's name, empty
	// for the admin server; ConfigAddr the address as configured.
	Kind, Name, ConfigAddr string
	// Drained are a listener's drained endpoints, which stay drained in
	// the new process.
	Drained []string
	*listener.Gate
}

// gather returns the sockets of gates, each with a new descriptor the
// caller closes once given: what both transports give.
func gather(gates []Gate) ([]Socket, error) {
	socks := make([]Socket, 0, len(gates))
	for _, g := range gates {
		f, err := g.File()
		if err != nil {
			closeSockets(socks)
			return nil, fmt.Errorf("%s %s: %w", g.Kind, g.Name, err)
		}
		socks = append(socks, Socket{Kind: g.Kind, Name: g.Name, ConfigAddr: g.ConfigAddr, Addr: g.Addr().String(), Drained: g.Drained, File: f})
	}
	return socks, nil
}

// closeSockets closes this process's descriptors of socks.
func closeSockets(socks []Socket) {
	for _, sk := range socks {
		_ = sk.File.Close()
	}
}

// pause stops accepting on gates; connects wait in their backlogs.
func pause(gates []Gate) {
	for _, g := range gates {
		g.Pause()
	}
}

// resume makes gates accept again.
func resume(gates []Gate) {
	for _, g := range gates {
		g.Resume()
	}
}

// keepPaths makes gates leave their socket files at close: the next
// process serves them.
func keepPaths(gates []Gate) {
	for _, g := range gates {
		g.KeepPath()
	}
}

// exportTimeout bounds how long the old gateway waits for a connection's
// destinations to take what it holds before giving it; one that doesn't
// stays and drains here.
const exportTimeout = time.Second

// exportConns exports the plain connections of lns in batches of at most
// size, each given to emit as soon as it is exported, the longest idle
// first: the busiest go last, and stall for the last batch only. It stops
// when emit returns false. left counts the connections that stay (TLS, a
// destination that didn't take the bytes in time, or not reached when emit
// stopped it). Call it with the listeners paused.
func exportConns(lns map[string]*listener.Listener, size int, emit func([]Conn) bool) (left int) {
	cands, left := candidates(lns)
	for len(cands) > 0 {
		n := min(len(cands), size)
		batch := make([]listener.ExportCandidate, n)
		for i, c := range cands[:n] {
			batch[i] = c.ExportCandidate
		}
		exported, ok := listener.ExportBatch(batch, exportTimeout)
		var conns []Conn
		for i, c := range cands[:n] {
			if ok[i] {
				conns = append(conns, Conn{Listener: c.name, ExportedConn: exported[i]})
			} else {
				left++
			}
		}
		cands = cands[n:]
		if len(conns) > 0 && !emit(conns) {
			return left + len(cands)
		}
	}
	return left
}

// namedCandidate is a connection that may move, and its listener's name.
type namedCandidate struct {
	listener.ExportCandidate
	name string
}

// candidates returns the connections of every listener that may move,
// the longest idle first, and how many stay.
func candidates(lns map[string]*listener.Listener) (cands []namedCandidate, left int) {
	for name, l := range lns {
		c, n := l.ExportCandidates()
		left += n
		for _, ec := range c {
			cands = append(cands, namedCandidate{ec, name})
		}
	}
	slices.SortStableFunc(cands, func(a, b namedCandidate) int { return cmp.Compare(b.Idle, a.Idle) })
	return cands, left
}

// adoptAll has the listeners of lns adopt conns, the last first (the old
// gateway gives its busiest connections last, and they are the ones
// waiting), on as many goroutines as there are CPUs; it returns how many
// were adopted. A connection whose listener is not in lns, or that can't
// be adopted, is closed; what says which connections, for the log. The
// new process adopts what it received, the old one what the new one did
// not take.
func adoptAll(lns map[string]*listener.Listener, conns []Conn, log logrus.FieldLogger, what string) int {
	return parallel(len(conns), func(i int) bool {
		c := conns[len(conns)-1-i]
		l := lns[c.Listener]
		if l == nil {
			c.Close()
			return false
		}
		if err := l.Adopt(c.ExportedConn); err != nil {
			log.WithError(err).Warnf("%s could not be adopted; closed", what)
			return false
		}
		return true
	})
}

// parallel runs do(0) to do(n-1) on as many goroutines as there are CPUs
// and returns how many returned true.
func parallel(n int, do func(i int) bool) int {
	var ok, next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				if do(int(i)) {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(ok.Load())
}
