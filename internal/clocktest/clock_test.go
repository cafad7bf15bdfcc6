package clocktest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/clock"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// drain returns the times waiting on c.
func drain(c <-chan time.Time) []time.Time {
	var out []time.Time
	for {
		select {
		case v := <-c:
			out = append(out, v)
		default:
			return out
		}
	}
}

func TestTickerFiresAsTheFakeAdvances(t *testing.T) {
	tests := []struct {
		name    string
		steps   []time.Duration
		want    []time.Time // ticks seen after each step, in order
		wantNow time.Time
	}{
		{"not yet", []time.Duration{9 * time.Second}, nil, t0.Add(9 * time.Second)},
		{"exactly one period", []time.Duration{10 * time.Second}, []time.Time{t0.Add(10 * time.Second)}, t0.Add(10 * time.Second)},
		{"two steps, two ticks", []time.Duration{10 * time.Second, 10 * time.Second},
			[]time.Time{t0.Add(10 * time.Second), t0.Add(20 * time.Second)}, t0.Add(20 * time.Second)},
		// A reader that misses ticks gets one, like time.Ticker.
		{"a long jump drops ticks", []time.Duration{35 * time.Second}, []time.Time{t0.Add(10 * time.Second)}, t0.Add(35 * time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := New(t0)
			tk := f.NewTicker(10 * time.Second)
			defer tk.Stop()
			var got []time.Time
			for _, d := range tt.steps {
				f.Advance(d)
				got = append(got, drain(tk.C())...)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ticks (-want +got):\n%s", diff)
			}
			if !f.Now().Equal(tt.wantNow) {
				t.Errorf("Now = %v, want %v", f.Now(), tt.wantNow)
			}
		})
	}
}

func TestTimer(t *testing.T) {
	f := New(t0)
	tm := f.NewTimer(time.Minute)
	f.Advance(59 * time.Second)
	if got := drain(tm.C()); len(got) != 0 {
		t.Fatalf("fired early: %v", got)
	}
	f.Advance(time.Second)
	if diff := cmp.Diff([]time.Time{t0.Add(time.Minute)}, drain(tm.C())); diff != "" {
		t.Errorf("firing (-want +got):\n%s", diff)
	}
	if tm.Stop() {
		t.Error("Stop of a fired timer reported it waiting")
	}
	if tm.Reset(time.Second) {
		t.Error("Reset of a fired timer reported it waiting")
	}
	if !tm.Stop() {
		t.Error("Stop after Reset did not find it waiting")
	}
	f.Advance(time.Hour)
	if got := drain(tm.C()); len(got) != 0 {
		t.Errorf("a stopped timer fired: %v", got)
	}
	if n := f.Waiters(); n != 0 {
		t.Errorf("%d waiters left", n)
	}
}

func TestSleepWakesOnAdvance(t *testing.T) {
	f := New(t0)
	done := make(chan error, 1)
	go func() { done <- clock.Sleep(context.Background(), f, time.Hour) }()
	f.AwaitWaiters(1)
	select {
	case err := <-done:
		t.Fatalf("Sleep returned before the clock moved: %v", err)
	default:
	}
	f.Advance(time.Hour)
	if err := <-done; err != nil {
		t.Errorf("Sleep: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := clock.Sleep(ctx, f, time.Hour); err != context.Canceled {
		t.Errorf("Sleep with an ended context = %v, want context.Canceled", err)
	}
}

func TestSetBackwardsFiresNothing(t *testing.T) {
	f := New(t0)
	tm := f.NewTimer(time.Second)
	f.Set(t0.Add(-time.Hour))
	if got := drain(tm.C()); len(got) != 0 {
		t.Errorf("fired on a move backwards: %v", got)
	}
	f.Set(t0.Add(time.Second))
	if got := drain(tm.C()); len(got) != 1 {
		t.Errorf("fired %d times after Set past it, want 1", len(got))
	}
}

func TestPacedReadsTheFake(t *testing.T) {
	f := New(t0)
	p := f.Paced()
	f.Advance(time.Minute)
	if got := p.Now(); !got.Equal(t0.Add(time.Minute)) {
		t.Errorf("Paced Now = %v, want %v", got, t0.Add(time.Minute))
	}
	tm := p.NewTimer(time.Millisecond) // a real timer: fires without Advance
	<-tm.C()
	if n := f.Waiters(); n != 0 {
		t.Errorf("a paced timer waits on the fake (%d waiters)", n)
	}
}

func TestPollGivesUpWhenTheFakeHasMoved(t *testing.T) {
	f := New(t0)
	checks := make(chan int, 100)
	done := make(chan error, 1)
	n := 0
	go func() {
		done <- clock.Poll(context.Background(), f, time.Second, 3*time.Second, func() (bool, error) {
			n++
			checks <- n
			return false, nil
		})
	}()
	<-checks // the first check is at once
	f.AwaitWaiters(2)
	for range 3 {
		f.Advance(time.Second)
		<-checks
	}
	// At 3 s the timeout and the tick fall together: one last check at most.
	if err := <-done; err != nil {
		t.Errorf("Poll = %v, want nil after the wait", err)
	}
	if n < 4 || n > 5 {
		t.Errorf("%d checks, want 4 or 5", n)
	}
}

// TestTimerAlreadyDueFiresAtOnce: a timer for no time at all fires
// without the fake moving, as a real one does, so a zero wait never hangs.
func TestTimerAlreadyDueFiresAtOnce(t *testing.T) {
	f := New(time.Unix(0, 0))
	for _, d := range []time.Duration{0, -time.Second} {
		select {
		case <-f.NewTimer(d).C():
		default:
			t.Errorf("NewTimer(%v) did not fire at once", d)
		}
	}
}
