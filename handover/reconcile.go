package handover

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"time"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/clock"
	"github.com/handoverd/handoverd/store"
)

// How doubtful threads are reconciled.
//
//   - A thread's state is doubtful when a request of ours for control has
//     been pending past handover.control_timeout (the pass may have come
//     without its webhook), when an agent send was refused as not the
//     owner and thread_owner could not settle it, or when a handover
//     failed (the call may have happened anyway). Each pass first records
//     the doubts it finds in reconcile_threads (doubted_at: when the doubt
//     arose), then checks the due ones — doubted after their last check —
//     with Graph's thread_owner, and corrects the thread, recording the
//     change with the reason "reconciled".
//   - Several processes may share the database: a process checks a thread
//     only under a lease on its reconcile_threads row, so no two ask Graph
//     about the same thread at once, and the rate limit is counted in the
//     database per Page and window of the injected clock
//     (reconcile_rate), so together they make at most reconcile.rate calls
//     a second per Page. What does not fit waits for the next window.
//   - Graph is never called inside a transaction.

// Reasons a thread is doubtful.
const (
	doubtRequestTimeout = "request_timeout"
	doubtSendRefused    = "send_refused"
	doubtHandoverFailed = "handover_failed"
)

const (
	// reconcileLease is how long a process holds a thread it checks.
	reconcileLease = time.Minute
	// reconcileRetry is how long a failed check waits before the next try.
	reconcileRetry = time.Minute
	// reconcileBatch bounds the doubts looked at per query.
	reconcileBatch = 200
)

// ReconcileResult counts what a reconciliation pass did.
type ReconcileResult struct {
	// Checked is how many threads were asked about.
	Checked int
	// Corrected is how many of them changed owner.
	Corrected int
	// Failed is how many checks Graph did not answer.
	Failed int
	// Deferred is how many due threads waited for the rate limit.
	Deferred int
}

