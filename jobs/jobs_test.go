package jobs_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/internal/clocktest"
	"github.com/handoverd/handoverd/jobs"
	"github.com/handoverd/handoverd/metrics"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/store/storetest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// row is a test_jobs row.
type row struct {
	Status    string
	Attempts  int
	Leased    bool
	NextAt    int64
	LastError string
}

// fixture is a test queue over its own table on a real database, with a
// runner on a fake clock.
type fixture struct {
	t       *testing.T
	db      *store.DB
	clock   *clocktest.Fake
	metrics *metrics.Metrics
	runner  *jobs.Runner
}

func newFixture(t *testing.T, b storetest.Backend) *fixture {
	f := &fixture{t: t, db: b.Open(t), clock: clocktest.New(t0), metrics: metrics.New()}
	if _, err := f.db.Writer().Exec(`CREATE TABLE test_jobs (id BIGINT PRIMARY KEY, status TEXT NOT NULL, lease_until BIGINT,
		attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at BIGINT NOT NULL, last_error TEXT NOT NULL DEFAULT '',
		grp TEXT NOT NULL DEFAULT '')`); err != nil {
		t.Fatal(err)
	}
	f.runner = f.newRunner(f.db)
	return f
}

func (f *fixture) newRunner(db *store.DB) *jobs.Runner {
	return jobs.New(jobs.Options{DB: db, Clock: f.clock, Metrics: f.metrics, Logger: zerolog.Nop()})
}

func (f *fixture) insert(ids ...int64) {
	for _, id := range ids {
		if _, err := f.db.Writer().Exec(`INSERT INTO test_jobs (id, status, next_attempt_at) VALUES ($1, 'pending', $2)`, id, store.Millis(t0)); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *fixture) row(id int64) row {
	var r row
	var lease sql.NullInt64
	if err := f.db.Reader().QueryRow(`SELECT status, attempts, lease_until, next_attempt_at, last_error FROM test_jobs WHERE id = $1`, id).
		Scan(&r.Status, &r.Attempts, &lease, &r.NextAt, &r.LastError); err != nil {
		f.t.Fatal(err)
	}
	r.Leased = lease.Valid
	return r
}

var backoff = jobs.Backoff{Initial: 5 * time.Second, Max: 20 * time.Second}

// queue returns a queue over test_jobs whose attempts answer with
// attempt and record its answer as a real queue would.
func (f *fixture) queue(db *store.DB, attempt func(ctx context.Context, id int64) (bool, error)) *jobs.Queue[int64] {
	return &jobs.Queue[int64]{
		Name: "outbox", Table: "test_jobs", Pending: "pending", Lease: time.Minute, CountAttempts: true, HandBack: true,
		DueAt: "next_attempt_at",
		Load:  func(ctx context.Context, tx *store.Tx, id int64) (int64, error) { return id, nil },
		Attempt: func(ctx context.Context, id int64, now time.Time) (bool, error) {
			retry, aerr := attempt(ctx, id)
			err := db.InTx(ctx, func(tx *store.Tx) error {
				var err error
				switch jobs.Outcome(retry, aerr) {
				case jobs.ResultOK:
					_, err = tx.ExecContext(ctx, `UPDATE test_jobs SET status = 'done', lease_until = NULL WHERE id = $1`, id)
				case jobs.ResultRetry:
					var n int
					if err = tx.QueryRowContext(ctx, `SELECT attempts FROM test_jobs WHERE id = $1`, id).Scan(&n); err != nil {
						return err
					}
					_, err = tx.ExecContext(ctx, `UPDATE test_jobs SET next_attempt_at = $2, last_error = $3, lease_until = NULL WHERE id = $1`,
						id, store.Millis(now.Add(backoff.Delay(n))), aerr.Error())
				default:
					_, err = tx.ExecContext(ctx, `UPDATE test_jobs SET status = 'failed', last_error = $2, lease_until = NULL WHERE id = $1`, id, aerr.Error())
				}
				return err
			})
			if aerr == nil && err != nil {
				return true, err
			}
			return retry, aerr
		},
	}
}

func (f *fixture) attempts(result string) float64 {
	return testutil.ToFloat64(f.metrics.JobAttempts.WithLabelValues("outbox", result))
}

func TestALeaseHeldByOneRunnerIsNotAttemptedByAnother(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b)
		f.insert(1, 2)
		other := b.Open(t) // a second process's connection to the same database
		inA, release := make(chan int64), make(chan struct{})
		a := f.queue(f.db, func(ctx context.Context, id int64) (bool, error) {
			if id == 1 {
				inA <- id
				<-release
			}
			return false, nil
		})
		done := make(chan error, 1)
		go func() { _, err := jobs.Drain(context.Background(), f.runner, a); done <- err }()
		<-inA // A holds row 1's lease and is attempting it
		var seen []int64
		bq := f.queue(other, func(ctx context.Context, id int64) (bool, error) { seen = append(seen, id); return false, nil })
		n, err := jobs.Drain(context.Background(), f.newRunner(other), bq)
		if err != nil {
			t.Fatal(err)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{2}, seen); diff != "" {
			t.Errorf("rows the second runner attempted (-want +got):\n%s", diff)
		}
		if n != 1 {
			t.Errorf("the second runner finished %d rows, want 1", n)
		}
		if diff := cmp.Diff(row{Status: "done", Attempts: 1, NextAt: store.Millis(t0)}, f.row(1)); diff != "" {
			t.Errorf("row 1 (-want +got):\n%s", diff)
		}
	})
}

