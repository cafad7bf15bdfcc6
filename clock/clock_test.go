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