// raiseDoubt records that a thread's state is doubtful since at.
func (s *Service) raiseDoubt(ctx context.Context, pageID, psid, reason string, at time.Time) error {
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO reconcile_threads (page_id, psid, reason, doubted_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (page_id, psid) DO UPDATE SET reason = excluded.reason, doubted_at = excluded.doubted_at
			WHERE excluded.doubted_at > reconcile_threads.doubted_at`, pageID, psid, reason, store.Millis(at))
		return err
	})
}

// findDoubts records the doubts that show in the stored state: requests
// pending past the control timeout, and handovers that failed since a
// thread could last have gone idle.
func (s *Service) findDoubts(ctx context.Context) error {
	now := s.now()
	type doubt struct {
		page, psid, reason string
		at                 int64
	}
	var found []doubt
	scan := func(reason, query string, args ...any) error {
		rows, err := s.db.Reader().QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d := doubt{reason: reason}
			if err := rows.Scan(&d.page, &d.psid, &d.at); err != nil {
				return err
			}
			found = append(found, d)
		}
		return rows.Err()
	}
	if err := scan(doubtRequestTimeout, `SELECT t.page_id, t.psid, t.pending_at FROM threads t
		WHERE t.pending_app_id = $1 AND t.pending_app_id <> '' AND t.owner <> 'agent' AND t.pending_at <= $2
		  AND NOT EXISTS (SELECT 1 FROM reconcile_threads r WHERE r.page_id = t.page_id AND r.psid = t.psid AND r.doubted_at >= t.pending_at)
		ORDER BY t.pending_at LIMIT $3`,
		s.appID, store.Millis(now.Add(-s.hcfg.ControlTimeout)), reconcileBatch); err != nil {
		return err
	}
	if err := scan(doubtHandoverFailed, `SELECT o.page_id, o.psid, max(o.finished_at) FROM control_ops o
		WHERE o.status = 'failed' AND o.finished_at >= $1
		  AND NOT EXISTS (SELECT 1 FROM reconcile_threads r WHERE r.page_id = o.page_id AND r.psid = o.psid AND r.doubted_at >= o.finished_at)
		GROUP BY o.page_id, o.psid LIMIT $2`,
		store.Millis(now.Add(-s.idleAfter)), reconcileBatch); err != nil {
		return err
	}
	for _, d := range found {
		if _, ok := s.pages[d.page]; !ok {
			continue
		}
		if err := s.raiseDoubt(ctx, d.page, d.psid, d.reason, store.Time(d.at)); err != nil {
			return err
		}
	}
	return nil
}

// ReconcileDoubtful runs one reconciliation pass: it records the doubtful
// threads it finds and checks the due ones with thread_owner, within the
// rate limit. Safe in several processes at once.
func (s *Service) ReconcileDoubtful(ctx context.Context) (ReconcileResult, error) {
	var res ReconcileResult
	if s.graph == nil {
		return res, nil
	}
	if err := s.findDoubts(ctx); err != nil {
		return res, err
	}
	exhausted := map[string]bool{}
	seen := map[threadKey]bool{}
	for {
		now := s.now()
		rows, err := s.db.Reader().QueryContext(ctx, `SELECT page_id, psid FROM reconcile_threads
			WHERE doubted_at > checked_at AND (lease_until IS NULL OR lease_until < $1)
			ORDER BY doubted_at LIMIT $2`, store.Millis(now), reconcileBatch)
		if err != nil {
			return res, err
		}
		var due []threadKey
		for rows.Next() {
			var k threadKey
			if err := rows.Scan(&k.page, &k.psid); err != nil {
				rows.Close()
				return res, err
			}
			if !seen[k] {
				due = append(due, k)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return res, err
		}
		progress := false
		for _, k := range due {
			seen[k] = true
			if _, ok := s.pages[k.page]; !ok {
				continue
			}
			if exhausted[k.page] {
				res.Deferred++
				continue
			}
			done, err := s.checkDoubt(ctx, k, &res)
			if err != nil {
				return res, err
			}
			switch done {
			case checkNoBudget:
				exhausted[k.page] = true
				res.Deferred++
			case checkDone:
				progress = true
			}
		}
		if len(due) < reconcileBatch || !progress {
			break
		}
	}
	s.metrics.ReconcileDeferred.Add(float64(res.Deferred))
	return res, nil
}

// Outcomes of checkDoubt.
const (
	checkSkipped  = iota // another process holds it, or it is no longer due
	checkNoBudget        // the Page's rate limit is used up for now
	checkDone            // asked
)

// checkDoubt leases one doubtful thread, takes one call from its Page's
// budget, asks thread_owner and records the check.
func (s *Service) checkDoubt(ctx context.Context, k threadKey, res *ReconcileResult) (int, error) {
	started := s.now()
	var leased bool
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE reconcile_threads SET lease_until = $3
			WHERE page_id = $1 AND psid = $2 AND doubted_at > checked_at AND (lease_until IS NULL OR lease_until < $4)`,
			k.page, k.psid, store.Millis(started.Add(reconcileLease)), store.Millis(started))
		if err != nil {
			return err
		}
		n, err := r.RowsAffected()
		leased = n == 1
		return err
	})
	if err != nil || !leased {
		return checkSkipped, err
	}
	ok, err := s.takeBudget(ctx, k.page, started)
	if err != nil || !ok {
		if rerr := s.setCheck(ctx, k, `lease_until = NULL`); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return checkNoBudget, err
	}
	res.Checked++
	before, _, gerr := s.Get(ctx, k.page, k.psid)
	var owner Owner
	if gerr == nil {
		owner, gerr = s.reconcileAs(ctx, k.page, k.psid, CauseReconciled)
	}
	switch {
	case gerr == nil:
	case errors.Is(gerr, ErrNotFound) || apperr.As(gerr).Code == apperr.NotFound:
		// Nothing to correct: the thread is gone or its Page unknown.
		s.metrics.Reconciles.WithLabelValues("confirmed").Inc()
		return checkDone, s.setCheck(ctx, k, `checked_at = $3, lease_until = NULL, attempts = attempts + 1, result = 'not found'`, store.Millis(started))
	case gerr != nil:
		res.Failed++
		s.metrics.Reconciles.WithLabelValues("failed").Inc()
		s.log.Warn().Err(gerr).Str("page_id", k.page).Str("psid", k.psid).Msg("reconciliation: thread_owner failed; trying again later")
		return checkDone, s.setCheck(ctx, k, `lease_until = $3, attempts = attempts + 1, result = $4`,
			store.Millis(started.Add(reconcileRetry)), "error: "+apperr.As(gerr).Message)
	}
	result := "confirmed"
	if owner != before.Owner {
		result = "corrected"
		res.Corrected++
	}
	s.metrics.Reconciles.WithLabelValues(result).Inc()
	return checkDone, s.setCheck(ctx, k, `checked_at = $3, lease_until = NULL, attempts = attempts + 1, result = $4`,
		store.Millis(started), string(owner))
}