func TestShutdownHandsTheLeaseBack(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b)
		f.insert(1, 2)
		ctx, cancel := context.WithCancel(context.Background())
		var seen []int64
		q := f.queue(f.db, func(actx context.Context, id int64) (bool, error) {
			seen = append(seen, id)
			cancel() // shutdown while the receiver is being called
			<-actx.Done()
			return true, actx.Err()
		})
		if n, err := jobs.Drain(ctx, f.runner, q); err != nil || n != 0 {
			t.Fatalf("Drain = %d, %v", n, err)
		}
		if diff := cmp.Diff([]int64{1}, seen); diff != "" {
			t.Errorf("attempted (-want +got):\n%s", diff)
		}
		// Given back untouched, uncounted: the next process attempts it at once.
		if diff := cmp.Diff(row{Status: "pending", NextAt: store.Millis(t0)}, f.row(1)); diff != "" {
			t.Errorf("row 1 after shutdown (-want +got):\n%s", diff)
		}
		if got := f.attempts(jobs.ResultHandedBack); got != 1 {
			t.Errorf("%v attempts handed back, want 1", got)
		}
		seen = nil
		q2 := f.queue(f.db, func(ctx context.Context, id int64) (bool, error) { seen = append(seen, id); return false, nil })
		if n, err := jobs.Drain(context.Background(), f.newRunner(f.db), q2); err != nil || n != 2 {
			t.Fatalf("Drain after restart = %d, %v; want 2", n, err)
		}
		if diff := cmp.Diff([]int64{1, 2}, seen); diff != "" {
			t.Errorf("attempted after restart (-want +got):\n%s", diff)
		}
	})
}

func TestRetryBacksOffAndAFinalErrorStops(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b)
		f.insert(1, 2)
		answers := map[int64][]error{ // row 1 fails thrice then succeeds; row 2 is refused for good
			1: {errors.New("HTTP 503"), errors.New("HTTP 503"), errors.New("HTTP 503"), nil},
			2: {errors.New("HTTP 400")},
		}
		var tries []int64
		q := f.queue(f.db, func(ctx context.Context, id int64) (bool, error) {
			tries = append(tries, id)
			err := answers[id][0]
			answers[id] = answers[id][1:]
			return id == 1, err
		})
		var next []int64
		for range 6 {
			if _, err := jobs.Drain(context.Background(), f.runner, q); err != nil {
				t.Fatal(err)
			}
			next = append(next, f.row(1).NextAt-store.Millis(f.clock.Now()))
			f.clock.Advance(20 * time.Second)
		}
		// Row 1 at t0, +5 s, +10 s (due at 20 s steps), capped at 20 s; row 2 once.
		if diff := cmp.Diff([]int64{1, 2, 1, 1, 1}, tries); diff != "" {
			t.Errorf("attempts (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]int64{5000, 10000, 20000, 0, -20000, -40000}, next); diff != "" {
			t.Errorf("row 1's next attempt after each pass, from then (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(row{Status: "failed", Attempts: 1, NextAt: store.Millis(t0), LastError: "HTTP 400"}, f.row(2)); diff != "" {
			t.Errorf("row 2 (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff("done", f.row(1).Status); diff != "" {
			t.Errorf("row 1 status (-want +got):\n%s", diff)
		}
		got := map[string]float64{}
		for _, r := range []string{jobs.ResultOK, jobs.ResultRetry, jobs.ResultFailed, jobs.ResultHandedBack} {
			got[r] = f.attempts(r)
		}
		if diff := cmp.Diff(map[string]float64{"ok": 1, "retry": 3, "failed": 1, "handed_back": 0}, got); diff != "" {
			t.Errorf("attempts by result (-want +got):\n%s", diff)
		}
	})
}

