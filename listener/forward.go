package listener

import (
	"net"

	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// Meters are the counters a forwarding counts its bytes into as they move:
// its listener's and its endpoint's. Either may be nil.
type Meters struct {
	Listener, Endpoint *upstream.ByteCounter
}

// shards returns the shards that forwarding loop i counts into.
func (m Meters) shards(i int) meterShards {
	var s meterShards
	if m.Listener != nil {
		s[0] = m.Listener.Shard(i)
	}
	if m.Endpoint != nil {
		s[1] = m.Endpoint.Shard(i)
	}
	return s
}

// meterShards are the shards one forwarding counts into; nil ones count
// nothing.
type meterShards [2]*upstream.ByteShard

// add counts bytes moved to the upstream and to the client.
func (s *meterShards) add(toUpstream, toClient int64) {
	for _, sh := range s {
		if sh != nil {
			sh.Add(toUpstream, toClient)
		}
	}
}

// Forward copies bytes both ways between client and upstream with f until
// both directions have ended, then closes both connections. When one side
// finishes sending (EOF) the other side's write half is shut, so a client
// that closes its write side still receives the reply. When a copy fails
// (reset, or a connection closed under it) both connections are closed at
// once. It returns the bytes sent to upstream and to the client.
//
// It is Start that waits for done; the listener uses Start, so that an idle
// connection parks no goroutine.
func (f *Forwarder) Forward(client, upstream net.Conn) (toUpstream, toClient int64) {
	type counts struct{ up, down int64 }
	ch := make(chan counts, 1)
	_, err := f.Start(client, upstream, func(up, down int64) { ch <- counts{up, down} })
	if err != nil {
		return 0, 0
	}
	c := <-ch
	return c.up, c.down
}