// setCheck updates a reconcile_threads row; set uses $3, $4… for args.
func (s *Service) setCheck(ctx context.Context, k threadKey, set string, args ...any) error {
	return s.db.InTx(context.WithoutCancel(ctx), func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE reconcile_threads SET `+set+` WHERE page_id = $1 AND psid = $2`,
			append([]any{k.page, k.psid}, args...)...)
		return err
	})
}

// rateWindow returns the rate limit's window and the calls it allows per
// Page: one second and reconcile.rate calls, or, below one call a second,
// the time one call takes.
func (s *Service) rateWindow() (time.Duration, int64) {
	r := s.rcfg.Rate
	if r >= 1 {
		return time.Second, int64(math.Floor(r))
	}
	return time.Duration(math.Ceil(float64(time.Second) / r)), 1
}

// takeBudget counts one thread_owner call against the Page's rate limit in
// the window now falls in, and reports whether it was within the limit.
func (s *Service) takeBudget(ctx context.Context, pageID string, now time.Time) (bool, error) {
	window, limit := s.rateWindow()
	startMs := store.Millis(now) / window.Milliseconds() * window.Milliseconds()
	ok := false
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var calls int64
		err := tx.QueryRowContext(ctx, `INSERT INTO reconcile_rate (page_id, window_start, calls) VALUES ($1, $2, 1)
			ON CONFLICT (page_id, window_start) DO UPDATE SET calls = reconcile_rate.calls + 1
			WHERE reconcile_rate.calls < $3 RETURNING calls`, pageID, startMs, limit).Scan(&calls)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			ok = false
			return nil
		case err != nil:
			return err
		}
		ok = true
		// Old windows are of no further use.
		_, err = tx.ExecContext(ctx, `DELETE FROM reconcile_rate WHERE page_id = $1 AND window_start < $2`,
			pageID, startMs-60*window.Milliseconds())
		return err
	})
	return ok, err
}

// RunReconciler runs a reconciliation pass at once and then every
// reconcile.interval (sooner while the rate limit held threads back)
// until ctx ends.
func (s *Service) RunReconciler(ctx context.Context) {
	for {
		res, err := s.ReconcileDoubtful(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error().Err(err).Msg("reconciliation failed")
		} else if res.Checked > 0 {
			s.log.Info().Int("checked", res.Checked).Int("corrected", res.Corrected).Int("failed", res.Failed).
				Int("deferred", res.Deferred).Msg("doubtful threads reconciled")
		}
		wait := s.rcfg.Interval
		if res.Deferred > 0 {
			w, _ := s.rateWindow()
			wait = min(wait, w)
		}
		if clock.Sleep(ctx, s.clock, wait) != nil {
			return
		}
	}
}
