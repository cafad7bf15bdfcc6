package handover

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store"
)

// Handoff is a bot's handover of one identity to the agents: passed at
// once (mode pass: handoverd acquires control), or offered (mode offer:
// the bot keeps the thread until an agent accepts, declines, or the offer
// expires after handover.offer_timeout). At most one offer is open per
// identity; a new one replaces it. The accept race is decided by a
// conditional UPDATE in the database, so across processes exactly one
// agent wins and makes the one Graph call.
type Handoff struct {
	// ID identifies the handoff.
	ID int64
	// PageID and PSID name the identity.
	PageID, PSID string
	// Mode is offer or pass.
	Mode string
	// Status is where it stands (see the Handoff statuses).
	Status string
	// Reason is why the bot handed over.
	Reason Reason
	// Metadata is the bot's flat JSON context.
	Metadata Metadata
	// CreatedBy is the API user who made it.
	CreatedBy string
	// CreatedAt is when.
	CreatedAt time.Time
	// ExpiresAt is an offer's deadline.
	ExpiresAt *time.Time
	// DecidedBy is the agent who accepted or declined ("handoverd" when
	// it expired or was replaced).
	DecidedBy string
	// DecidedAt is when.
	DecidedAt *time.Time
	// InterventionID is the accepting agent's intervention.
	InterventionID int64
	// Error says why control was not acquired (status failed).
	Error string
	// GraphCode is Graph's error code when Graph refused.
	GraphCode int
}

// Handoff modes.
const (
	ModeOffer = "offer"
	ModePass  = "pass"
)

// Handoff statuses.
const (
	HandoffOpen      = "open"      // an offer waiting for an agent
	HandoffAccepted  = "accepted"  // an agent accepted the offer
	HandoffDeclined  = "declined"  // an agent declined the offer
	HandoffExpired   = "expired"   // nobody accepted in time
	HandoffReplaced  = "replaced"  // a newer offer replaced it
	HandoffAcquiring = "acquiring" // control is being acquired
	HandoffPending   = "pending"   // control requested, the owner has not passed yet
	HandoffDone      = "done"      // the agents hold the thread
	HandoffFailed    = "failed"    // control could not be acquired
)

// HandoffInput is a bot's POST /1.0/handovers.
type HandoffInput struct {
	// PageID is the Page, when the caller's client has several.
	PageID string
	// PSID is identity_foreign_id.
	PSID string
	// To must be agent.
	To string
	// Mode is offer or pass (default pass).
	Mode string
	// Reason is a Reason (default bot_requested).
	Reason string
	// Metadata is a flat JSON object, at most 4 KB.
	Metadata []byte
}

const handoffColumns = `id, page_id, psid, mode, status, reason, metadata, created_by, created_at, expires_at,
	decided_by, decided_at, intervention_id, error, graph_code`

func scanHandoff(row rowScanner) (Handoff, error) {
	var h Handoff
	var reason, md string
	var created int64
	var expires, decided, iv sql.NullInt64
	err := row.Scan(&h.ID, &h.PageID, &h.PSID, &h.Mode, &h.Status, &reason, &md, &h.CreatedBy, &created, &expires,
		&h.DecidedBy, &decided, &iv, &h.Error, &h.GraphCode)
	h.Reason, h.Metadata, h.CreatedAt = Reason(reason), metadataFromJSON(md), store.Time(created)
	h.ExpiresAt, h.DecidedAt, h.InterventionID = store.TimePtr(expires), store.TimePtr(decided), iv.Int64
	return h, err
}

// parseHandoff validates a handoff request (not who may make it).
func parseHandoff(in HandoffInput) (mode string, why Why, err error) {
	switch {
	case in.PSID == "":
		return "", why, apperr.Field("identity_foreign_id", "is required")
	case in.To != "agent":
		return "", why, apperr.Field("to", "must be agent (handovers to the bot are passes: POST /1.0/bots/handover?from=agent&to=bot)")
	}
	mode = in.Mode
	switch mode {
	case "":
		mode = ModePass
	case ModePass, ModeOffer:
	default:
		return "", why, apperr.Field("mode", "must be offer or pass, got %q", in.Mode)
	}
	r, err := ParseReason("reason", in.Reason)
	if err != nil {
		return "", why, err
	}
	md, err := ParseMetadata("metadata", in.Metadata)
	if err != nil {
		return "", why, err
	}
	why = Why{Reason: r, Metadata: md, explicit: r != ""}
	if why.Reason == "" {
		why.Reason = ReasonBotRequested
	}
	return mode, why, nil
}

