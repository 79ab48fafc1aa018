package forward

import (
	"errors"
)

// ErrNotExported reports a pair that was not exported: it ended, or its
// destinations did not take what it held in time.
var ErrNotExported = errors.New("forward: pair not exported")

// PairState is what a quiesced pair passes on with its two descriptors.
type PairState struct {
	// Done says, per direction (client→upstream, upstream→client), that it
	// ended: its source reached EOF and its destination's write side is
	// shut.
	Done [2]bool
	// Bytes are the bytes moved each way so far.
	Bytes [2]int64
}

// Exported is a quiesced pair: the two descriptors its loop had, which
// the caller owns from then on (no duplicate, no Go object: passing them
// to another process and closing them are a system call each), and the
// pair's state.
type Exported struct {
	Client, Upstream int
	State            PairState
}

// ExportResult is the outcome of exporting one pair of a batch
// (ExportBatch): the pair's descriptors and state, or why it stays.
type ExportResult struct {
	Exported
	Err error
}
