package forward

// A Meter counts the bytes a forwarding moves, as they move, so that a
// connection open for days shows its traffic at once. Count is called by
// forwarding loop loop only (or by the copy goroutines given that index),
// so that a meter sharded by loop has the loops write to no shared
// counter.
type Meter interface {
	Count(loop int, toUpstream, toClient int64)
}

// Meters are the meters a forwarding counts its bytes into: its
// listener's and its endpoint's. Either may be nil.
type Meters struct {
	Listener, Endpoint Meter
}

// loopMeters are the meters of one forwarding, with the loop it counts
// as.
type loopMeters struct {
	m    Meters
	loop int
}

// of returns the meters that forwarding loop i counts into.
func (m Meters) of(i int) loopMeters { return loopMeters{m: m, loop: i} }

// add counts bytes moved to the upstream and to the client.
func (s *loopMeters) add(toUpstream, toClient int64) {
	if s.m.Listener != nil {
		s.m.Listener.Count(s.loop, toUpstream, toClient)
	}
	if s.m.Endpoint != nil {
		s.m.Endpoint.Count(s.loop, toUpstream, toClient)
	}
}