// CreateHandoff hands an identity to the agents for p: an offer (the
// answer's Outcome is empty) or a pass (control is acquired before the
// answer; a refusal is an error, and the bot also gets handover.failed).
func (s *Service) CreateHandoff(ctx context.Context, p auth.Principal, in HandoffInput) (Handoff, Outcome, error) {
	mode, why, err := parseHandoff(in)
	if err != nil {
		return Handoff{}, Outcome{}, err
	}
	page, err := s.PageFor(p, in.PageID)
	if err != nil {
		return Handoff{}, Outcome{}, err
	}
	if mode == ModeOffer {
		h, err := s.offer(ctx, page.ID, in.PSID, p.Name, why)
		return h, Outcome{}, err
	}
	return s.pass(ctx, page.ID, in.PSID, p.Name, why)
}

// offer opens an offer, replacing the identity's open one.
func (s *Service) offer(ctx context.Context, pageID, psid, by string, why Why) (Handoff, error) {
	var h Handoff
	replaced := 0
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		replaced = 0
		now := s.now()
		th, err := lockExistingThread(ctx, tx, pageID, psid)
		if err != nil {
			return err
		}
		if th.Owner == OwnerAgent {
			return apperr.New(apperr.Conflict, "the agents already hold this thread")
		}
		if iv, err := s.openIntervention(ctx, tx, pageID, psid); err != nil {
			return err
		} else if iv != nil {
			return apperr.New(apperr.Conflict, "intervention %d is open on this identity", iv.ID)
		}
		res, err := tx.ExecContext(ctx, `UPDATE handovers SET status = 'replaced', decided_by = 'handoverd', decided_at = $3
			WHERE page_id = $1 AND psid = $2 AND status = 'open'`, pageID, psid, store.Millis(now))
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		replaced = int(n)
		h, err = scanHandoff(tx.QueryRowContext(ctx, `INSERT INTO handovers (page_id, psid, mode, status, reason, metadata, created_by, created_at, expires_at)
			VALUES ($1, $2, 'offer', 'open', $3, $4, $5, $6, $7) RETURNING `+handoffColumns,
			pageID, psid, string(why.Reason), why.Metadata.JSON(), by, store.Millis(now), store.Millis(now.Add(s.offerTimeout()))))
		if err != nil {
			return err
		}
		if err := s.observe(ctx, tx, Change{Thread: th, Handoff: &h}); err != nil {
			return err
		}
		return s.botEvent(ctx, tx, h, EventOffered, nil, now)
	})
	if err != nil {
		return Handoff{}, err
	}
	s.metrics.HandoverOffers.WithLabelValues("offered").Inc()
	if replaced > 0 {
		s.metrics.HandoverOffers.WithLabelValues("replaced").Add(float64(replaced))
	}
	s.log.Info().Int64("handover", h.ID).Str("page_id", pageID).Str("psid", psid).Str("reason", string(why.Reason)).Msg("conversation offered to the agents")
	return h, nil
}

func (s *Service) offerTimeout() time.Duration {
	if s.hcfg.OfferTimeout > 0 {
		return s.hcfg.OfferTimeout
	}
	return 5 * time.Minute
}

// pass records a pass handoff and acquires control for the agents.
func (s *Service) pass(ctx context.Context, pageID, psid, by string, why Why) (Handoff, Outcome, error) {
	var h Handoff
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := lockExistingThread(ctx, tx, pageID, psid); err != nil {
			return err
		}
		var err error
		h, err = scanHandoff(tx.QueryRowContext(ctx, `INSERT INTO handovers (page_id, psid, mode, status, reason, metadata, created_by, created_at)
			VALUES ($1, $2, 'pass', 'acquiring', $3, $4, $5, $6) RETURNING `+handoffColumns,
			pageID, psid, string(why.Reason), why.Metadata.JSON(), by, store.Millis(s.now())))
		return err
	})
	if err != nil {
		return Handoff{}, Outcome{}, err
	}
	out, cerr := s.AcquireControl(withWhy(ctx, why), pageID, psid, by)
	h, err = s.settleHandoff(ctx, h.ID, HandoffAcquiring, out, cerr)
	if cerr != nil {
		return h, out, cerr
	}
	return h, out, err
}

// withWhy is WithReason for a Why already parsed.
func withWhy(ctx context.Context, why Why) context.Context {
	return context.WithValue(ctx, whyKey{}, why)
}

