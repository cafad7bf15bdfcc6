// Package jobs runs handoverd's durable queues: work to do later, at least
// once, surviving restarts, in a table of the owning package (agent
// messages, bot events, the inbox outbox, relay calls and actions).
//
// A queue gives the runner a due query, a way to read a leased row, and an
// Attempt that answers the way alertmanager's notifiers do: (retry, err).
// The runner does the rest, the same for every queue: it lists the due
// rows, leases each before attempting it (an UPDATE … WHERE the lease is
// free, so of several processes sharing one PostgreSQL exactly one attempts
// a row), hands a lease back when shutdown cuts an attempt short, counts
// and times the attempts per queue, and runs the owning service's work on a
// ticker that can be kicked. The retry policy (Backoff) and the meaning of
// an HTTP answer (HTTPResult) are the runner's too, so every queue retries
// the same things the same way.
package jobs

import (
	"cmp"
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/clock"
	"github.com/handoverd/handoverd/internal/redact"
	"github.com/handoverd/handoverd/metrics"
	"github.com/handoverd/handoverd/store"
)

// Options configures a Runner.
type Options struct {
	// DB holds the queues' tables.
	DB *store.DB
	// Clock paces the loop and stamps the leases (nil: the system clock).
	Clock clock.Clock
	// Metrics records the attempts (nil: a private set).
	Metrics *metrics.Metrics
	// Logger logs attempts that fail.
	Logger zerolog.Logger
}

// Runner attempts the due rows of durable queues and runs a service's
// background work on a kickable ticker. It is safe for concurrent use.
type Runner struct {
	db      *store.DB
	clock   clock.Clock
	metrics *metrics.Metrics
	log     zerolog.Logger
	kick    chan struct{}

	mu       sync.Mutex
	failures map[failureKey]int // per row, attempts failed in a row (paces the warnings)
}

type failureKey struct {
	queue string
	id    int64
}

// New returns a Runner.
func New(o Options) *Runner {
	r := &Runner{db: o.DB, clock: clock.Or(o.Clock), metrics: o.Metrics, log: o.Logger,
		kick: make(chan struct{}, 1), failures: map[failureKey]int{}}
	if r.metrics == nil {
		r.metrics = metrics.New()
	}
	return r
}

// Kick makes Run do its work at once (or right after the pass under way).
func (r *Runner) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Step is one part of a service's background work.
type Step struct {
	// Do does it (the count it returns is not used).
	Do func(ctx context.Context) (int, error)
	// Failed is the message that logs Do's error.
	Failed string
}

// Run does the steps, in order, every interval and whenever kicked, until
// ctx ends. A step that fails is logged and the next one runs.
func (r *Runner) Run(ctx context.Context, every time.Duration, steps ...Step) {
	t := r.clock.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		case <-r.kick:
		}
		for _, st := range steps {
			if _, err := st.Do(ctx); err != nil && ctx.Err() == nil {
				r.log.Error().Err(err).Msg(st.Failed)
			}
		}
	}
}

// Queue describes one durable queue of rows of type J. Its table has an
// id, a status, a lease_until (Unix ms) and, with CountAttempts, an
// attempts column.
type Queue[J any] struct {
	// Name labels the queue's metrics and logs (metrics.JobQueues).
	Name string
	// Table, Pending and Lease say how a row is leased: the row of Table
	// whose status is Pending, for Lease from the attempt's start.
	Table, Pending string
	Lease          time.Duration
	// CountAttempts counts an attempt in the attempts column as the row is
	// leased.
	CountAttempts bool
	// HandBack gives the row back when shutdown cuts its attempt short:
	// its lease freed and its attempt uncounted, so the next process
	// attempts it at once (for work that is safe to attempt again).
	HandBack bool
	// Rounds is how many times Drain runs the due query, following rows
	// that fall due as others finish (0: once).
	Rounds int
	// DueAt names the column of a row's due time (Unix ms), and Per the
	// columns of its group, for the runner's due query: the pending rows
	// due and not leased, of each group only the oldest (so a group's rows
	// go in order), at most Limit (0: 100) of them, oldest first. The
	// lease checks DueAt too (with Due as well), so a row another process
	// put off after this one listed it is not attempted early.
	DueAt string
	Per   []string
	Limit int
	// Due, when set, replaces the runner's due query: it lists the ids
	// due at now, in the order to attempt them.
	Due func(ctx context.Context, now time.Time) ([]int64, error)
	// Load reads a row just leased, in the leasing transaction.
	Load func(ctx context.Context, tx *store.Tx, id int64) (J, error)
	// Claim, when set, replaces the runner's lease and Load for a queue
	// whose rows are claimed under further conditions: it leases row id
	// until until and returns it, or reports false when it did not.
	Claim func(ctx context.Context, id int64, now, until time.Time) (J, bool, error)
	// Attempt works on a leased row and records the outcome: nil when the
	// row is finished; otherwise whether another attempt may succeed
	// (retry: it recorded when, or the lease runs out) or the row failed
	// for good. Errors it returns are logged: keep secrets out of them.
	Attempt func(ctx context.Context, job J, now time.Time) (retry bool, err error)
}

// Attempt results (the result label of handoverd_jobs_attempts_total).
const (
	ResultOK         = "ok"
	ResultRetry      = "retry"
	ResultFailed     = "failed"
	ResultHandedBack = "handed_back"
)

