package clock_test

import (
	"context"
	"testing"
	"time"

	"github.com/handoverd/handoverd/clock"
)

func TestOr(t *testing.T) {
	if _, ok := clock.Or(nil).(clock.Real); !ok {
		t.Errorf("Or(nil) = %T, want clock.Real", clock.Or(nil))
	}
	type other struct{ clock.Real }
	if _, ok := clock.Or(other{}).(other); !ok {
		t.Error("Or replaced a clock it was given")
	}
}

func TestRealTickerAndSleep(t *testing.T) {
	c := clock.Real{}
	tk := c.NewTicker(time.Millisecond)
	<-tk.C()
	tk.Stop()
	if err := clock.Sleep(context.Background(), c, time.Millisecond); err != nil {
		t.Errorf("Sleep: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := clock.Sleep(ctx, c, time.Hour); err != context.Canceled {
		t.Errorf("Sleep with an ended context = %v, want context.Canceled", err)
	}
	if d := clock.Since(c, time.Now().Add(-time.Hour)); d < time.Hour {
		t.Errorf("Since an hour ago = %v", d)
	}
}

func TestRealTimerAndPoll(t *testing.T) {
	c := clock.Real{}
	tm := c.NewTimer(time.Hour)
	if !tm.Stop() {
		t.Error("Stop of a waiting timer reported it fired")
	}
	tm.Reset(time.Millisecond)
	<-tm.C()
	tests := []struct {
		name      string
		doneAfter int // checks until done (0: never)
		within    time.Duration
		wantMin   int
	}{
		{"done at once", 1, time.Hour, 1},
		{"done on the third check", 3, time.Hour, 3},
		{"never done: one check past the wait", 0, 5 * time.Millisecond, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			err := clock.Poll(context.Background(), c, time.Millisecond, tt.within, func() (bool, error) {
				n++
				return n == tt.doneAfter, nil
			})
			if err != nil || n < tt.wantMin || (tt.doneAfter > 0 && n != tt.doneAfter) {
				t.Errorf("Poll = %v after %d checks, want nil after %d", err, n, tt.wantMin)
			}
		})
	}
}
