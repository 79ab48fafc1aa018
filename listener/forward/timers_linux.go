package forward

import (
	"container/heap"
	"time"
)

// deadlines is a loop's queue of connect deadlines, the earliest first: a
// binary heap of the pairs connecting, each knowing its place (Pair.timer)
// so that a connect that ends in time leaves at once. The loop's
// epoll_wait waits no longer than the earliest.
type deadlines []*Pair

func (d deadlines) Len() int           { return len(d) }
func (d deadlines) Less(i, j int) bool { return d[i].deadline < d[j].deadline }
func (d deadlines) Swap(i, j int) {
	d[i], d[j] = d[j], d[i]
	d[i].timer, d[j].timer = i, j
}

// Push is heap.Interface's; use add.
func (d *deadlines) Push(x any) {
	p := x.(*Pair)
	p.timer = len(*d)
	*d = append(*d, p)
}

// Pop is heap.Interface's; use remove.
func (d *deadlines) Pop() any {
	old := *d
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*d = old[:len(old)-1]
	p.timer = -1
	return p
}

// add queues p's deadline, at (a loop clock reading), in place of any
// it had.
func (d *deadlines) add(p *Pair, at int64) {
	d.remove(p)
	p.deadline = at
	heap.Push(d, p)
}

// remove takes p's deadline out of the queue, if it has one.
func (d *deadlines) remove(p *Pair) {
	if p.timer >= 0 {
		heap.Remove(d, p.timer)
	}
}

// due takes out and returns the first pair whose deadline is at or
// before now, nil when none is.
func (d *deadlines) due(now int64) *Pair {
	if len(*d) == 0 || (*d)[0].deadline > now {
		return nil
	}
	return heap.Pop(d).(*Pair)
}

// waitMillis is how long epoll_wait may wait for the earliest deadline
// after now: -1 (for ever) when there is none, rounded up to whole
// milliseconds so that it wakes after the deadline, not just before.
func (d deadlines) waitMillis(now int64) int {
	if len(d) == 0 {
		return -1
	}
	wait := d[0].deadline - now
	if wait <= 0 {
		return 0
	}
	return int((wait + int64(time.Millisecond) - 1) / int64(time.Millisecond))
}
