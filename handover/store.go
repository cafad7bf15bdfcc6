package handover

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/handoverd/handoverd/store"
)

const threadColumns = `page_id, psid, owner, owner_app_id, state_at, activity_at, expires_at, last_customer_at,
	pending_app_id, pending_at, delivered_watermark, read_watermark, version, created_at, updated_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanThread(row rowScanner) (Thread, error) {
	var th Thread
	var owner string
	var stateAt, createdAt, updatedAt int64
	var activity, expires, lastCustomer, pendingAt, delivered, read sql.NullInt64
	err := row.Scan(&th.PageID, &th.PSID, &owner, &th.OwnerAppID, &stateAt, &activity, &expires, &lastCustomer,
		&th.PendingAppID, &pendingAt, &delivered, &read, &th.Version, &createdAt, &updatedAt)
	if err != nil {
		return Thread{}, err
	}
	th.Owner = Owner(owner)
	th.StateAt = store.Time(stateAt)
	if stateAt == 0 {
		th.StateAt = time.Time{}
	}
	th.ActivityAt, th.ExpiresAt, th.LastCustomerAt = store.TimePtr(activity), store.TimePtr(expires), store.TimePtr(lastCustomer)
	th.PendingAt, th.DeliveredWatermark, th.ReadWatermark = store.TimePtr(pendingAt), store.TimePtr(delivered), store.TimePtr(read)
	th.CreatedAt, th.UpdatedAt = store.Time(createdAt), store.Time(updatedAt)
	return th, nil
}

// lockThread returns the thread's row, creating it (idle) if new, locked
// for the rest of the transaction: one upsert whose no-op update takes the
// row lock on PostgreSQL (SQLite's single writer needs none).
func lockThread(ctx context.Context, tx *store.Tx, pageID, psid string, now time.Time) (Thread, error) {
	return scanThread(tx.QueryRowContext(ctx, `INSERT INTO threads (page_id, psid, owner, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4) ON CONFLICT (page_id, psid) DO UPDATE SET version = threads.version
		RETURNING `+threadColumns, pageID, psid, string(OwnerIdle), store.Millis(now)))
}

func writeThread(ctx context.Context, tx *store.Tx, th *Thread, now time.Time) error {
	stateAt := int64(0)
	if !th.StateAt.IsZero() {
		stateAt = store.Millis(th.StateAt)
	}
	_, err := tx.ExecContext(ctx, `UPDATE threads SET owner = $3, owner_app_id = $4, state_at = $5, activity_at = $6,
		expires_at = $7, last_customer_at = $8, pending_app_id = $9, pending_at = $10, delivered_watermark = $11,
		read_watermark = $12, version = version + 1, updated_at = $13
		WHERE page_id = $1 AND psid = $2`,
		th.PageID, th.PSID, string(th.Owner), th.OwnerAppID, stateAt, store.NullMillis(th.ActivityAt),
		store.NullMillis(th.ExpiresAt), store.NullMillis(th.LastCustomerAt), th.PendingAppID, store.NullMillis(th.PendingAt),
		store.NullMillis(th.DeliveredWatermark), store.NullMillis(th.ReadWatermark), store.Millis(now))
	if err == nil {
		th.Version++
		th.UpdatedAt = store.Time(store.Millis(now))
	}
	return err
}

func insertTransition(ctx context.Context, tx *store.Tx, pageID, psid string, t Transition, now int64) error {
	var eventID sql.NullInt64
	if t.EventID != 0 {
		eventID = sql.NullInt64{Int64: t.EventID, Valid: true}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO thread_transitions
		(page_id, psid, at, from_owner, from_app_id, to_owner, to_app_id, cause, actor, event_id, recorded_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		pageID, psid, store.Millis(t.At), string(t.From), t.FromAppID, string(t.To), t.ToAppID, string(t.Cause), t.Actor, eventID, now)
	return err
}

// ErrNotFound is returned for a thread handoverd has never seen.
var ErrNotFound = errors.New("thread not found")

// Get returns a thread's current state and its history, oldest first. An
// owned thread whose expiry has passed is moved to idle first.
func (s *Service) Get(ctx context.Context, pageID, psid string) (Thread, []Transition, error) {
	th, err := scanThread(s.db.Reader().QueryRowContext(ctx, `SELECT `+threadColumns+` FROM threads
		WHERE page_id = $1 AND psid = $2`, pageID, psid))
	if errors.Is(err, sql.ErrNoRows) {
		return Thread{}, nil, ErrNotFound
	}
	if err != nil {
		return Thread{}, nil, err
	}
	if th.ExpiresAt != nil && !s.now().Before(*th.ExpiresAt) {
		if _, err := s.expire(ctx, pageID, psid); err != nil {
			return Thread{}, nil, err
		}
		return s.Get(ctx, pageID, psid)
	}
	hist, err := s.history(ctx, pageID, psid)
	return th, hist, err
}

func (s *Service) history(ctx context.Context, pageID, psid string) ([]Transition, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT at, from_owner, from_app_id, to_owner, to_app_id, cause, actor, event_id
		FROM thread_transitions WHERE page_id = $1 AND psid = $2 ORDER BY id`, pageID, psid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Transition
	for rows.Next() {
		var t Transition
		var at int64
		var from, to, cause string
		var eventID sql.NullInt64
		if err := rows.Scan(&at, &from, &t.FromAppID, &to, &t.ToAppID, &cause, &t.Actor, &eventID); err != nil {
			return nil, err
		}
		t.At, t.From, t.To, t.Cause, t.EventID = store.Time(at), Owner(from), Owner(to), Cause(cause), eventID.Int64
		out = append(out, t)
	}
	return out, rows.Err()
}

// ExpireIdle moves every owned thread whose expiry has passed to idle and
// returns how many it moved. Safe to run in several processes at once: each
// thread is re-checked under its row lock.
func (s *Service) ExpireIdle(ctx context.Context) (int, error) {
	n := 0
	for {
		rows, err := s.db.Reader().QueryContext(ctx, `SELECT page_id, psid FROM threads
			WHERE expires_at IS NOT NULL AND expires_at <= $1 ORDER BY expires_at LIMIT 500`, store.Millis(s.now()))
		if err != nil {
			return n, err
		}
		type key struct{ page, psid string }
		var keys []key
		for rows.Next() {
			var k key
			if err := rows.Scan(&k.page, &k.psid); err != nil {
				rows.Close()
				return n, err
			}
			keys = append(keys, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return n, err
		}
		moved := 0
		for _, k := range keys {
			ok, err := s.expire(ctx, k.page, k.psid)
			if err != nil {
				return n, err
			}
			if ok {
				moved++
			}
		}
		n += moved
		if len(keys) < 500 || moved == 0 {
			return n, nil
		}
	}
}

// expire moves one thread to idle if its expiry has passed.
func (s *Service) expire(ctx context.Context, pageID, psid string) (bool, error) {
	var c committed
	moved := false
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		c, moved = committed{}, false
		now := s.now()
		th, err := lockThread(ctx, tx, pageID, psid, now)
		if err != nil {
			return err
		}
		if th.Owner == OwnerIdle || th.ExpiresAt == nil || now.Before(*th.ExpiresAt) {
			return nil
		}
		var trs []Transition
		s.transition(&th, OwnerIdle, "", *th.ExpiresAt, CauseExpired, "", &trs)
		s.refreshExpiry(&th)
		if err := writeThread(ctx, tx, &th, now); err != nil {
			return err
		}
		moved = true
		return s.saveTransitions(ctx, tx, &th, trs, store.Millis(now), &c)
	})
	if err == nil {
		s.record(c)
	}
	return moved, err
}
