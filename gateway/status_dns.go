package gateway

import (
	"time"

	"github.com/etcd-gateway/etcd-gateway/gateway/reconcile"
	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// DNSStatus is what DNS said of a listener's names: its SRV discovery and
// the host names of its endpoints.
type DNSStatus struct {
	SRV   *SRVStatus   `json:"srv,omitempty"`
	Names []NameStatus `json:"names,omitempty"`
}

// SRVStatus is the state of a listener's SRV discovery.
type SRVStatus struct {
	Queried []string `json:"queried"`
	Answer
}

// NameStatus is the state of one host name.
type NameStatus struct {
	Name string `json:"name"`
	// State is "ok", "pending" (not asked yet), "failing" (lookups fail:
	// the last good addresses stay in use), "gone" (DNS says the name has
	// no address) or "expired" (failing for longer than dns-stale-max).
	State     string   `json:"state"`
	Addresses []string `json:"addresses"`
	Lookups   uint64   `json:"lookups"`
	Failures  uint64   `json:"failures"`
	Answer
}

// Answer is the age of the answer in use and the last error.
type Answer struct {
	// ResolvedAt is when the answer in use came, AgeSeconds how old it
	// is, TTLSeconds its smallest TTL (0: unknown).
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	AgeSeconds float64    `json:"age_seconds,omitempty"`
	TTLSeconds float64    `json:"ttl_seconds"`
	// LastError is the last failed lookup's error, LastErrorAgeSeconds how
	// long ago it was; it stays after a success, for the record.
	LastError           string  `json:"last_error,omitempty"`
	LastErrorAgeSeconds float64 `json:"last_error_age_seconds,omitempty"`
}

// dnsStatus is ls's DNS status at now; nil when it has no name.
func dnsStatus(ls reconcile.Status, now time.Time) *DNSStatus {
	if ls.SRV == nil && len(ls.Names) == 0 {
		return nil
	}
	out := &DNSStatus{}
	if ls.SRV != nil {
		out.SRV = &SRVStatus{Queried: ls.SRV.Names, Answer: answer(now, ls.SRV.ResolvedAt, ls.SRV.TTL, ls.SRV.LastError, ls.SRV.LastErrorAt)}
	}
	for _, st := range ls.Names {
		out.Names = append(out.Names, NameStatus{
			Name: st.Name, State: nameState(st), Addresses: addrStrings(st), Lookups: st.Lookups, Failures: st.Failures,
			Answer: answer(now, st.ResolvedAt, st.TTL, st.LastError, st.LastErrorAt),
		})
	}
	return out
}

func answer(now, resolvedAt time.Time, ttl time.Duration, lastErr string, errAt time.Time) Answer {
	a := Answer{TTLSeconds: ttl.Seconds(), LastError: lastErr}
	if !resolvedAt.IsZero() {
		a.ResolvedAt, a.AgeSeconds = &resolvedAt, now.Sub(resolvedAt).Seconds()
	}
	if lastErr != "" {
		a.LastErrorAgeSeconds = now.Sub(errAt).Seconds()
	}
	return a
}

func nameState(st resolver.HostState) string {
	switch {
	case st.Pending:
		return "pending"
	case st.Gone:
		return "gone"
	case st.Expired:
		return "expired"
	case st.Failing:
		return "failing"
	}
	return "ok"
}

func addrStrings(st resolver.HostState) []string {
	out := make([]string, len(st.Addrs))
	for i, a := range st.Addrs {
		out[i] = a.String()
	}
	return out
}
