package jobs

import (
	"errors"
	"net/url"
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

func TestDecide(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	outbox := Policy{Backoff: Backoff{Initial: 5 * time.Second, Max: 5 * time.Minute}, GiveUpAfter: time.Hour}
	relay := Policy{Backoff: Backoff{Initial: time.Second, Max: time.Minute}, Attempts: 3}
	refused := &url.Error{Op: "Post", URL: "https://user:secret@bot.example/hook?token=abc", Err: errors.New("connection refused")}
	tests := []struct {
		name     string
		policy   Policy
		retry    bool
		err      error
		attempts int
		now      time.Time
		want     Decision
	}{
		{"success", outbox, false, nil, 1, created, Decision{Result: ResultOK}},
		{"first failure", outbox, true, &StatusError{503}, 1, created,
			Decision{Result: ResultRetry, Next: created.Add(5 * time.Second), Status: 503, Error: "HTTP 503"}},
		{"third failure", outbox, true, &StatusError{429}, 3, created.Add(time.Minute),
			Decision{Result: ResultRetry, Next: created.Add(80 * time.Second), Status: 429, Error: "HTTP 429"}},
		{"refused for good", outbox, false, &StatusError{404}, 1, created, Decision{Result: ResultFailed, Status: 404, Error: "HTTP 404"}},
		{"past give_up_after", outbox, true, &StatusError{500}, 9, created.Add(58 * time.Minute),
			Decision{Result: ResultFailed, Status: 500, Error: "HTTP 500"}},
		{"transport error, URL secrets stripped", outbox, true, refused, 1, created,
			Decision{Result: ResultRetry, Next: created.Add(5 * time.Second), Error: `Post "https://bot.example/hook": connection refused`}},
		{"attempts left", relay, true, &StatusError{502}, 2, created,
			Decision{Result: ResultRetry, Next: created.Add(2 * time.Second), Status: 502, Error: "HTTP 502"}},
		{"attempts used up", relay, true, &StatusError{502}, 3, created, Decision{Result: ResultFailed, Status: 502, Error: "HTTP 502"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.policy.Decide(tt.retry, tt.err, tt.attempts, created, tt.now)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decide (-want +got):\n%s", diff)
			}
		})
	}
}
