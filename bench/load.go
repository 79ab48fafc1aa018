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
// request and waits for its echo, again and again for d.
func runRR(addr string, conns, size int, d time.Duration) (rrResult, error) {
	cs, err := openMany(addr, conns)
	defer closeAll(cs)
	if err != nil {
		return rrResult{}, err
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	lats := make([][]time.Duration, conns)
	errs := make([]error, conns)
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := bytes.Repeat([]byte{byte('a' + i%26)}, size)
			resp := make([]byte, size)
			lat := make([]time.Duration, 0, min(maxSamples/conns, 1<<16))
			<-start
			end := time.Now().Add(d)
			_ = c.SetDeadline(end.Add(ioTimeout))
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				if _, err := c.Write(req); err != nil {
					errs[i] = err
					break
				}
				if _, err := io.ReadFull(c, resp); err != nil {
					errs[i] = err
					break
				}
				if len(lat) < maxSamples/conns {
					lat = append(lat, time.Since(t0))
				}
				if resp[0] != req[0] || resp[size-1] != req[size-1] {
					errs[i] = errors.New("echo mismatch")
					break
				}
			}
			lats[i] = lat
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		return rrResult{}, err
	}
	all := slices.Concat(lats...)
	slices.Sort(all)
	return rrResult{
		ops:       len(all),
		opsPerSec: float64(len(all)) / elapsed.Seconds(),
		p50:       percentile(all, 0.50),
		p99:       percentile(all, 0.99),
	}, nil
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// runBulk asks the backend, through addr, for n bytes and returns the rate
// at which they arrive, in MB/s (10^6 bytes).
func runBulk(addr string, n int64) (float64, error) {
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
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
	var wg sync.WaitGroup
	lats := make([][]time.Duration, workers)
	errs := make([]error, workers)
	start := make(chan struct{})
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := append([]byte{modeEcho}, bytes.Repeat([]byte{'c'}, size)...)
			resp := make([]byte, size)
			var lat []time.Duration
			<-start
			end := time.Now().Add(d)
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				if err := connectOnce(addr, req, resp); err != nil {
					errs[i] = err
					break
				}
				if len(lat) < maxSamples/workers {
					lat = append(lat, time.Since(t0))
				}
			}
			lats[i] = lat
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		return connResult{}, err
	}
	all := slices.Concat(lats...)
	slices.Sort(all)
	return connResult{conns: len(all), perSec: float64(len(all)) / elapsed.Seconds(), p50: percentile(all, 0.5)}, nil
}

func connectOnce(addr string, req, resp []byte) error {
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
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
