package handover

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/store"
)

// Intervention is an agent's engagement with one identity. At most one is
// open per identity; while it is open the thread is not handed to the bot.
type Intervention struct {
	// ID identifies the intervention.
	ID int64
	// PageID and PSID name the identity.
	PageID, PSID string
	// Status is open, closing (the hand-back is decided and under way) or
	// closed.
	Status string
	// OpenedBy is the agent who opened it.
	OpenedBy string
	// OpenedAt is when.
	OpenedAt time.Time
	// LastActivityAt is the agent's newest activity in it.
	LastActivityAt time.Time
	// ClosedBy is who closed it ("" while open; "handoverd" when idle).
	ClosedBy string
	// ClosedAt is when it closed (while closing: when the close began).
	ClosedAt *time.Time
	// CloseReason is agent or idle.
	CloseReason string
}

// Intervention statuses and close reasons.
const (
	InterventionOpen    = "open"
	InterventionClosing = "closing"
	InterventionClosed  = "closed"
	CloseByAgent        = "agent"
	CloseIdle           = "idle"
)

const interventionColumns = `id, page_id, psid, status, opened_by, opened_at, last_activity_at, closed_by, closed_at, close_reason`

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func scanIntervention(row rowScanner) (Intervention, error) {
	var iv Intervention
	var opened, activity int64
	var closed sql.NullInt64
	err := row.Scan(&iv.ID, &iv.PageID, &iv.PSID, &iv.Status, &iv.OpenedBy, &opened, &activity, &iv.ClosedBy, &closed, &iv.CloseReason)
	iv.OpenedAt, iv.LastActivityAt, iv.ClosedAt = store.Time(opened), store.Time(activity), store.TimePtr(closed)
	return iv, err
}

// openIntervention returns the identity's open (or closing) intervention, or nil.
func (s *Service) openIntervention(ctx context.Context, q querier, pageID, psid string) (*Intervention, error) {
	iv, err := scanIntervention(q.QueryRowContext(ctx, `SELECT `+interventionColumns+` FROM interventions
		WHERE page_id = $1 AND psid = $2 AND status IN ('open', 'closing')`, pageID, psid))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &iv, nil
}

// OpenIntervention opens an intervention for an agent and acquires thread
// control for the agents. Only one may be open per identity.
func (s *Service) OpenIntervention(ctx context.Context, pageID, psid, agent string) (Intervention, Outcome, error) {
	if _, ok := s.pages[pageID]; !ok {
		return Intervention{}, Outcome{}, apperr.Field("page_id", "page %s is not configured", pageID)
	}
	open, err := s.openIntervention(ctx, s.db.Reader(), pageID, psid)
	if err != nil {
		return Intervention{}, Outcome{}, err
	}
	if open != nil {
		return Intervention{}, Outcome{}, apperr.New(apperr.Conflict, "intervention %d is already %s on this identity", open.ID, open.Status)
	}
	out, err := s.AcquireControl(ctx, pageID, psid, agent)
	if err != nil {
		return Intervention{}, Outcome{}, err
	}
	now := store.Millis(s.now())
	var iv Intervention
	took := false
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		th, err := lockExistingThread(ctx, tx, pageID, psid)
		if err != nil {
			return err
		}
		iv, err = scanIntervention(tx.QueryRowContext(ctx, `INSERT INTO interventions (page_id, psid, status, opened_by, opened_at, last_activity_at)
			VALUES ($1, $2, 'open', $3, $4, $4) RETURNING `+interventionColumns, pageID, psid, agent, now))
		if err != nil {
			return err
		}
		took, err = s.takeOffer(ctx, tx, th, agent, iv.ID)
		return err
	})
	if store.IsUniqueViolation(err) {
		return Intervention{}, Outcome{}, apperr.New(apperr.Conflict, "an intervention is already open on this identity")
	}
	if err == nil && took {
		s.metrics.HandoverOffers.WithLabelValues("accepted").Inc()
	}
	return iv, out, err
}

