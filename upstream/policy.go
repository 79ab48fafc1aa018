package upstream

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"github.com/etcd-gateway/etcd-gateway/config"
)

// Policy chooses the endpoint for a new connection.
type Policy interface {
	// Pick returns one of candidates, which is never empty. The candidates
	// are not yet tried for this connection and all of the same SRV
	// priority; they are up unless none is.
	Pick(candidates []*Endpoint) *Endpoint
}

// NewPolicy returns a new instance of the named policy; "" is
// sticky-random.
func NewPolicy(name config.Policy) (Policy, error) {
	switch name {
	case config.PolicyStickyRandom, "":
		return &StickyRandom{}, nil
	case config.PolicyRoundRobin:
		return &RoundRobin{}, nil
	case config.PolicyLeastConnections:
		return LeastConnections{}, nil
	}
	return nil, fmt.Errorf("unknown policy %q", name)
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

// RoundRobin hands connections to the candidates in turn. When their SRV
// weights differ, each gets a share in proportion to its weight (a weight-0
// record a small one, as in weightedRandom), interleaved rather than in
// blocks.
type RoundRobin struct {
	next atomic.Uint64
}

// Pick implements Policy.
func (r *RoundRobin) Pick(candidates []*Endpoint) *Endpoint {
	n := r.next.Add(1) - 1
	if len(candidates) == 1 {
		return candidates[0]
	}
	w0 := candidates[0].weight()
	same := true
	var sum uint64
	for _, ep := range candidates {
		w := ep.weight()
		same = same && w == w0
		sum += effectiveWeight(w)
	}
	if same {
		return candidates[n%uint64(len(candidates))]
	}
	return atWeight(candidates, spread(n, sum))
}

// spread maps the n-th pick to a slot in [0, sum): every run of sum
// consecutive picks visits each slot once, and neighbouring picks land far
// apart (a stride near sum/φ, coprime with sum), so that the weighted
// shares are interleaved.
func spread(n, sum uint64) uint64 {
	stride := sum * 618 / 1000
	if stride == 0 {
		stride = 1
	}
	for gcd(stride, sum) != 1 {
		stride++
	}
	return (n % sum) * stride % sum
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// LeastConnections picks the candidate with the fewest connections, open
// or being dialled, relative to its SRV weight; ties are broken at random.
type LeastConnections struct{}

// Pick implements Policy.
func (LeastConnections) Pick(candidates []*Endpoint) *Endpoint {
	if len(candidates) == 1 {
		return candidates[0]
	}
	start := rand.IntN(len(candidates))
	best := candidates[start]
	bestLoad, bestWeight := uint64(best.load()), effectiveWeight(best.weight())
	for i := 1; i < len(candidates); i++ {
		ep := candidates[(start+i)%len(candidates)]
		load, w := uint64(ep.load()), effectiveWeight(ep.weight())
		// load/w < bestLoad/bestWeight, without division.
		if load*bestWeight < bestLoad*w {
			best, bestLoad, bestWeight = ep, load, w
		}
	}
	return best
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
	return atWeight(candidates, rand.Uint64N(sum))
}

// atWeight returns the candidate whose share of the summed effective
// weights holds pos, which must be less than the sum.
func atWeight(candidates []*Endpoint, pos uint64) *Endpoint {
	for _, ep := range candidates {
		w := effectiveWeight(ep.weight())
		if pos < w {
			return ep
		}
		pos -= w
	}
	return candidates[len(candidates)-1] // unreachable: pos < sum
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
