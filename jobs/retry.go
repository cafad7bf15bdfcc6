package jobs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/handoverd/handoverd/internal/redact"
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

// Policy is a queue's retry policy: the backoff between attempts and when
// to stop retrying.
type Policy struct {
	Backoff
	// Attempts stops retrying after this many attempts (0: no limit).
	Attempts int
	// GiveUpAfter stops retrying once the next attempt would come later
	// than this after the row was created (0: no limit).
	GiveUpAfter time.Duration
}

// Decision is what an attempt's answer means for its row, for the
// queue's record step.
type Decision struct {
	// Result is ResultOK, ResultRetry or ResultFailed.
	Result string
	// Next is when to attempt again (with ResultRetry).
	Next time.Time
	// Status is the HTTP status of the answer (0 for none); Decide knows
	// it from a *StatusError, the caller sets it for a success.
	Status int
	// Error says why it did not succeed, fit for logs and people (URLs
	// stripped of their secrets); "" on success.
	Error string
}

// Decide turns an attempt's answer (retry, err: see Queue.Attempt and
// HTTPResult) into what to record, now, for the row's attempts-th attempt
// of a row created at created.
func (p Policy) Decide(retry bool, err error, attempts int, created, now time.Time) Decision {
	if err == nil {
		return Decision{Result: ResultOK}
	}
	d := Decision{Result: ResultFailed, Status: Status(err), Error: redact.Error(err)}
	if !retry || (p.Attempts > 0 && attempts >= p.Attempts) {
		return d
	}
	next := now.Add(p.Delay(max(attempts, 1)))
	if p.GiveUpAfter > 0 && next.Sub(created) > p.GiveUpAfter {
		return d
	}
	d.Result, d.Next = ResultRetry, next
	return d
}
