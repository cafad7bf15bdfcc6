package jobs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

// Backoff is the one retry policy of the durable queues: the wait after a
// row's n-th failed attempt is Initial doubling with every failure, at most
// Max, shortened by up to Jitter of itself at random so that rows failing
// together do not come back together. A row is never retried later than
// the policy's plain doubling says.
type Backoff struct {
	// Initial is the wait after the first failure.
	Initial time.Duration
	// Max caps the wait.
	Max time.Duration
	// Jitter is the fraction (0 to 1) the wait may be shortened by.
	Jitter float64
}

// Delay is the wait after the n-th failed attempt (n ≥ 1).
func (b Backoff) Delay(n int) time.Duration { return b.delay(n, rand.Float64()) }

// delay is Delay with the random draw r in [0, 1).
func (b Backoff) delay(n int, r float64) time.Duration {
	d := b.Initial
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	return d - time.Duration(float64(d)*b.Jitter*r)
}

// StatusError is an HTTP answer outside 2xx.
type StatusError struct {
	// Status is the HTTP status code.
	Status int
}

// Error says the status, as "HTTP 503".
func (e *StatusError) Error() string { return fmt.Sprintf("HTTP %d", e.Status) }

// HTTPResult says what an HTTP attempt's answer means, in Attempt's
// terms: nil for a 2xx; for a transport error (no answer) and for 408,
// 425, 429 and 5xx an error worth retrying; for any other status
// (another 4xx: the receiver refuses it, a redirect not followed) a final
// *StatusError.
func HTTPResult(status int, err error) (retry bool, _ error) {
	switch {
	case err != nil:
		return true, err
	case status >= 200 && status < 300:
		return false, nil
	case status == http.StatusRequestTimeout, status == http.StatusTooEarly, status == http.StatusTooManyRequests, status >= 500:
		return true, &StatusError{Status: status}
	default:
		return false, &StatusError{Status: status}
	}
}

// Status returns the HTTP status of an error from HTTPResult (0 for none).
func Status(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}
