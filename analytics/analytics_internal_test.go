package analytics

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestIsHandoff: which owner changes are hand-offs to the agents.
func TestIsHandoff(t *testing.T) {
	tests := []struct {
		from, to, cause string
		want            bool
	}{
		{"bot", "agent", "pass_thread_control", true},
		{"bot", "agent", "reconciled", true},
		{"idle", "agent", "take_thread_control", true},
		{"page_inbox", "agent", "take_thread_control", true},
		{"idle", "agent", "customer_message", false}, // a new conversation reaching the default app
		{"agent", "agent", "pass_thread_control", false},
		{"agent", "bot", "pass_thread_control", false},
		{"idle", "bot", "customer_message", false},
	}
	for _, tt := range tests {
		if got := isHandoff(transition{from: tt.from, to: tt.to, cause: tt.cause}); got != tt.want {
			t.Errorf("%s → %s (%s) = %v, want %v", tt.from, tt.to, tt.cause, got, tt.want)
		}
	}
}

// TestPercentile: nearest rank, none for no samples.
func TestPercentile(t *testing.T) {
	p := func(v float64) *float64 { return &v }
	tests := []struct {
		vs   []float64
		q    float64
		want *float64
	}{
		{nil, 50, nil},
		{[]float64{7}, 50, p(7)},
		{[]float64{7}, 90, p(7)},
		{[]float64{90, 30}, 50, p(30)},
		{[]float64{90, 30}, 90, p(90)},
		{[]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 50, p(5)},
		{[]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 90, p(9)},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, percentile(tt.vs, tt.q)); diff != "" {
			t.Errorf("percentile(%v, %v) (-want +got):\n%s", tt.vs, tt.q, diff)
		}
	}
}

// TestFirstAfter: the first time not before at.
func TestFirstAfter(t *testing.T) {
	ts := []time.Time{time.UnixMilli(10), time.UnixMilli(20)}
	for _, tt := range []struct {
		at   int64
		want int64
		ok   bool
	}{{5, 10, true}, {10, 10, true}, {11, 20, true}, {21, 0, false}} {
		got, ok := firstAfter(ts, time.UnixMilli(tt.at))
		if ok != tt.ok || (ok && got.UnixMilli() != tt.want) {
			t.Errorf("firstAfter(%d) = %v %v, want %d %v", tt.at, got, ok, tt.want, tt.ok)
		}
	}
}
