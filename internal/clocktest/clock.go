// Package clocktest provides a manually advanced clock for tests: a
// clock.Clock whose readings move only when told to and whose tickers and
// timers fire as Advance or Set moves it past them. Code under test takes
// a clock.Clock; tests pass a Fake (or, for end-to-end tests that move the
// readings by hand but let the loops run on their own, Fake.Paced).
package clocktest

import (
	"sort"
	"sync"
	"time"

	"github.com/handoverd/handoverd/clock"
)

// Fake is a clock that moves only when told to. It is safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	changed *sync.Cond // broadcast when a waiter is added or removed
	now     time.Time
	waiters map[*waiter]bool
}

var _ clock.Clock = (*Fake)(nil)

// waiter is a fake ticker (period > 0) or timer, waiting for next.
type waiter struct {
	f      *Fake
	c      chan time.Time
	next   time.Time
	period time.Duration
}

// New returns a fake clock reading start.
func New(start time.Time) *Fake {
	f := &Fake{now: start, waiters: map[*waiter]bool{}}
	f.changed = sync.NewCond(&f.mu)
	return f
}

// Now returns the clock's current reading.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the clock forward by d, firing the tickers and timers it
// passes, in the order of their times.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.moveLocked(f.now.Add(d))
	f.mu.Unlock()
}

// Set moves the clock to t (firing what Advance would when t is later).
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	f.moveLocked(t)
	f.mu.Unlock()
}

func (f *Fake) moveLocked(t time.Time) {
	for {
		due := make([]*waiter, 0, len(f.waiters))
		for w := range f.waiters {
			if !w.next.After(t) {
				due = append(due, w)
			}
		}
		if len(due) == 0 {
			break
		}
		sort.Slice(due, func(i, j int) bool { return due[i].next.Before(due[j].next) })
		w := due[0]
		if w.next.After(f.now) {
			f.now = w.next
		}
		select {
		case w.c <- w.next:
		default: // a slow reader misses the tick, as with time.Ticker
		}
		if w.period > 0 {
			w.next = w.next.Add(w.period)
		} else {
			delete(f.waiters, w)
			f.changed.Broadcast()
		}
	}
	f.now = t
}

// Waiters returns how many tickers and timers are waiting.
func (f *Fake) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

// AwaitWaiters blocks until at least n tickers and timers are waiting: a
// test calls it before Advance to know the code under test is waiting.
func (f *Fake) AwaitWaiters(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.waiters) < n {
		f.changed.Wait()
	}
}

func (f *Fake) add(d, period time.Duration) *waiter {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &waiter{f: f, c: make(chan time.Time, 1), next: f.now.Add(d), period: period}
	if d <= 0 && period == 0 { // a timer already due fires at once, as time.NewTimer's does
		w.c <- f.now
		return w
	}
	f.waiters[w] = true
	f.changed.Broadcast()
	return w
}

// stop removes w and reports whether it was waiting.
func (w *waiter) stop() bool {
	f := w.f
	f.mu.Lock()
	defer f.mu.Unlock()
	was := f.waiters[w]
	delete(f.waiters, w)
	f.changed.Broadcast()
	return was
}

// reset makes w wait for d (and then every period) from now.
func (w *waiter) reset(d, period time.Duration) bool {
	f := w.f
	f.mu.Lock()
	defer f.mu.Unlock()
	was := f.waiters[w]
	w.next, w.period = f.now.Add(d), period
	f.waiters[w] = true
	f.changed.Broadcast()
	return was
}

// NewTicker returns a ticker that ticks every d of the fake's time.
func (f *Fake) NewTicker(d time.Duration) clock.Ticker {
	if d <= 0 {
		panic("clocktest: non-positive ticker interval")
	}
	return fakeTicker{f.add(d, d)}
}

// NewTimer returns a timer that fires when the fake reaches d from now.
func (f *Fake) NewTimer(d time.Duration) clock.Timer { return fakeTimer{f.add(d, 0)} }

type fakeTicker struct{ w *waiter }

func (t fakeTicker) C() <-chan time.Time   { return t.w.c }
func (t fakeTicker) Stop()                 { t.w.stop() }
func (t fakeTicker) Reset(d time.Duration) { t.w.reset(d, d) }

type fakeTimer struct{ w *waiter }

func (t fakeTimer) C() <-chan time.Time        { return t.w.c }
func (t fakeTimer) Stop() bool                 { return t.w.stop() }
func (t fakeTimer) Reset(d time.Duration) bool { return t.w.reset(d, 0) }

// Paced returns a clock that reads f but makes real tickers and timers:
// for end-to-end tests that hold the readings still (or move them by hand)
// while the loops and waits under test run on their own.
func (f *Fake) Paced() clock.Clock { return paced{f} }

type paced struct{ f *Fake }

func (p paced) Now() time.Time                         { return p.f.Now() }
func (p paced) NewTicker(d time.Duration) clock.Ticker { return clock.Real{}.NewTicker(d) }
func (p paced) NewTimer(d time.Duration) clock.Timer   { return clock.Real{}.NewTimer(d) }
