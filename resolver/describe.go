package resolver

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Describe writes what the resolution found to w, as `etcd-gateway check`
// prints it: each SRV name queried and its outcome, each endpoint with its
// priority and weight, and each dropped record with the reason. Write
// errors are ignored; w is expected to be a terminal or a buffer.
func (r Result) Describe(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, l := range r.Lookups {
		fmt.Fprintf(tw, "  queried %s\t%s\n", l.Name, l)
	}
	for _, ep := range r.Endpoints {
		kind := "plain"
		if ep.TLS {
			kind = "TLS"
		}
		fmt.Fprintf(tw, "  endpoint %s\tpriority %d, weight %d, %s\n", ep.Addr, ep.Priority, ep.Weight, kind)
	}
	for _, d := range r.Dropped {
		fmt.Fprintf(tw, "  dropped %s\t%s\n", d.Addr, d.Reason)
	}
	if len(r.Endpoints) == 0 {
		fmt.Fprintf(tw, "  no usable endpoint\n")
	}
	_ = tw.Flush()
}