// CloseIntervention gives the thread back (release, or pass to a default
// bot) and closes the intervention. Closing a closed one returns it as is.
//
// The decision comes first: under the thread's lock the intervention turns
// closing, and from then on it takes no agent message and asks Facebook
// for no control (a message sent between the give-back and the recorded
// close would otherwise ask for the thread back). Should the give-back
// fail, the intervention is open again, as it was; should the process die
// meanwhile, the idle sweep finishes the close.
func (s *Service) CloseIntervention(ctx context.Context, id int64, by, reason string) (Intervention, error) {
	iv, err := s.Intervention(ctx, id)
	if err != nil || iv.Status == InterventionClosed {
		return iv, err
	}
	if reason == CloseIdle {
		ctx = withWhy(ctx, whyFrom(ctx, ReasonIdleTimeout))
	}
	began := false
	if err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := lockExistingThread(ctx, tx, iv.PageID, iv.PSID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE interventions SET status = 'closing', closed_by = $2, closed_at = $3, close_reason = $4
			WHERE id = $1 AND status = 'open'`, id, by, store.Millis(s.now()), reason)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		began = n == 1
		return err
	}); err != nil {
		return iv, err
	}
	if _, err := s.GiveBack(ctx, iv.PageID, iv.PSID, by); err != nil {
		if began {
			// Nothing was given back: the agents keep the intervention.
			if rerr := s.db.InTx(context.WithoutCancel(ctx), func(tx *store.Tx) error {
				_, err := tx.ExecContext(ctx, `UPDATE interventions SET status = 'open', closed_by = '', closed_at = NULL, close_reason = ''
					WHERE id = $1 AND status = 'closing'`, id)
				return err
			}); rerr != nil {
				return iv, errors.Join(err, rerr)
			}
		}
		return iv, err
	}
	// A request for control still pending is withdrawn on our side (Meta has
	// no call for that): should the bot pass anyway, the conversation shows
	// up in the agents' queue rather than being taken for a live handover.
	if err := s.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE threads SET pending_app_id = '', pending_at = NULL
			WHERE page_id = $1 AND psid = $2 AND pending_app_id = $3 AND owner <> 'agent'`, iv.PageID, iv.PSID, s.appID)
		return err
	}); err != nil {
		return iv, err
	}
	closed := false
	var cancelled []int64
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		closed, cancelled = false, nil
		// Under the thread's lock (as senders claim): whatever is still
		// queued for the identity is settled with the close.
		if _, err := lockExistingThread(ctx, tx, iv.PageID, iv.PSID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE interventions SET status = 'closed' WHERE id = $1 AND status = 'closing'`, id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if closed = n == 1; err != nil || !closed {
			return err
		}
		cancelled, err = s.cancelQueued(ctx, tx, iv.PageID, iv.PSID, cancelClosed)
		return err
	})
	if err != nil {
		return iv, err
	}
	for _, id := range cancelled {
		s.failed(id, cancelClosed)
	}
	if closed {
		s.metrics.InterventionsClosed.WithLabelValues(reason).Inc()
		s.log.Info().Int64("intervention", id).Str("page_id", iv.PageID).Str("psid", iv.PSID).Str("reason", reason).Msg("intervention closed")
	}
	return s.Intervention(ctx, id)
}

// Intervention returns one intervention.
func (s *Service) Intervention(ctx context.Context, id int64) (Intervention, error) {
	iv, err := scanIntervention(s.db.Reader().QueryRowContext(ctx, `SELECT `+interventionColumns+` FROM interventions WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return iv, apperr.New(apperr.NotFound, "intervention %d does not exist", id)
	}
	return iv, err
}

// Interventions lists an identity's interventions, newest first.
func (s *Service) Interventions(ctx context.Context, pageID, psid string) ([]Intervention, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT `+interventionColumns+` FROM interventions
		WHERE page_id = $1 AND psid = $2 ORDER BY id DESC LIMIT 100`, pageID, psid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Intervention{}
	for rows.Next() {
		iv, err := scanIntervention(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, iv)
	}
	return out, rows.Err()
}

// touchIntervention records agent activity on the identity's open intervention.
func touchIntervention(ctx context.Context, tx *store.Tx, pageID, psid string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE interventions SET last_activity_at = $3 WHERE page_id = $1 AND psid = $2 AND status = 'open'`,
		pageID, psid, store.Millis(now))
	return err
}

// CloseIdleInterventions closes every open intervention without agent
// activity for the configured time, and finishes every close a process
// left half done (closing for longer than a hand-back can take), and
// returns how many it closed.
func (s *Service) CloseIdleInterventions(ctx context.Context) (int, error) {
	now := s.now()
	stuck, err := store.IDs(ctx, s.db.Reader(), `SELECT id FROM interventions WHERE status = 'closing' AND closed_at <= $1 ORDER BY id LIMIT 200`,
		store.Millis(now.Add(-staleOpAfter)))
	if err != nil {
		return 0, err
	}
	var ids []int64
	if s.hcfg.InterventionIdle > 0 {
		cutoff := store.Millis(now.Add(-s.hcfg.InterventionIdle))
		if ids, err = store.IDs(ctx, s.db.Reader(), `SELECT id FROM interventions WHERE status = 'open' AND last_activity_at <= $1 ORDER BY id LIMIT 200`, cutoff); err != nil {
			return 0, err
		}
	}
	n := 0
	var errs []error
	for _, id := range append(stuck, ids...) {
		iv, err := s.Intervention(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		by, reason := "handoverd", CloseIdle
		if iv.Status == InterventionClosing { // finish it as it was begun
			by, reason = iv.ClosedBy, iv.CloseReason
		}
		if _, err := s.CloseIntervention(ctx, id, by, reason); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
