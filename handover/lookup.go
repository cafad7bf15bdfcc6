package handover

import (
	"context"
	"fmt"

	"github.com/handoverd/handoverd/store"
)

// lookupBatch bounds the unnamed takes looked up per pass.
const lookupBatch = 20

// LookupTakers asks Graph's thread_owner, once per take_thread_control
// event that named no taker on a Page whose default app is not known, who
// owns the thread now, and records the answer (a thread_owner transition
// when it differs). Only threads still owned by that unnamed "other" are
// asked. It runs outside any transaction (Graph calls never hold a
// database lock) and is safe in several processes at once: each lookup is
// claimed by inserting its row first. It returns how many it asked.
func (s *Service) LookupTakers(ctx context.Context) (int, error) {
	if s.graph == nil {
		return 0, nil
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT t.id, t.page_id, t.psid FROM thread_transitions t
		JOIN threads th ON th.page_id = t.page_id AND th.psid = t.psid
		WHERE t.cause = 'take_thread_control' AND t.to_owner = 'other' AND t.to_app_id = ''
		  AND th.owner = 'other' AND th.owner_app_id = ''
		  AND NOT EXISTS (SELECT 1 FROM owner_lookups l WHERE l.transition_id = t.id)
		ORDER BY t.id LIMIT $1`, lookupBatch)
	if err != nil {
		return 0, err
	}
	type lookup struct {
		id           int64
		pageID, psid string
	}
	var todo []lookup
	for rows.Next() {
		var l lookup
		if err := rows.Scan(&l.id, &l.pageID, &l.psid); err != nil {
			rows.Close()
			return 0, err
		}
		todo = append(todo, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	asked := 0
	for _, l := range todo {
		if _, ok := s.pages[l.pageID]; !ok {
			continue
		}
		var claimed int64
		err := s.db.InTx(ctx, func(tx *store.Tx) error {
			res, err := tx.ExecContext(ctx, `INSERT INTO owner_lookups (transition_id, page_id, psid, asked_at)
				VALUES ($1, $2, $3, $4) ON CONFLICT (transition_id) DO NOTHING`, l.id, l.pageID, l.psid, store.Millis(s.now()))
			if err == nil {
				claimed, err = res.RowsAffected()
			}
			return err
		})
		if err != nil {
			return asked, err
		}
		if claimed == 0 {
			continue // another process asks
		}
		asked++
		answer := ""
		owner, err := s.Reconcile(ctx, l.pageID, l.psid)
		if err != nil {
			answer = "error: " + err.Error()
			s.log.Warn().Err(err).Str("page_id", l.pageID).Str("psid", l.psid).Msg("thread_owner lookup after an unnamed take failed")
		} else {
			answer = string(owner)
		}
		if err := s.db.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE owner_lookups SET answer = $2, answered_at = $3 WHERE transition_id = $1`,
				l.id, answer, store.Millis(s.now()))
			return err
		}); err != nil {
			return asked, fmt.Errorf("handover: record thread_owner answer: %w", err)
		}
	}
	return asked, nil
}
