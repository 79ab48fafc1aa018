package forward

import "github.com/etcd-gateway/etcd-gateway/upstream"

// Meters are the counters a forwarding counts its bytes into as they move,
// so that a connection open for days shows its traffic at once: its
// listener's and its endpoint's. Either may be nil.
type Meters struct {
	Listener, Endpoint *upstream.ByteCounter
}

// shards returns the shards that forwarding loop i counts into: the loops
// share no counter.
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
