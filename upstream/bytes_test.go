package upstream

import "testing"

// TestByteCounterSumsTheLoops: what any loop counts, even one past the
// shards, is in Load; a nil counter counts nothing.
func TestByteCounterSumsTheLoops(t *testing.T) {
	c := NewByteCounter()
	for loop := range 2*len(c.shards) + 1 {
		c.Count(loop, 3, 5)
	}
	c.Count(0, -1, 0) // nothing moved is never less than nothing
	n := uint64(2*len(c.shards) + 1)
	if up, down := c.Load(); up != 3*n || down != 5*n {
		t.Fatalf("Load = %d, %d; want %d, %d", up, down, 3*n, 5*n)
	}
	var none *ByteCounter
	none.Count(0, 1, 1)
}
