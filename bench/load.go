//go:build linux

package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// maxSamples bounds the latency samples a run keeps.
const maxSamples = 4 << 20

// ioTimeout bounds every blocking step of a run beyond its own duration, so
// a stuck proxy fails the run instead of hanging the tool.
const ioTimeout = 10 * time.Second

// rrResult is a request/response run.
type rrResult struct {
	ops       int
	opsPerSec float64
	p50, p99  time.Duration
}

// runRR opens conns echo connections to addr, then on each sends a size-byte
// request and waits for its echo, again and again for d, pausing pace
// after each.
func runRR(addr string, conns, size int, d, pace time.Duration) (rrResult, error) {
	cs, err := openMany(addr, conns)
	defer closeAll(cs)
	if err != nil {
		return rrResult{}, err
	}
	ops, lat, elapsed, err := runWorkers(conns, d, func(i int, s *samples) error {
		c := cs[i]
		req := bytes.Repeat([]byte{byte('a' + i%26)}, size)
		resp := make([]byte, size)
		_ = c.SetDeadline(s.end.Add(ioTimeout))
		for t0 := time.Now(); t0.Before(s.end); t0 = time.Now() {
			if err := roundTrip(c, req, resp); err != nil {
				return err
			}
			s.record(time.Since(t0))
			time.Sleep(pace)
		}
		return nil
	})
	if err != nil {
		return rrResult{}, err
	}
	return rrResult{
		ops:       ops,
		opsPerSec: float64(ops) / elapsed.Seconds(),
		p50:       percentile(lat, 0.50),
		p99:       percentile(lat, 0.99),
	}, nil
}

// roundTrip sends req on c and reads its echo into resp, which it checks.
func roundTrip(c net.Conn, req, resp []byte) error {
	if _, err := c.Write(req); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, resp); err != nil {
		return err
	}
	if resp[0] != req[0] || resp[len(resp)-1] != req[len(req)-1] {
		return errors.New("echo mismatch")
	}
	return nil
}

// samples is one worker's account of a timed run.
type samples struct {
	end time.Time       // when the worker stops starting operations
	n   int             // operations done
	cap int             // latencies kept at most
	lat []time.Duration // the first cap latencies
}

// record counts one operation and keeps its latency while there is room.
func (s *samples) record(d time.Duration) {
	s.n++
	if len(s.lat) < s.cap {
		s.lat = append(s.lat, d)
	}
}

// runWorkers runs work on n goroutines released together, each until d has
// passed, and returns the operations they counted, their latencies sorted
// (at most maxSamples in all), the time they took, and their errors joined.
func runWorkers(n int, d time.Duration, work func(i int, s *samples) error) (int, []time.Duration, time.Duration, error) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	ss := make([]samples, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &ss[i]
			s.cap = maxSamples / n
			s.lat = make([]time.Duration, 0, min(s.cap, 1<<16))
			<-start
			s.end = time.Now().Add(d)
			errs[i] = work(i, s)
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		return 0, nil, 0, err
	}
	ops := 0
	lats := make([][]time.Duration, n)
	for i := range ss {
		ops += ss[i].n
		lats[i] = ss[i].lat
	}
	all := slices.Concat(lats...)
	slices.Sort(all)
	return ops, all, elapsed, nil
}

// percentile returns the q quantile (0 to 1) of sorted latencies.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// runBulk asks the backend, through addr, for n bytes and returns the rate
// at which they arrive, in MB/s (10^6 bytes).
func runBulk(addr string, n int64) (float64, error) {
	c, err := dial(addr, ioTimeout)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	// Generous: 2 GiB at 20 MB/s.
	_ = c.SetDeadline(time.Now().Add(ioTimeout + time.Duration(n/20e6)*time.Second))
	var hdr [9]byte
	hdr[0] = modeSource
	binary.BigEndian.PutUint64(hdr[1:], uint64(n))
	t0 := time.Now()
	if _, err := c.Write(hdr[:]); err != nil {
		return 0, err
	}
	buf := make([]byte, 256<<10)
	var got int64
	for got < n {
		m, err := c.Read(buf)
		got += int64(m)
		if err != nil {
			break
		}
	}
	elapsed := time.Since(t0)
	if got != n {
		return 0, fmt.Errorf("received %d of %d bytes", got, n)
	}
	return float64(n) / 1e6 / elapsed.Seconds(), nil
}

