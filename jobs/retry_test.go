package jobs

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	b := Backoff{Initial: 5 * time.Second, Max: 5 * time.Minute, Jitter: 0.2}
	tests := []struct {
		n    int
		r    float64
		want time.Duration
	}{
		{1, 0, 5 * time.Second},
		{2, 0, 10 * time.Second},
		{3, 0, 20 * time.Second},
		{6, 0, 160 * time.Second},
		{7, 0, 5 * time.Minute}, // 320 s, capped
		{50, 0, 5 * time.Minute},
		{1, 0.5, 4500 * time.Millisecond}, // jitter only shortens: 10 % of 5 s
		{50, 0.5, 270 * time.Second},
	}
	var got, want []time.Duration
	for _, tt := range tests {
		got = append(got, b.delay(tt.n, tt.r))
		want = append(want, tt.want)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delays (-want +got):\n%s", diff)
	}
	for n := 1; n < 20; n++ {
		if d := b.Delay(n); d > b.delay(n, 0) || d < b.delay(n, 0)*8/10 {
			t.Errorf("Delay(%d) = %v, outside [%v, %v]", n, d, b.delay(n, 0)*8/10, b.delay(n, 0))
		}
	}
}

func TestHTTPResult(t *testing.T) {
	transport := errors.New("dial tcp: connection refused")
	type answer struct {
		Retry  bool
		Failed bool
		Status int
	}
	tests := []struct {
		status int
		err    error
		want   answer
	}{
		{200, nil, answer{}},
		{204, nil, answer{}},
		{0, transport, answer{Retry: true, Failed: true}},
		{408, nil, answer{Retry: true, Failed: true, Status: 408}},
		{425, nil, answer{Retry: true, Failed: true, Status: 425}},
		{429, nil, answer{Retry: true, Failed: true, Status: 429}},
		{500, nil, answer{Retry: true, Failed: true, Status: 500}},
		{503, nil, answer{Retry: true, Failed: true, Status: 503}},
		{400, nil, answer{Failed: true, Status: 400}},
		{401, nil, answer{Failed: true, Status: 401}},
		{404, nil, answer{Failed: true, Status: 404}},
		{410, nil, answer{Failed: true, Status: 410}},
		{302, nil, answer{Failed: true, Status: 302}},
	}
	for _, tt := range tests {
		retry, err := HTTPResult(tt.status, tt.err)
		got := answer{Retry: retry, Failed: err != nil, Status: Status(err)}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("HTTPResult(%d, %v) (-want +got):\n%s", tt.status, tt.err, diff)
		}
	}
	if _, err := HTTPResult(0, transport); !errors.Is(err, transport) {
		t.Errorf("a transport error is not passed on: %v", err)
	}
}
