package upstream

import (
	"math/rand/v2"
	"sync/atomic"
)

// Policy chooses the endpoint for a new connection.
type Policy interface {
	// Pick returns one of candidates, which is never empty. The candidates
	// are active, not yet tried for this connection, and all of the same
	// SRV priority.
	Pick(candidates []*Endpoint) *Endpoint
}

// StickyRandom is etcd's gateway policy: it picks an endpoint at random
// (weighted by SRV weight) and keeps sending connections there for as long as
// that endpoint stays a candidate.
type StickyRandom struct {
	current atomic.Pointer[Endpoint]
}

// Pick implements Policy.
func (s *StickyRandom) Pick(candidates []*Endpoint) *Endpoint {
	if cur := s.current.Load(); cur != nil {
		for _, ep := range candidates {
			if ep == cur {
				return cur
			}
		}
	}
	ep := weightedRandom(candidates)
	s.current.Store(ep)
	return ep
}

// weightedRandom picks among candidates as RFC 2782 says: in proportion to
// weight, with weight-0 records given a small share. When every weight is 0
// the pick is uniform.
func weightedRandom(candidates []*Endpoint) *Endpoint {
	if len(candidates) == 1 {
		return candidates[0]
	}
	var sum uint64
	for _, ep := range candidates {
		sum += effectiveWeight(ep.weight())
	}
	n := rand.Uint64N(sum)
	for _, ep := range candidates {
		w := effectiveWeight(ep.weight())
		if n < w {
			return ep
		}
		n -= w
	}
	return candidates[len(candidates)-1] // unreachable: n < sum
}

// zeroWeightShare is the weight a weight-0 record counts for, against 100 per
// unit of SRV weight: a weight-0 record beside a weight-1 one gets about 1%.
const zeroWeightShare = 1

func effectiveWeight(w uint16) uint64 {
	if w == 0 {
		return zeroWeightShare
	}
	return uint64(w) * 100
}