func TestKickRunsAtOnce(t *testing.T) {
	f := &fixture{t: t, clock: clocktest.New(t0), metrics: metrics.New()}
	r := f.newRunner(nil)
	ran := make(chan time.Time, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	step := jobs.Step{Do: func(context.Context) (int, error) { ran <- f.clock.Now(); return 0, nil }}
	go func() { r.Run(ctx, time.Hour, step); close(done) }()
	f.clock.AwaitWaiters(1) // the loop's ticker
	r.Kick()
	if got := <-ran; !got.Equal(t0) {
		t.Errorf("kicked pass at %v, want %v (no time passing)", got, t0)
	}
	f.clock.Advance(time.Hour)
	if got := <-ran; !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("ticked pass at %v, want %v", got, t0.Add(time.Hour))
	}
	cancel()
	<-done
	select {
	case at := <-ran:
		t.Errorf("an extra pass at %v", at)
	default:
	}
}

func TestOnlyTheOldestOfAGroupIsDue(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b)
		f.insert(1, 2, 3, 4)
		if _, err := f.db.Writer().Exec(`UPDATE test_jobs SET grp = CASE WHEN id IN (1, 3) THEN 'a' ELSE 'b' END`); err != nil {
			t.Fatal(err)
		}
		if _, err := f.db.Writer().Exec(`UPDATE test_jobs SET next_attempt_at = $1 WHERE id = 2`, store.Millis(t0.Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
		var passes [][]int64
		q := f.queue(f.db, func(ctx context.Context, id int64) (bool, error) {
			passes[len(passes)-1] = append(passes[len(passes)-1], id)
			return false, nil
		})
		q.Per = []string{"grp"}
		for range 3 {
			passes = append(passes, []int64{})
			if _, err := jobs.Drain(context.Background(), f.runner, q); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(time.Hour)
		}
		// Group a: 1 then 3. Group b: 2 holds 4 back until it is due and done.
		if diff := cmp.Diff([][]int64{{1}, {2, 3}, {4}}, passes); diff != "" {
			t.Errorf("rows attempted per pass (-want +got):\n%s", diff)
		}
		if got := testutil.ToFloat64(f.metrics.JobsDue.WithLabelValues("outbox")); got != 1 {
			t.Errorf("handoverd_jobs_due after the last pass = %v, want 1", got)
		}
	})
}

// TestARowPutOffAfterItWasListedIsNotAttempted: another process may list
// a row, then see it put off (its attempt failed, its next attempt is
// later) before leasing it; the lease refuses it, so the retry waits its
// backoff instead of running again at once.
func TestARowPutOffAfterItWasListedIsNotAttempted(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b)
		f.insert(1, 2)
		if _, err := f.db.Writer().Exec(`UPDATE test_jobs SET next_attempt_at = $1 WHERE id = 1`, store.Millis(t0.Add(5*time.Second))); err != nil {
			t.Fatal(err)
		}
		var seen []int64
		q := f.queue(f.db, func(ctx context.Context, id int64) (bool, error) { seen = append(seen, id); return false, nil })
		q.Due = func(context.Context, time.Time) ([]int64, error) { return []int64{1, 2}, nil } // as listed before row 1 was put off
		if _, err := jobs.Drain(context.Background(), f.runner, q); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{2}, seen); diff != "" {
			t.Errorf("rows attempted (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(row{Status: "pending", NextAt: store.Millis(t0.Add(5 * time.Second))}, f.row(1)); diff != "" {
			t.Errorf("row 1 (-want +got):\n%s", diff)
		}
	})
}
