package handover

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store"
)

// How webhook evidence becomes thread state.
//
//   - The events of the webhooks committed together (see commit.go) are
//     grouped per thread and applied in one transaction that locks each
//     thread's row (an upsert, which locks on PostgreSQL; the single writer
//     on SQLite), threads in (page, PSID) order. Within a thread events are
//     applied in timestamp order.
//   - Every event has a dedupe key (messages and echoes by mid, handover
//     events by page, PSID, kind, timestamp and new owner, the rest by their
//     fields). An event already stored is a duplicate and changes nothing.
//     Because the key is stored in the same transaction as the state it
//     produced, a crash before commit loses nothing that was acknowledged and
//     a redelivery after commit applies nothing twice.
//   - Ownership evidence: pass/take name the new owner (a take that does
//     not is the Page's default app's, or, when that is not known, asked of
//     thread_owner after the commit); a customer message
//     on messaging means we own the thread (unless the Page is zero-config,
//     where every app gets messaging); on standby it means another app does
//     (the current non-agent owner, else the Page's default app, else
//     "other"); an echo means its sending app owned the thread (except the
//     default app sending while idle, which Conversation Routing allows).
//   - Evidence older than the thread's StateAt is stale: it is stored and
//     counted but never rolls the owner back past newer evidence.
//   - An owned thread without activity for IdleAfter is idle from
//     ExpiresAt on, whether the sweeper or a newer event notices first.