// settleHandoff records how acquiring control for handoff id went, if it
// is still in status from: done or pending, or failed (and the bot is told,
// with Graph's code).
func (s *Service) settleHandoff(ctx context.Context, id int64, from string, out Outcome, cerr error) (Handoff, error) {
	ctx = context.WithoutCancel(ctx)
	var h Handoff
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if h, err = scanHandoff(tx.QueryRowContext(ctx, `SELECT `+handoffColumns+` FROM handovers WHERE id = $1`, id)); err != nil {
			return err
		}
		th, err := lockExistingThread(ctx, tx, h.PageID, h.PSID)
		if err != nil {
			return err
		}
		if h, err = scanHandoff(tx.QueryRowContext(ctx, `SELECT `+handoffColumns+` FROM handovers WHERE id = $1`, id)); err != nil || h.Status != from {
			return err
		}
		now := s.now()
		status, msg, code := HandoffDone, "", 0
		switch {
		case cerr != nil:
			status, msg = HandoffFailed, apperr.As(cerr).Message
			var ge *messenger.GraphError
			if errors.As(cerr, &ge) {
				code = ge.Code
			}
		case th.Owner != OwnerAgent:
			status = HandoffPending
		}
		if from == HandoffAccepted && status != HandoffFailed {
			return nil // an accepted offer stays accepted
		}
		if h, err = scanHandoff(tx.QueryRowContext(ctx, `UPDATE handovers SET status = $2, error = $3, graph_code = $4
			WHERE id = $1 RETURNING `+handoffColumns, id, status, msg, code)); err != nil {
			return err
		}
		if status != HandoffFailed {
			return nil
		}
		if err := s.observe(ctx, tx, Change{Thread: th, Handoff: &h}); err != nil {
			return err
		}
		return s.botEvent(ctx, tx, h, EventFailed, map[string]any{"error": msg, "graph_code": code}, now)
	})
	return h, err
}

