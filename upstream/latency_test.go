package upstream

import (
	"errors"
	"testing"
	"time"
)

// TestHistogramBuckets checks that durations land in the right cumulative
// buckets, the +Inf overflow included, and that the sum adds up.
func TestHistogramBuckets(t *testing.T) {
	var h Histogram
	h.Observe(200 * time.Microsecond) // <= 0.0005
	h.Observe(time.Millisecond)       // <= 0.001 (a bound is inclusive)
	h.Observe(30 * time.Millisecond)  // <= 0.05
	h.Observe(10 * time.Second)       // +Inf only
	s := h.Snapshot()
	if s.Count != 4 {
		t.Fatalf("count %d, want 4", s.Count)
	}
	for bound, want := range map[float64]uint64{0.0005: 1, 0.001: 2, 0.025: 2, 0.05: 3, 5: 3} {
		if got := s.Buckets[bound]; got != want {
			t.Errorf("bucket le=%v: %d, want %d", bound, got, want)
		}
	}
	if want := 10.0312; s.Sum < want-1e-9 || s.Sum > want+1e-9 {
		t.Errorf("sum %v, want %v", s.Sum, want)
	}
}

// TestTimingsCountCheckResults checks that a check's result is counted
// beside its duration.
func TestTimingsCountCheckResults(t *testing.T) {
	var tm Timings
	tm.observeCheck(time.Now(), nil)
	tm.observeCheck(time.Now(), errors.New("boom"))
	tm.observeCheck(time.Now(), errors.New("boom"))
	if ok, failed := tm.CheckResults(); ok != 1 || failed != 2 {
		t.Fatalf("results: %d passed, %d failed; want 1, 2", ok, failed)
	}
	if c := tm.Check().Count; c != 3 {
		t.Fatalf("check durations counted: %d, want 3", c)
	}
}
