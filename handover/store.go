package handover

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/handoverd/handoverd/messenger"
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
		(page_id, psid, at, from_owner, from_app_id, to_owner, to_app_id, cause, actor, event_id, recorded_at, reason, metadata)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		pageID, psid, store.Millis(t.At), string(t.From), t.FromAppID, string(t.To), t.ToAppID, string(t.Cause), t.Actor, eventID, now,
		string(t.Reason), t.Metadata.JSON())
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
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT at, from_owner, from_app_id, to_owner, to_app_id, cause, actor, event_id, reason, metadata
		FROM thread_transitions WHERE page_id = $1 AND psid = $2 ORDER BY id`, pageID, psid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Transition
	for rows.Next() {
		var t Transition
		var at int64
		var from, to, cause, reason, md string
		var eventID sql.NullInt64
		if err := rows.Scan(&at, &from, &t.FromAppID, &to, &t.ToAppID, &cause, &t.Actor, &eventID, &reason, &md); err != nil {
			return nil, err
		}
		t.Reason, t.Metadata = Reason(reason), metadataFromJSON(md)
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

// threadKey names a thread.
type threadKey struct{ page, psid string }

// lockThreads returns the rows of threads keys (sorted by page, PSID),
// creating the new ones (idle), each locked for the rest of the
// transaction. Rows are upserted in key order, so on PostgreSQL every
// transaction takes thread locks in the same order and none can deadlock
// on another's.
//
// SQLite's single writer needs no row locks, so there the rows are only
// read, and a thread not stored yet is made in memory for writeThreads to
// insert: one write per thread and batch instead of two.
func lockThreads(ctx context.Context, tx *store.Tx, keys []threadKey, now time.Time) (map[threadKey]Thread, error) {
	if tx.Dialect.Name == "sqlite" {
		return readThreads(ctx, tx, keys, now)
	}
	out := make(map[threadKey]Thread, len(keys))
	err := store.Chunks(len(keys), func(from, to int) error {
		args := make([]any, 0, 5*(to-from))
		for _, k := range keys[from:to] {
			args = append(args, k.page, k.psid, string(OwnerIdle), store.Millis(now), store.Millis(now))
		}
		rows, err := tx.QueryBulk(ctx, `INSERT INTO threads (page_id, psid, owner, created_at, updated_at) VALUES `+
			tx.Values(to-from, store.Columns(5)...)+`
			ON CONFLICT (page_id, psid) DO UPDATE SET version = threads.version RETURNING `+threadColumns, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			th, err := scanThread(rows)
			if err != nil {
				return err
			}
			out[threadKey{th.PageID, th.PSID}] = th
		}
		return rows.Err()
	})
	return out, err
}

// readThreads returns the rows of threads keys, and for the threads not
// stored yet new idle ones, to be inserted by writeThreads (see
// lockThreads; SQLite only).
func readThreads(ctx context.Context, tx *store.Tx, keys []threadKey, now time.Time) (map[threadKey]Thread, error) {
	out := make(map[threadKey]Thread, len(keys))
	err := store.Chunks(len(keys), func(from, to int) error {
		args := make([]any, 0, 2*(to-from))
		for _, k := range keys[from:to] {
			args = append(args, k.page, k.psid)
		}
		// A join, not (page_id, psid) IN (VALUES …), which SQLite answers
		// with a scan of every thread.
		rows, err := tx.QueryBulk(ctx, `SELECT `+threadColumns+` FROM (VALUES `+tx.Values(to-from, store.Columns(2)...)+`) AS v
			JOIN threads ON threads.page_id = v.column1 AND threads.psid = v.column2`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			th, err := scanThread(rows)
			if err != nil {
				return err
			}
			out[threadKey{th.PageID, th.PSID}] = th
		}
		return rows.Err()
	})
	at := store.Time(store.Millis(now))
	for _, k := range keys {
		if _, ok := out[k]; !ok {
			out[k] = Thread{PageID: k.page, PSID: k.psid, Owner: OwnerIdle, Version: 1, CreatedAt: at, UpdatedAt: at}
		}
	}
	return out, err
}

// eventRow is a webhook event to store.
type eventRow struct {
	ev      *messenger.Event
	key     string
	outcome string
}

// insertEvents stores events and returns their ids by dedupe key. A key
// some other transaction stored meanwhile (possible only for events not
// under a thread lock) is left out of the result.
func insertEvents(ctx context.Context, tx *store.Tx, evs []eventRow, now int64) (map[string]int64, error) {
	ids := make(map[string]int64, len(evs))
	err := store.Chunks(len(evs), func(from, to int) error {
		args := make([]any, 0, 9*(to-from))
		for _, e := range evs[from:to] {
			ev := e.ev
			args = append(args, e.key, ev.PageID, ev.PSID, string(ev.Kind), string(ev.Channel), store.Millis(ev.Time), now, e.outcome, string(ev.Raw))
		}
		rows, err := tx.QueryBulk(ctx, `INSERT INTO webhook_events
			(dedupe_key, page_id, psid, kind, channel, occurred_at, received_at, outcome, payload) VALUES `+
			tx.Values(to-from, store.Columns(9)...)+` ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key, id`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			var id int64
			if err := rows.Scan(&k, &id); err != nil {
				return err
			}
			ids[k] = id
		}
		return rows.Err()
	})
	return ids, err
}

// setOutcomes corrects the outcome of stored events: pairs of event id
// and outcome.
func setOutcomes(ctx context.Context, tx *store.Tx, pairs []any) error {
	return store.Chunks(len(pairs)/2, func(from, to int) error {
		_, err := tx.ExecBulk(ctx, `UPDATE webhook_events SET outcome = v.column2
			FROM (VALUES `+tx.Values(to-from, "BIGINT", "")+`) AS v WHERE webhook_events.id = v.column1`, pairs[2*from:2*to]...)
		return err
	})
}

// writeThreads stores the threads' state in one statement per chunk.
func writeThreads(ctx context.Context, tx *store.Tx, ths []*Thread, now time.Time) error {
	if tx.Dialect.Name == "sqlite" {
		return upsertThreads(ctx, tx, ths, now)
	}
	casts := []string{"", "", "", "", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "", "BIGINT", "BIGINT", "BIGINT", "BIGINT"}
	return store.Chunks(len(ths), func(from, to int) error {
		args := make([]any, 0, len(casts)*(to-from))
		for _, th := range ths[from:to] {
			args = append(append(args, stateArgs(th)...), store.Millis(now))
		}
		if _, err := tx.ExecBulk(ctx, `UPDATE threads SET owner = v.column3, owner_app_id = v.column4, state_at = v.column5,
			activity_at = v.column6, expires_at = v.column7, last_customer_at = v.column8, pending_app_id = v.column9,
			pending_at = v.column10, delivered_watermark = v.column11, read_watermark = v.column12,
			version = threads.version + 1, updated_at = v.column13
			FROM (VALUES `+tx.Values(to-from, casts...)+`) AS v
			WHERE threads.page_id = v.column1 AND threads.psid = v.column2`, args...); err != nil {
			return err
		}
		for _, th := range ths[from:to] {
			th.Version++
			th.UpdatedAt = store.Time(store.Millis(now))
		}
		return nil
	})
}

// stateArgs are a thread's key and state, as threadColumns lists them up
// to read_watermark.
func stateArgs(th *Thread) []any {
	stateAt := int64(0)
	if !th.StateAt.IsZero() {
		stateAt = store.Millis(th.StateAt)
	}
	return []any{th.PageID, th.PSID, string(th.Owner), th.OwnerAppID, stateAt, store.NullMillis(th.ActivityAt),
		store.NullMillis(th.ExpiresAt), store.NullMillis(th.LastCustomerAt), th.PendingAppID, store.NullMillis(th.PendingAt),
		store.NullMillis(th.DeliveredWatermark), store.NullMillis(th.ReadWatermark)}
}

// upsertThreads is writeThreads on SQLite, where lockThreads only read the
// rows: it inserts the new threads and updates the others.
func upsertThreads(ctx context.Context, tx *store.Tx, ths []*Thread, now time.Time) error {
	return store.Chunks(len(ths), func(from, to int) error {
		args := make([]any, 0, 15*(to-from))
		for _, th := range ths[from:to] {
			args = append(append(args, stateArgs(th)...), th.Version+1, store.Millis(th.CreatedAt), store.Millis(now))
		}
		if _, err := tx.ExecBulk(ctx, `INSERT INTO threads (`+threadColumns+`) VALUES `+tx.Values(to-from, store.Columns(15)...)+`
			ON CONFLICT (page_id, psid) DO UPDATE SET owner = excluded.owner, owner_app_id = excluded.owner_app_id,
			state_at = excluded.state_at, activity_at = excluded.activity_at, expires_at = excluded.expires_at,
			last_customer_at = excluded.last_customer_at, pending_app_id = excluded.pending_app_id, pending_at = excluded.pending_at,
			delivered_watermark = excluded.delivered_watermark, read_watermark = excluded.read_watermark,
			version = excluded.version, updated_at = excluded.updated_at`, args...); err != nil {
			return err
		}
		for _, th := range ths[from:to] {
			th.Version++
			th.UpdatedAt = store.Time(store.Millis(now))
		}
		return nil
	})
}

// transitionRow is a transition to store.
type transitionRow struct {
	pageID, psid string
	Transition
}

// insertTransitions stores transitions, in order.
func insertTransitions(ctx context.Context, tx *store.Tx, trs []transitionRow, now int64) error {
	return store.Chunks(len(trs), func(from, to int) error {
		args := make([]any, 0, 13*(to-from))
		for _, t := range trs[from:to] {
			var eventID sql.NullInt64
			if t.EventID != 0 {
				eventID = sql.NullInt64{Int64: t.EventID, Valid: true}
			}
			args = append(args, t.pageID, t.psid, store.Millis(t.At), string(t.From), t.FromAppID, string(t.To), t.ToAppID,
				string(t.Cause), t.Actor, eventID, now, string(t.Reason), t.Metadata.JSON())
		}
		_, err := tx.ExecBulk(ctx, `INSERT INTO thread_transitions
			(page_id, psid, at, from_owner, from_app_id, to_owner, to_app_id, cause, actor, event_id, recorded_at, reason, metadata) VALUES `+
			tx.Values(to-from, store.Columns(13)...), args...)
		return err
	})
}