// Handoff returns one handoff, which must be on a Page of p's client.
func (s *Service) Handoff(ctx context.Context, p auth.Principal, id int64) (Handoff, error) {
	h, err := scanHandoff(s.db.Reader().QueryRowContext(ctx, `SELECT `+handoffColumns+` FROM handovers WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return h, apperr.New(apperr.NotFound, "handover %d does not exist", id)
	}
	if err != nil {
		return h, err
	}
	if page, ok := s.pages[h.PageID]; !ok || !p.CanActOnClient(page.ClientID) {
		return Handoff{}, apperr.New(apperr.NotFound, "handover %d does not exist", id)
	}
	return h, nil
}

// OpenOffer returns the identity's open offer, if any.
func (s *Service) OpenOffer(ctx context.Context, pageID, psid string) (*Handoff, error) {
	h, err := scanHandoff(s.db.Reader().QueryRowContext(ctx, `SELECT `+handoffColumns+` FROM handovers
		WHERE page_id = $1 AND psid = $2 AND status = 'open'`, pageID, psid))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return &h, err
}

// decide moves an open offer to status for agent under the thread's lock,
// as one conditional UPDATE: only one decision wins; a later one is a
// Conflict naming what happened first.
func (s *Service) decide(ctx context.Context, p auth.Principal, id int64, status string, ev string) (Handoff, Thread, error) {
	h, err := s.Handoff(ctx, p, id)
	if err != nil {
		return h, Thread{}, err
	}
	if h.Mode != ModeOffer {
		return h, Thread{}, apperr.New(apperr.Conflict, "handover %d is a pass, not an offer", id)
	}
	var th Thread
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		now := s.now()
		var err error
		if th, err = lockExistingThread(ctx, tx, h.PageID, h.PSID); err != nil {
			return err
		}
		row := tx.QueryRowContext(ctx, `UPDATE handovers SET status = $2, decided_by = $3, decided_at = $4
			WHERE id = $1 AND status = 'open' AND expires_at > $4 RETURNING `+handoffColumns, id, status, p.Name, store.Millis(now))
		got, err := scanHandoff(row)
		if errors.Is(err, sql.ErrNoRows) {
			cur, err := scanHandoff(tx.QueryRowContext(ctx, `SELECT `+handoffColumns+` FROM handovers WHERE id = $1`, id))
			if err != nil {
				return err
			}
			return offerClosed(cur, now)
		}
		if err != nil {
			return err
		}
		h = got
		if err := s.observe(ctx, tx, Change{Thread: th, Handoff: &h}); err != nil {
			return err
		}
		return s.botEvent(ctx, tx, h, ev, nil, now)
	})
	if err != nil {
		if apperr.As(err).Code == apperr.Conflict {
			s.metrics.HandoverOffers.WithLabelValues("conflict").Inc()
		}
		return h, th, err
	}
	s.metrics.HandoverOffers.WithLabelValues(status).Inc()
	return h, th, nil
}

// offerClosed is the Conflict for a decision on an offer no longer open.
func offerClosed(h Handoff, now time.Time) error {
	switch {
	case h.Status == HandoffOpen: // open, but past its deadline: the sweep has not run yet
		return apperr.New(apperr.Conflict, "handover %d expired at %s", h.ID, h.ExpiresAt.UTC().Format(time.RFC3339))
	case h.DecidedBy != "" && h.DecidedBy != "handoverd":
		return apperr.New(apperr.Conflict, "handover %d was already %s by %s", h.ID, h.Status, h.DecidedBy)
	}
	return apperr.New(apperr.Conflict, "handover %d is %s", h.ID, h.Status)
}

// AcceptOffer gives an open offer to agent p: the first accept wins (the
// others get a Conflict), then handoverd opens p's intervention and
// acquires control (take or request, by the Page's default app). A Graph
// refusal fails the handoff and tells the bot (handover.failed).
func (s *Service) AcceptOffer(ctx context.Context, p auth.Principal, id int64) (Handoff, Outcome, error) {
	h, _, err := s.decide(ctx, p, id, HandoffAccepted, EventAccepted)
	if err != nil {
		return h, Outcome{}, err
	}
	s.log.Info().Int64("handover", id).Str("page_id", h.PageID).Str("psid", h.PSID).Str("agent", p.Name).Msg("offer accepted")
	actx := withWhy(ctx, Why{Reason: ReasonAgentTookOver, Metadata: h.Metadata, explicit: true})
	var out Outcome
	var ivID int64
	open, err := s.openIntervention(ctx, s.db.Reader(), h.PageID, h.PSID)
	if err == nil && open != nil {
		ivID = open.ID
		out, err = s.AcquireControl(actx, h.PageID, h.PSID, p.Name)
	} else if err == nil {
		var iv Intervention
		iv, out, err = s.OpenIntervention(actx, h.PageID, h.PSID, p.Name)
		ivID = iv.ID
	}
	if ivID != 0 {
		if _, uerr := s.db.Writer().ExecContext(context.WithoutCancel(ctx), `UPDATE handovers SET intervention_id = $2 WHERE id = $1`, id, ivID); uerr != nil {
			return h, out, uerr
		}
	}
	settled, serr := s.settleHandoff(ctx, id, HandoffAccepted, out, err)
	if err != nil {
		return settled, out, err
	}
	return settled, out, serr
}

// takeOffer settles the identity's open offer, if any, when an agent takes
// the conversation over without accepting it: it is the agent's, accepted
// (the bot is told), so the queue no longer shows it offered.
func (s *Service) takeOffer(ctx context.Context, tx *store.Tx, th Thread, agent string, interventionID int64) (bool, error) {
	now := s.now()
	h, err := scanHandoff(tx.QueryRowContext(ctx, `UPDATE handovers SET status = 'accepted', decided_by = $3, decided_at = $4, intervention_id = $5
		WHERE page_id = $1 AND psid = $2 AND status = 'open' RETURNING `+handoffColumns, th.PageID, th.PSID, agent, store.Millis(now), interventionID))
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := s.observe(ctx, tx, Change{Thread: th, Handoff: &h}); err != nil {
		return false, err
	}
	return true, s.botEvent(ctx, tx, h, EventAccepted, nil, now)
}

// DeclineOffer closes an open offer for agent p: the bot keeps the thread
// and is told (handover.declined).
func (s *Service) DeclineOffer(ctx context.Context, p auth.Principal, id int64) (Handoff, error) {
	h, _, err := s.decide(ctx, p, id, HandoffDeclined, EventDeclined)
	return h, err
}

// ExpireOffers expires every open offer past its deadline and returns how
// many it expired; the bot is told (handover.expired). Safe in several
// processes at once: each is a conditional UPDATE under the thread's lock.
func (s *Service) ExpireOffers(ctx context.Context) (int, error) {
	n, err := s.eachHandoff(ctx, `SELECT id FROM handovers WHERE status = 'open' AND expires_at <= $1 ORDER BY expires_at LIMIT 200`,
		store.Millis(s.now()), func(tx *store.Tx, id int64, th Thread) (bool, error) {
			now := s.now()
			h, err := scanHandoff(tx.QueryRowContext(ctx, `UPDATE handovers SET status = 'expired', decided_by = 'handoverd', decided_at = $2
				WHERE id = $1 AND status = 'open' AND expires_at <= $2 RETURNING `+handoffColumns, id, store.Millis(now)))
			if errors.Is(err, sql.ErrNoRows) {
				return false, nil
			}
			if err != nil {
				return false, err
			}
			h.Reason = ReasonOfferExpired
			if err := s.observe(ctx, tx, Change{Thread: th, Handoff: &h}); err != nil {
				return false, err
			}
			return true, s.botEvent(ctx, tx, h, EventExpired, nil, now)
		})
	s.metrics.HandoverOffers.WithLabelValues("expired").Add(float64(n))
	return n, err
}

// FailOverdueHandoffs fails every handoff whose request for control was
// not granted within handover.control_timeout, telling the bot
// (handover.failed), and returns how many it failed.
func (s *Service) FailOverdueHandoffs(ctx context.Context) (int, error) {
	cutoff := store.Millis(s.now().Add(-s.hcfg.ControlTimeout))
	return s.eachHandoff(ctx, `SELECT id FROM handovers WHERE status = 'pending' AND created_at <= $1 ORDER BY id LIMIT 200`,
		cutoff, func(tx *store.Tx, id int64, th Thread) (bool, error) {
			status := HandoffFailed
			if th.Owner == OwnerAgent {
				status = HandoffDone
			}
			msg := ""
			if status == HandoffFailed {
				msg = fmt.Sprintf("thread control did not come within %s", s.hcfg.ControlTimeout)
			}
			h, err := scanHandoff(tx.QueryRowContext(ctx, `UPDATE handovers SET status = $2, error = $3
				WHERE id = $1 AND status = 'pending' RETURNING `+handoffColumns, id, status, msg))
			if errors.Is(err, sql.ErrNoRows) || (err == nil && status == HandoffDone) {
				return false, nil
			}
			if err != nil {
				return false, err
			}
			return true, s.botEvent(ctx, tx, h, EventFailed, map[string]any{"error": msg, "graph_code": 0}, s.now())
		})
}

// eachHandoff settles the handoffs a query (with one argument) finds, each
// in its own transaction under its thread's lock, so several processes may
// run it at once: settle reports whether it changed the handoff. It
// returns how many changed.
func (s *Service) eachHandoff(ctx context.Context, query string, arg any, settle func(tx *store.Tx, id int64, th Thread) (bool, error)) (int, error) {
	ids, err := store.IDs(ctx, s.db.Reader(), query, arg)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		changed := false
		err := s.db.InTx(ctx, func(tx *store.Tx) error {
			var pageID, psid string
			if err := tx.QueryRowContext(ctx, `SELECT page_id, psid FROM handovers WHERE id = $1`, id).Scan(&pageID, &psid); err != nil {
				return err
			}
			th, err := lockExistingThread(ctx, tx, pageID, psid)
			if err != nil {
				return err
			}
			changed, err = settle(tx, id, th)
			return err
		})
		if err != nil {
			return n, err
		}
		if changed {
			n++
		}
	}
	return n, nil
}

// transitionEvents follows a thread's owner changes, in their
// transaction: pending handoffs are done once the agents hold the thread,
// and a thread back with the bot from the agents tells the bot
// (handover.returned, with the reason).
func (s *Service) transitionEvents(ctx context.Context, tx *store.Tx, th Thread, trs []Transition, now time.Time) error {
	for _, t := range trs {
		switch {
		case t.To == OwnerAgent && (t.Cause == CausePass || t.Cause == CauseTake):
			// A request granted, or a take made (other ways in are
			// settled by FailOverdueHandoffs, which finds the thread ours).
			if _, err := tx.ExecContext(ctx, `UPDATE handovers SET status = 'done' WHERE page_id = $1 AND psid = $2 AND status = 'pending'`,
				th.PageID, th.PSID); err != nil {
				return err
			}
		case t.To == OwnerBot && t.From == OwnerAgent && s.pages[th.PageID].BotWebhook.URL != "":
			h := Handoff{PageID: th.PageID, PSID: th.PSID, Reason: t.Reason, Metadata: t.Metadata}
			if err := s.botEvent(ctx, tx, h, EventReturned, map[string]any{"cause": t.Cause, "actor": t.Actor, "at": t.At}, now); err != nil {
				return err
			}
		}
	}
	return nil
}
