// Package clock is the time source every long-running part of handoverd
// takes: the readings it stamps rows with and the tickers, timers and
// waits that pace its loops. Code that needs time takes a Clock, never the
// time package's globals, so a test can hold time still, or move it on by
// hand and see the loops' tickers fire (internal/clocktest).
//
// The model is tailscale's tstime.Clock, cut to what handoverd uses. The
// package sits at the top of the module, not under internal/, because a
// Clock is part of the exported Options of the services and the server.
package clock

import (
	"context"
	"time"
)

// Clock tells the time and makes tickers and timers that follow it.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTicker returns a ticker that ticks every d (d > 0).
	NewTicker(d time.Duration) Ticker
	// NewTimer returns a timer that fires once, after d.
	NewTimer(d time.Duration) Timer
}

// Ticker delivers the time on C at every interval, dropping ticks a slow
// reader misses (like time.Ticker).
type Ticker interface {
	// C returns the channel the ticks arrive on.
	C() <-chan time.Time
	// Stop turns the ticker off; no tick arrives after it returns.
	Stop()
	// Reset stops the ticker and restarts it with interval d.
	Reset(d time.Duration)
}

// Timer delivers the time on C once, when it fires (like time.Timer).
type Timer interface {
	// C returns the channel the firing arrives on.
	C() <-chan time.Time
	// Stop keeps the timer from firing; it reports whether it did.
	Stop() bool
	// Reset makes the timer fire after d from now; it reports whether the
	// timer was still waiting.
	Reset(d time.Duration) bool
}

// Real is the system clock.
type Real struct{}

var _ Clock = Real{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// NewTicker returns a time.Ticker.
func (Real) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

// NewTimer returns a time.Timer.
func (Real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time   { return r.t.C }
func (r realTicker) Stop()                 { r.t.Stop() }
func (r realTicker) Reset(d time.Duration) { r.t.Reset(d) }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

// Or returns c, or the system clock when c is nil.
func Or(c Clock) Clock {
	if c == nil {
		return Real{}
	}
	return c
}

// Since returns how long ago t was on c.
func Since(c Clock, t time.Time) time.Duration { return c.Now().Sub(t) }

// Sleep waits for d on c, or until ctx ends; it returns ctx's error when
// ctx ended first.
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

// Poll calls check at once and then every interval until check reports
// done or fails (its error), ctx ends (ctx's error), or within has passed
// on c: then, after one last check, it returns nil.
func Poll(ctx context.Context, c Clock, every, within time.Duration, check func() (done bool, err error)) error {
	timeout := c.NewTimer(within)
	defer timeout.Stop()
	tick := c.NewTicker(every)
	defer tick.Stop()
	expired := within <= 0
	for {
		if done, err := check(); done || err != nil || expired {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout.C():
			expired = true
		case <-tick.C():
		}
	}
}
