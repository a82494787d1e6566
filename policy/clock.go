package policy

import (
	"container/heap"
	"sync"
	"time"
)

// Clock is the time source of the PTU sequence; tests and the simulator use a VirtualClock.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine (SystemClock) or from Advance (VirtualClock) once d
	// has passed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop prevents the call; it reports whether the call was still pending.
	Stop() bool
}

// SystemClock is the wall clock.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
func (systemClock) AfterFunc(d time.Duration, f func()) Timer {
	return time.AfterFunc(d, f)
}

// VirtualClock is a discrete-event clock: time stands still until Advance or Step moves it, and
// timers fire in time order, synchronously, from those calls.
type VirtualClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers timerHeap
}

// NewVirtualClock returns a VirtualClock reading start.
func NewVirtualClock(start time.Time) *VirtualClock { return &VirtualClock{now: start} }

// Now returns the virtual time.
func (c *VirtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f at Now()+d.
func (c *VirtualClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &vtimer{clock: c, when: c.now.Add(d), seq: c.seq, f: f, index: -1}
	heap.Push(&c.timers, t)
	return t
}

// Advance moves the clock forward by d, firing every timer that falls due on the way.
func (c *VirtualClock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for c.fireNext(target) {
	}
	c.mu.Lock()
	if target.After(c.now) {
		c.now = target
	}
	c.mu.Unlock()
}

// Step jumps to the next pending timer and fires it; it reports false when none is pending.
func (c *VirtualClock) Step() bool {
	return c.fireNext(time.Time{})
}

// fireNext fires the earliest timer due by limit (any when limit is zero).
func (c *VirtualClock) fireNext(limit time.Time) bool {
	c.mu.Lock()
	if len(c.timers) == 0 || (!limit.IsZero() && c.timers[0].when.After(limit)) {
		c.mu.Unlock()
		return false
	}
	t := heap.Pop(&c.timers).(*vtimer)
	if t.when.After(c.now) {
		c.now = t.when
	}
	c.mu.Unlock()
	t.f()
	return true
}

type vtimer struct {
	clock *VirtualClock
	when  time.Time
	seq   int
	f     func()
	index int
}

func (t *vtimer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&c.timers, t.index)
	return true
}

type timerHeap []*vtimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].when.Equal(h[j].when) {
		return h[i].seq < h[j].seq
	}
	return h[i].when.Before(h[j].when)
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*vtimer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
}