// Drain attempts every row of q due now, each once, and returns how many it
// finished. Rows another process holds are left alone. It stops early when
// ctx ends, or when listing or leasing fails (that error is returned).
func Drain[J any](ctx context.Context, r *Runner, q *Queue[J]) (int, error) {
	done := 0
	for round := 0; round < max(q.Rounds, 1); round++ {
		ids, err := due(ctx, r, q, r.clock.Now())
		if err != nil {
			return done, err
		}
		if round == 0 {
			r.metrics.JobsDue.WithLabelValues(q.Name).Set(float64(len(ids)))
		}
		if len(ids) == 0 {
			break
		}
		for _, id := range ids {
			if ctx.Err() != nil {
				return done, nil
			}
			result, err := Try(ctx, r, q, id)
			if err != nil {
				return done, err
			}
			if result == ResultOK {
				done++
			}
		}
	}
	return done, nil
}

// due lists q's rows due at now: q.Due's, or the runner's due query.
func due[J any](ctx context.Context, r *Runner, q *Queue[J], now time.Time) ([]int64, error) {
	if q.Due != nil {
		return q.Due(ctx, now)
	}
	pending := "'" + strings.ReplaceAll(q.Pending, "'", "''") + "'"
	oldest := ""
	if len(q.Per) > 0 {
		oldest = ` AND q.id = (SELECT min(p.id) FROM ` + q.Table + ` p WHERE p.status = ` + pending
		for _, c := range q.Per {
			oldest += " AND p." + c + " = q." + c
		}
		oldest += ")"
	}
	return store.IDs(ctx, r.db.Reader(), `SELECT q.id FROM `+q.Table+` q
		WHERE q.status = `+pending+` AND q.`+q.DueAt+` <= $1 AND (q.lease_until IS NULL OR q.lease_until < $1)`+oldest+`
		ORDER BY q.id LIMIT `+strconv.Itoa(cmp.Or(q.Limit, 100)), store.Millis(now))
}

// Try leases row id of q and, if it got the lease, attempts it; it returns
// the result ("" when the row was not leased: another process holds it, or
// it is no longer pending).
func Try[J any](ctx context.Context, r *Runner, q *Queue[J], id int64) (string, error) {
	now := r.clock.Now()
	until := now.Add(q.Lease)
	job, ok, err := claim(ctx, r, q, id, now, until)
	if err != nil || !ok {
		return "", err
	}
	retry, aerr := q.Attempt(ctx, job, now)
	result := Outcome(retry, aerr)
	if ctx.Err() != nil && q.HandBack {
		back, err := r.handBack(q.Table, q.Pending, id, until, q.CountAttempts)
		if err != nil {
			return "", err
		}
		if back {
			result = ResultHandedBack
		}
	}
	r.metrics.JobAttempts.WithLabelValues(q.Name, result).Inc()
	r.metrics.JobAttemptDuration.WithLabelValues(q.Name).Observe(clock.Since(r.clock, now).Seconds())
	r.note(q.Name, id, result, aerr)
	return result, nil
}

// Outcome names what an attempt's answer means for its row.
func Outcome(retry bool, err error) string {
	switch {
	case err == nil:
		return ResultOK
	case retry:
		return ResultRetry
	default:
		return ResultFailed
	}
}

// claim leases row id with q.Claim, or else the runner's lease and q.Load
// in one transaction.
func claim[J any](ctx context.Context, r *Runner, q *Queue[J], id int64, now, until time.Time) (J, bool, error) {
	if q.Claim != nil {
		return q.Claim(ctx, id, now, until)
	}
	var job J
	ok := false
	err := r.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if ok, err = tx.Lease(ctx, q.Table, q.Pending, q.DueAt, id, until, now, q.CountAttempts); err != nil || !ok {
			return err
		}
		job, err = q.Load(ctx, tx, id)
		return err
	})
	return job, ok && err == nil, err
}

// handBack frees the lease (until) on row id of table, still pending and
// still leased by this attempt, uncounting its attempt; it reports whether
// it did. It runs when the caller's context has ended.
func (r *Runner) handBack(table, pending string, id int64, until time.Time, counted bool) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	attempts := ""
	if counted {
		attempts = ", attempts = attempts - 1"
	}
	back := false
	err := r.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE `+table+` SET lease_until = NULL`+attempts+`
			WHERE id = $1 AND status = $2 AND lease_until = $3`, id, pending, store.Millis(until))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		back = n == 1
		return err
	})
	return back, err
}

// note logs a failed attempt: a retry at the first, second, fourth,
// eighth… failure of a row in a row, so a row failing for hours is visible
// but no flood.
func (r *Runner) note(queue string, id int64, result string, err error) {
	const maxNoted = 10000
	k := failureKey{queue, id}
	r.mu.Lock()
	n := 0
	if result == ResultRetry {
		if len(r.failures) >= maxNoted { // rows settled elsewhere (another process, a sweep) leave theirs behind
			clear(r.failures)
		}
		r.failures[k]++
		n = r.failures[k]
	} else {
		delete(r.failures, k)
	}
	r.mu.Unlock()
	switch {
	case result == ResultFailed: // the queue says what failed, in its words
		r.log.Debug().Str("queue", queue).Int64("id", id).Str("error", redact.Error(err)).Msg("job failed for good")
	case result == ResultRetry && n&(n-1) == 0:
		r.log.Warn().Str("queue", queue).Int64("id", id).Int("failures", n).Str("error", redact.Error(err)).Msg("job attempt failed; retrying")
	}
}