// connResult is a connect/request/close run.
type connResult struct {
	conns  int
	perSec float64
	p50    time.Duration
}

// runConnect has workers loop for d: connect, send a size-byte request
// (with the echo preamble in the same write), read the echo, close.
func runConnect(addr string, workers, size int, d time.Duration) (connResult, error) {
	n, lat, elapsed, err := runWorkers(workers, d, func(_ int, s *samples) error {
		req, resp := connectRequest(size)
		for t0 := time.Now(); t0.Before(s.end); t0 = time.Now() {
			if err := connectOnce(addr, req, resp); err != nil {
				return err
			}
			s.record(time.Since(t0))
		}
		return nil
	})
	if err != nil {
		return connResult{}, err
	}
	return connResult{conns: n, perSec: float64(n) / elapsed.Seconds(), p50: percentile(lat, 0.5)}, nil
}

// connectRequest is the request of a connection of the connect row: the
// echo preamble and size bytes, in one write; and room for its response.
func connectRequest(size int) (req, resp []byte) {
	return append([]byte{modeEcho}, bytes.Repeat([]byte{'c'}, size)...), make([]byte, size)
}

// connectOnce connects to addr, sends req, reads len(resp) bytes and
// closes.
func connectOnce(addr string, req, resp []byte) error {
	c, err := dial(addr, ioTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := c.Write(req); err != nil {
		return err
	}
	_, err = io.ReadFull(c, resp)
	return err
}

// openMany opens up to n echo connections to addr, 32 at a time, each
// established end to end. It stops at the first failure and returns the
// connections opened so far with the error.
func openMany(addr string, n int) ([]net.Conn, error) {
	var (
		mu    sync.Mutex
		conns = make([]net.Conn, 0, n)
		next  atomic.Int64
		fail  atomic.Pointer[error]
		wg    sync.WaitGroup
	)
	for range min(n, 32) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for fail.Load() == nil && next.Add(1) <= int64(n) {
				c, err := openEcho(addr, ioTimeout)
				if err != nil {
					fail.CompareAndSwap(nil, &err)
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := fail.Load(); err != nil {
		return conns, fmt.Errorf("after %d connections: %w", len(conns), *err)
	}
	return conns, nil
}

// answering sends one byte on every connection, 32 at a time, and counts
// those that echo it.
func answering(conns []net.Conn) int {
	var ok, next atomic.Int64
	var wg sync.WaitGroup
	for range min(len(conns), 32) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b [1]byte
			for i := next.Add(1) - 1; i < int64(len(conns)); i = next.Add(1) - 1 {
				c := conns[i]
				_ = c.SetDeadline(time.Now().Add(ioTimeout))
				if _, err := c.Write([]byte{'p'}); err != nil {
					continue
				}
				if _, err := io.ReadFull(c, b[:]); err == nil && b[0] == 'p' {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(ok.Load())
}

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		_ = c.Close()
	}
}

// idleResult is what n idle connections cost a proxy process.
type idleResult struct {
	opened, answered int
	rssPerConn       float64 // bytes
	fdsPerConn       float64
	openErr          error
}

// runIdle measures p's resident memory and descriptors, opens n idle echo
// connections through it, lets it settle, measures again, then checks that
// every connection still answers.
func runIdle(p *proc, n int, settle time.Duration) (idleResult, error) {
	rss0, fds0, err := procStats(p.pid())
	if err != nil {
		return idleResult{}, err
	}
	cs, openErr := openMany(p.addr, n)
	defer closeAll(cs)
	time.Sleep(settle)
	if !p.alive() {
		return idleResult{opened: len(cs), openErr: openErr}, fmt.Errorf("the proxy exited after %d connections", len(cs))
	}
	rss1, fds1, err := procStats(p.pid())
	if err != nil {
		return idleResult{}, err
	}
	r := idleResult{opened: len(cs), openErr: openErr, answered: answering(cs)}
	if len(cs) > 0 {
		r.rssPerConn = float64(rss1-rss0) / float64(len(cs))
		r.fdsPerConn = float64(fds1-fds0) / float64(len(cs))
	}
	return r, nil
}