// applyPageEvents stores Page-level events (app_roles).
func (s *Service) applyPageEvents(ctx context.Context, tx *store.Tx, pageID string, evs []messenger.Event, c *committed) error {
	now := store.Millis(s.now())
	for _, ev := range evs {
		dup, err := isDuplicate(ctx, tx, ev)
		if err != nil {
			return err
		}
		if dup {
			c.events = append(c.events, eventResult{string(ev.Kind), "duplicate"})
			continue
		}
		outcome := "ignored"
		if ev.Kind == messenger.KindAppRoles {
			roles, err := json.Marshal(ev.AppRoles)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO page_app_roles (page_id, app_roles, event_at, updated_at)
				VALUES ($1, $2, $3, $4)
				ON CONFLICT (page_id) DO UPDATE SET app_roles = excluded.app_roles, event_at = excluded.event_at, updated_at = excluded.updated_at
				WHERE page_app_roles.event_at <= excluded.event_at`,
				pageID, string(roles), store.Millis(ev.Time), now); err != nil {
				return err
			}
			outcome = "applied"
			if page, ok := s.pages[pageID]; ok {
				m, err := s.routing(ctx, tx, pageID)
				if err != nil {
					return err
				}
				c.pageModes = append(c.pageModes, pageModeNote{pageID, m.Mode, s.disagreement(page, m)})
			}
		}
		if _, _, err := insertEvent(ctx, tx, ev, outcome, now); err != nil {
			return err
		}
		c.events = append(c.events, eventResult{string(ev.Kind), outcome})
	}
	return nil
}

// applyThreads applies the events of many threads: it locks every thread
// (in key order), stores the events, leaving out the ones already stored
// (redeliveries), folds the new ones into the threads in the order given
// (event time per thread), stores threads and transitions, all in a few
// multi-row statements, and then hands the changes to the observers in
// order: per thread each event, then its owner changes.
func (s *Service) applyThreads(ctx context.Context, tx *store.Tx, keys []threadKey, groups map[threadKey][]messenger.Event, c *committed) error {
	nowT := s.now()
	threads, err := lockThreads(ctx, tx, keys, nowT)
	if err != nil {
		return err
	}
	// Store the events first, each key once: the ones the database
	// already held (redeliveries) come back without an id and are left
	// out. Events are stored as applied; the few that turn out otherwise
	// (stale) are corrected after.
	rows, dedupe := eventRows(keys, groups)
	ids, err := insertEvents(ctx, tx, rows, store.Millis(nowT))
	if err != nil {
		return err
	}
	work, outcomes := s.fold(keys, groups, threads, dedupe, ids, c)
	if len(work) == 0 {
		return nil
	}
	if err := setOutcomes(ctx, tx, outcomes); err != nil {
		return err
	}
	if err := s.writeWork(ctx, tx, work, threads, nowT); err != nil {
		return err
	}
	return s.handOn(ctx, tx, work, nowT, c)
}

// threadWork is what one batch does to one thread: its new state, the
// changes to hand on, and the transitions each applied event caused.
type threadWork struct {
	th      Thread
	changes []Change
	trs     []Transition
	events  []int64 // ids of the events applied, in order
	trFrom  []int   // for each of events, the index in trs of its first transition
}

// eventRows lists the batch's events to store, each dedupe key once, and
// every event's key in the order keys and groups give them.
func eventRows(keys []threadKey, groups map[threadKey][]messenger.Event) (rows []eventRow, dedupe []string) {
	seen := map[string]bool{}
	for _, k := range keys {
		for j := range groups[k] {
			ev := &groups[k][j]
			key := dedupeKey(*ev)
			dedupe = append(dedupe, key)
			if seen[key] { // a second copy in this batch
				continue
			}
			seen[key] = true
			rows = append(rows, eventRow{ev: ev, key: key, outcome: "applied"})
		}
	}
	return rows, dedupe
}

// fold applies the stored events (ids, by dedupe key) to their threads,
// in order; the rest are duplicates. It returns the threads that changed
// and, as id, outcome pairs, the events that were not applied as stored.
func (s *Service) fold(keys []threadKey, groups map[threadKey][]messenger.Event, threads map[threadKey]Thread,
	dedupe []string, ids map[string]int64, c *committed) (work []*threadWork, outcomes []any) {
	for _, k := range keys {
		w := &threadWork{th: threads[k]}
		page := s.pages[k.page]
		for j := range groups[k] {
			ev := &groups[k][j]
			key := dedupe[0]
			dedupe = dedupe[1:]
			id, ok := ids[key]
			if !ok {
				c.events = append(c.events, eventResult{string(ev.Kind), "duplicate"})
				continue
			}
			delete(ids, key) // a second copy in this batch is a duplicate too
			n := len(w.trs)
			out := s.apply(&w.th, page, *ev, &w.trs)
			if out != "applied" {
				outcomes = append(outcomes, id, out)
			}
			w.events, w.trFrom = append(w.events, id), append(w.trFrom, n)
			w.changes = append(w.changes, Change{Thread: w.th, Event: ev, Outcome: out})
			c.events = append(c.events, eventResult{string(ev.Kind), out})
		}
		if len(w.events) > 0 {
			work = append(work, w)
		}
	}
	return work, outcomes
}

// writeWork stores the threads the batch changed and their transitions,
// each transition naming the event that caused it (none for an expiry).
func (s *Service) writeWork(ctx context.Context, tx *store.Tx, work []*threadWork, before map[threadKey]Thread, now time.Time) error {
	var (
		ths []*Thread
		trs []transitionRow
	)
	for _, w := range work {
		for e, id := range w.events {
			end := len(w.trs)
			if e+1 < len(w.trFrom) {
				end = w.trFrom[e+1]
			}
			for t := w.trFrom[e]; t < end; t++ {
				if w.trs[t].Cause != CauseExpired {
					w.trs[t].EventID = id
				}
			}
		}
		if err := s.grantedReason(ctx, tx, before[threadKey{w.th.PageID, w.th.PSID}], w.trs); err != nil {
			return err
		}
		ths = append(ths, &w.th)
		for _, t := range w.trs {
			trs = append(trs, transitionRow{w.th.PageID, w.th.PSID, t})
		}
	}
	if err := writeThreads(ctx, tx, ths, now); err != nil {
		return err
	}
	return insertTransitions(ctx, tx, trs, store.Millis(now))
}

// handOn hands the batch's changes to the consumers, in order (per thread
// each event, then its owner changes), queues the bot events the
// transitions cause, and settles the agent messages whose echoes came.
func (s *Service) handOn(ctx context.Context, tx *store.Tx, work []*threadWork, now time.Time, c *committed) error {
	var changes []Change
	for _, w := range work {
		changes = append(changes, w.changes...)
		if len(w.trs) > 0 {
			changes = append(changes, Change{Thread: w.th, Transitions: w.trs})
			if err := s.transitionEvents(ctx, tx, w.th, w.trs, now); err != nil {
				return err
			}
		}
		s.noteCommitted(&w.th, w.trs, c)
	}
	if err := s.observeAll(ctx, tx, changes); err != nil {
		return err
	}
	for _, ch := range changes {
		if ch.Event == nil {
			continue
		}
		sent, err := s.settleEchoed(ctx, tx, *ch.Event)
		if err != nil {
			return err
		}
		if sent {
			c.echoSent++
		}
	}
	return nil
}

// saveTransitions stores a thread's new transitions (outside webhook
// ingest) and notes what the commit must report.
func (s *Service) saveTransitions(ctx context.Context, tx *store.Tx, th *Thread, trs []Transition, now int64, c *committed) error {
	if len(trs) > 0 {
		if err := s.observe(ctx, tx, Change{Thread: *th, Transitions: trs}); err != nil {
			return err
		}
		if err := s.transitionEvents(ctx, tx, *th, trs, store.Time(now)); err != nil {
			return err
		}
	}
	for _, t := range trs {
		if err := insertTransition(ctx, tx, th.PageID, th.PSID, t, now); err != nil {
			return err
		}
	}
	s.noteCommitted(th, trs, c)
	return nil
}

// noteCommitted notes what a thread's commit must report: its
// transitions, and how long a request for control waited.
func (s *Service) noteCommitted(th *Thread, trs []Transition, c *committed) {
	for _, t := range trs {
		c.transitions = append(c.transitions, threadTransition{th.PageID, th.PSID, t})
		if t.To == OwnerAgent {
			c.ownedByUs = true
		}
	}
	if th.granted > 0 {
		c.waits = append(c.waits, th.granted)
		th.granted = 0
	}
}

// apply folds one event into th, appending any owner changes to trs, and
// returns the event's outcome: applied or stale.
func (s *Service) apply(th *Thread, page config.Page, ev messenger.Event, trs *[]Transition) string {
	ts := ev.Time
	customer := ev.Kind == messenger.KindMessage || ev.Kind == messenger.KindPostback || ev.Kind == messenger.KindReferral
	switch ev.Kind {
	case messenger.KindDelivery:
		th.DeliveredWatermark = maxTime(th.DeliveredWatermark, ev.Watermark)
		return "applied"
	case messenger.KindRead:
		th.ReadWatermark = maxTime(th.ReadWatermark, ev.Watermark)
		return "applied"
	case messenger.KindRequest:
		app := ev.Handover.RequestedOwnerAppID
		if app != "" && app != th.OwnerAppID && (th.PendingAt == nil || !ts.Before(*th.PendingAt)) {
			th.PendingAppID, th.PendingAt = app, &ts
		}
		return "applied"
	}
	if customer {
		th.LastCustomerAt = maxTime(th.LastCustomerAt, ts)
	}
	// A thread whose expiry has passed by this event's time went idle then.
	if th.Owner != OwnerIdle && th.ExpiresAt != nil && !ts.Before(*th.ExpiresAt) && !th.ExpiresAt.Before(th.StateAt) {
		s.transition(th, OwnerIdle, "", *th.ExpiresAt, CauseExpired, "", trs)
	}
	// Customer messages and control changes are activity, whatever order
	// they arrive in (so the expiry does not depend on delivery order).
	active := customer || ev.Kind == messenger.KindPass || ev.Kind == messenger.KindTake
	if ts.Before(th.StateAt) {
		if active {
			th.ActivityAt = maxTime(th.ActivityAt, ts)
			s.refreshExpiry(th)
		}
		return "stale"
	}
	owner, appID, cause, ok := s.evidence(th, page, ev)
	if ok {
		if owner != th.Owner || appID != th.OwnerAppID {
			s.transition(th, owner, appID, ts, cause, "", trs)
		}
		th.StateAt = ts
	}
	if active {
		th.ActivityAt = maxTime(th.ActivityAt, ts)
	}
	s.refreshExpiry(th)
	return "applied"
}

// evidence returns the ownership evidence an event carries, if any.
func (s *Service) evidence(th *Thread, page config.Page, ev messenger.Event) (Owner, string, Cause, bool) {
	zeroConfig := page.DefaultApp == config.DefaultAppNone
	switch ev.Kind {
	case messenger.KindPass:
		app := ev.Handover.NewOwnerAppID
		if app == "" {
			// Older payloads omit new_owner_app_id; pass events go to the
			// app receiving control, which on messaging is us.
			if ev.Channel != messenger.ChannelMessaging {
				return "", "", "", false
			}
			app = s.appID
		}
		return ownerOf(app, s.appID, page), app, CausePass, true
	case messenger.KindTake:
		app := ev.Handover.NewOwnerAppID
		if app == "" {
			// Older payloads omit new_owner_app_id. Only the Page's
			// primary/default app may take, so it is the taker; when that
			// is not known (or is us), the owner stays "other" until
			// thread_owner answers (LookupTakers, after the commit).
			if d := page.DefaultAppID(s.appID); d != "" && d != s.appID {
				return ownerOf(d, s.appID, page), d, CauseTake, true
			}
			return OwnerOther, "", CauseTake, true
		}
		return ownerOf(app, s.appID, page), app, CauseTake, true
	case messenger.KindMessage, messenger.KindPostback, messenger.KindReferral:
		if zeroConfig {
			return "", "", "", false
		}
		if ev.Channel == messenger.ChannelMessaging {
			return OwnerAgent, s.appID, CauseCustomerMessage, true
		}
		if th.Owner != OwnerAgent && th.Owner != OwnerIdle {
			return th.Owner, th.OwnerAppID, CauseCustomerMessage, true
		}
		if d := page.DefaultAppID(s.appID); d != "" && d != s.appID {
			return ownerOf(d, s.appID, page), d, CauseCustomerMessage, true
		}
		return OwnerOther, "", CauseCustomerMessage, true
	case messenger.KindEcho:
		if zeroConfig {
			return "", "", "", false
		}
		app := ev.Message.AppID
		if app == "" {
			app = config.PageInboxAppID // sent by a person from the Page itself
		}
		if th.Owner == OwnerIdle && app == page.DefaultAppID(s.appID) {
			return "", "", "", false
		}
		return ownerOf(app, s.appID, page), app, CauseEcho, true
	}
	return "", "", "", false
}

// transition moves th to a new owner at time at.
func (s *Service) transition(th *Thread, to Owner, toApp string, at time.Time, cause Cause, actor string, trs *[]Transition) {
	*trs = append(*trs, Transition{At: at, From: th.Owner, FromAppID: th.OwnerAppID, To: to, ToAppID: toApp, Cause: cause, Actor: actor,
		Reason: defaultReason(cause)})
	if to == OwnerAgent && th.PendingAppID == s.appID && th.PendingAt != nil {
		th.granted = at.Sub(*th.PendingAt)
	}
	th.Owner, th.OwnerAppID = to, toApp
	th.PendingAppID, th.PendingAt = "", nil
	if at.After(th.StateAt) {
		th.StateAt = at
	}
	if to != OwnerIdle {
		th.ActivityAt = maxTime(th.ActivityAt, at)
	}
}

// grantedReason gives a pass that grants handoverd's pending request for
// control the reason and metadata the request was made with (rather than
// meta_event): the history then says why the agents got the thread.
//
// The pass may arrive before the request's own answer has been recorded,
// so a request still in flight counts too, within handover.control_timeout.
func (s *Service) grantedReason(ctx context.Context, tx *store.Tx, before Thread, trs []Transition) error {
	for i := range trs {
		if trs[i].To != OwnerAgent || trs[i].Cause != CausePass {
			continue
		}
		var reason, md string
		err := tx.QueryRowContext(ctx, `SELECT reason, metadata FROM control_ops WHERE page_id = $1 AND psid = $2 AND op = $3
			AND status IN ('succeeded', 'in_flight') AND created_at >= $4 ORDER BY id DESC LIMIT 1`,
			before.PageID, before.PSID, opRequest, store.Millis(trs[i].At.Add(-s.hcfg.ControlTimeout))).Scan(&reason, &md)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && reason == "") {
			return nil
		}
		if err != nil {
			return err
		}
		trs[i].Reason, trs[i].Metadata = Reason(reason), metadataFromJSON(md)
		return nil
	}
	return nil
}

// defaultReason is the reason of an owner change nobody gave one for:
// Meta's evidence, the idle timeout, or a correction from thread_owner.
func defaultReason(cause Cause) Reason {
	switch cause {
	case CauseExpired:
		return ReasonIdleTimeout
	case CauseThreadOwner, CauseReconciled:
		return ReasonReconciled
	}
	return ReasonMetaEvent
}

func (s *Service) refreshExpiry(th *Thread) {
	if th.Owner == OwnerIdle || th.ActivityAt == nil {
		th.ExpiresAt = nil
		return
	}
	e := th.ActivityAt.Add(s.idleAfter)
	th.ExpiresAt = &e
}

// DedupeKey is the key an event is stored under (webhook_events.dedupe_key),
// the same across Meta's redeliveries: for audits that check each event
// was stored once.
func DedupeKey(ev messenger.Event) string { return dedupeKey(ev) }

// dedupeKey identifies an event across Meta's redeliveries.
func dedupeKey(ev messenger.Event) string {
	switch {
	case ev.Message != nil && ev.Message.MID != "":
		return "mid:" + ev.Message.MID
	case ev.Postback != nil && ev.Postback.MID != "":
		return "mid:" + ev.Postback.MID
	}
	var parts []string
	switch ev.Kind {
	case messenger.KindPass, messenger.KindTake:
		parts = []string{ev.Handover.NewOwnerAppID, ev.Handover.PreviousOwnerAppID}
	case messenger.KindRequest:
		parts = []string{ev.Handover.RequestedOwnerAppID}
	case messenger.KindDelivery:
		parts = append([]string{strconv.FormatInt(ev.Watermark.UnixMilli(), 10)}, ev.MIDs...)
	case messenger.KindRead:
		parts = []string{strconv.FormatInt(ev.Watermark.UnixMilli(), 10)}
	default:
		parts = []string{string(ev.Raw)}
	}
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return fmt.Sprintf("%s:%s:%s:%d:%s", ev.Kind, ev.PageID, ev.PSID, ev.Time.UnixMilli(), hex.EncodeToString(h[:12]))
}

func isDuplicate(ctx context.Context, tx *store.Tx, ev messenger.Event) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM webhook_events WHERE dedupe_key = $1`, dedupeKey(ev)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// insertEvent stores an applied event under its dedupe key and returns
// its id, or dup when the key is already stored (a redelivery).
func insertEvent(ctx context.Context, tx *store.Tx, ev messenger.Event, outcome string, now int64) (id int64, dup bool, err error) {
	err = tx.QueryRowContext(ctx, `INSERT INTO webhook_events
		(dedupe_key, page_id, psid, kind, channel, occurred_at, received_at, outcome, payload)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id`,
		dedupeKey(ev), ev.PageID, ev.PSID, string(ev.Kind), string(ev.Channel), store.Millis(ev.Time), now, outcome, string(ev.Raw),
	).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, true, nil
	}
	return id, false, err
}
