//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Warm-up before each counted phase, so that the counts are of a proxy in
// its steady state: threads started, buffers and pools filled.
const (
	warmConns = 200
	warmTrips = 1000
)

// sysResult is one proxy's system calls: for -syscall-conns connections
// and for -syscall-trips round trips on connections already open.
type sysResult struct {
	conns, trips sysCounts
}

// countSyscalls counts, with strace, the system calls of every proxy in
// turn, each on a fresh instance, and prints them per connection and per
// hop.
func (bn *bench) countSyscalls() error {
	bin, err := exec.LookPath("strace")
	if err != nil {
		return fmt.Errorf("-syscalls needs strace on PATH: %w", err)
	}
	bn.say("machine: %s", machine())
	bn.say("system calls counted by %s -c -f -p PID: %d connections (connect, %d B request, response, close), then %d round trips of %d B on open connections; %d at a time",
		bin, bn.o.sysConns, bn.o.connectSize, bn.o.sysTrips, bn.o.size, bn.o.sysWorkers)
	results := map[string]sysResult{}
	for _, k := range bn.kinds {
		if k.launch == nil {
			continue
		}
		r, err := bn.countFor(k, bin)
		if err != nil {
			bn.say("  %-9s error: %v", k.name, err)
			continue
		}
		results[k.name] = r
	}
	bn.printSyscalls(results)
	return nil
}

// countFor counts the system calls of a fresh instance of k.
func (bn *bench) countFor(k kind, strace string) (sysResult, error) {
	var r sysResult
	err := bn.withFresh(k, func(p *proc) error {
		var err error
		if r.conns, err = bn.countConns(p, strace); err != nil {
			return fmt.Errorf("connections: %w", err)
		}
		if r.trips, err = bn.countTrips(p, strace); err != nil {
			return fmt.Errorf("round trips: %w", err)
		}
		return nil
	})
	return r, err
}

// countConns counts p's system calls while -syscall-conns connections go
// through it, -syscall-workers at a time, up to the close of the last one.
func (bn *bench) countConns(p *proc, strace string) (sysCounts, error) {
	if err := connectMany(p.addr, warmConns, bn.o.sysWorkers, bn.o.connectSize); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	socks, err := bn.waitIdle(p, -1)
	if err != nil {
		return nil, err
	}
	return bn.traced(strace, p, func() error {
		if err := connectMany(p.addr, bn.o.sysConns, bn.o.sysWorkers, bn.o.connectSize); err != nil {
			return err
		}
		_, err := bn.waitIdle(p, socks)
		return err
	})
}

// countTrips counts p's system calls during -syscall-trips round trips on
// -syscall-workers connections opened and warmed up before strace
// attaches.
func (bn *bench) countTrips(p *proc, strace string) (sysCounts, error) {
	cs, err := openMany(p.addr, bn.o.sysWorkers)
	defer closeAll(cs)
	if err != nil {
		return nil, err
	}
	if err := tripsMany(cs, warmTrips, bn.o.size); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	return bn.traced(strace, p, func() error { return tripsMany(cs, bn.o.sysTrips, bn.o.size) })
}

// traced runs load with strace attached to p and returns strace's counts.
func (bn *bench) traced(strace string, p *proc, load func() error) (sysCounts, error) {
	t, err := attach(strace, bn.dir, p.pid())
	if err != nil {
		return nil, err
	}
	loadErr := load()
	counts, err := t.stop()
	if loadErr != nil {
		return nil, loadErr
	}
	return counts, err
}

// connectMany makes n connections to addr, as the connect row does, on
// workers goroutines, each connection after the one before it.
func connectMany(addr string, n, workers, size int) error {
	return shared(n, workers, func(_ int) func() error {
		req, resp := connectRequest(size)
		return func() error { return connectOnce(addr, req, resp) }
	})
}

// tripsMany makes n round trips of size bytes, spread over the
// connections cs, one at a time on each.
func tripsMany(cs []net.Conn, n, size int) error {
	return shared(n, len(cs), func(w int) func() error {
		c := cs[w]
		req := bytes.Repeat([]byte{byte('a' + w%26)}, size)
		resp := make([]byte, size)
		return func() error {
			_ = c.SetDeadline(time.Now().Add(ioTimeout))
			return roundTrip(c, req, resp)
		}
	})
}

// shared runs n operations on workers goroutines, each taking the next
// until n are done; newOp(w) makes worker w's operation. It returns the
// errors that stopped workers.
func shared(n, workers int, newOp func(w int) func() error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		op := newOp(w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if err := op(); err != nil {
					errs[w] = fmt.Errorf("operation %d of %d: %w", i, n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitIdle waits until p has closed every proxied connection: the backend
// has none open, and p's socket count is want or, when want is negative,
// the same in three polls 20 ms apart. It returns that count.
func (bn *bench) waitIdle(p *proc, want int) (int, error) {
	deadline := time.Now().Add(ioTimeout)
	last, same := -1, 0
	for time.Now().Before(deadline) {
		n, err := sockets(p.pid())
		if err != nil {
			return 0, err
		}
		if n == last {
			same++
		} else {
			last, same = n, 0
		}
		if bn.b.open() == 0 && (n == want || (want < 0 && same >= 2)) {
			return n, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, fmt.Errorf("the proxy still holds %d sockets (%d when idle) and the backend %d connections after %s", last, want, bn.b.open(), ioTimeout)
}

// sockets counts the sockets among pid's open descriptors.
func sockets(pid int) (int, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(dir + "/" + e.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n, nil
}
