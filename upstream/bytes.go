package upstream

import (
	"runtime"
	"sync/atomic"
)

// ByteCounter counts the bytes forwarded each way while they move, not when
// a connection closes: etcd connections live for days. It is a
// forward.Meter, split in shards, one per forwarding loop, each on its own
// cache line, so that the loops never write to a shared counter; Load sums
// the shards. The zero value is not usable: see NewByteCounter.
type ByteCounter struct {
	shards []byteShard
}

// byteShard is one shard of a ByteCounter, written by one forwarding loop
// (or a few copy goroutines).
type byteShard struct {
	toUpstream, toClient atomic.Uint64
	_                    [48]byte // pad to a cache line: loops don't share one
}

// NewByteCounter returns a counter with a shard per GOMAXPROCS, which is
// how many event loops a forwarder runs.
func NewByteCounter() *ByteCounter {
	return &ByteCounter{shards: make([]byteShard, max(runtime.GOMAXPROCS(0), 1))}
}

// Count counts bytes moved to the upstream and to the client by forwarding
// loop loop, into that loop's shard. A nil counter counts nothing.
func (c *ByteCounter) Count(loop int, toUpstream, toClient int64) {
	if c != nil {
		c.shards[uint(loop)%uint(len(c.shards))].add(toUpstream, toClient)
	}
}

// add counts bytes moved to the upstream and to the client.
func (s *byteShard) add(toUpstream, toClient int64) {
	if toUpstream > 0 {
		s.toUpstream.Add(uint64(toUpstream))
	}
	if toClient > 0 {
		s.toClient.Add(uint64(toClient))
	}
}

// Load returns the bytes counted so far each way, summed over the shards.
func (c *ByteCounter) Load() (toUpstream, toClient uint64) {
	for i := range c.shards {
		toUpstream += c.shards[i].toUpstream.Load()
		toClient += c.shards[i].toClient.Load()
	}
	return toUpstream, toClient
}
