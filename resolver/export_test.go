package resolver

import (
	"slices"
	"strings"
)

// Test hooks: what the tests may see of the host cache.

// States returns the state of every tracked name, by name.
func (h *Hosts) States() []HostState {
	var out []HostState
	h.names.Range(func(_, v any) bool {
		out = append(out, *v.(*host).state.Load())
		return true
	})
	slices.SortFunc(out, func(a, b HostState) int { return strings.Compare(a.Name, b.Name) })
	return out
}
