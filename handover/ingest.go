package handover

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store"
)

// How webhook evidence becomes thread state.
//
//   - A webhook's events are grouped per thread and applied in one
//     transaction that locks each thread's row (SELECT … FOR UPDATE on
//     PostgreSQL, the single writer on SQLite), threads in (page, PSID)
//     order. Within a thread events are applied in timestamp order.
//   - Every event has a dedupe key (messages and echoes by mid, handover
//     events by page, PSID, kind, timestamp and new owner, the rest by their
//     fields). An event already stored is a duplicate and changes nothing.
//     Because the key is stored in the same transaction as the state it
//     produced, a crash before commit loses nothing that was acknowledged and
//     a redelivery after commit applies nothing twice.
//   - Ownership evidence: pass/take name the new owner; a customer message
//     on messaging means we own the thread (unless the Page is zero-config,
//     where every app gets messaging); on standby it means another app does
//     (the current non-agent owner, else the Page's default app, else
//     "other"); an echo means its sending app owned the thread (except the
//     default app sending while idle, which Conversation Routing allows).
//   - Evidence older than the thread's StateAt is stale: it is stored and
//     counted but never rolls the owner back past newer evidence.
//   - An owned thread without activity for IdleAfter is idle from
//     ExpiresAt on, whether the sweeper or a newer event notices first.

// Ingest durably applies webhook events in one transaction (one commit,
// one fsync, per webhook). It returns nil only when every event is
// committed (or was already). Threads are locked in (page, PSID) order so
// concurrent ingests cannot deadlock.
func (s *Service) Ingest(ctx context.Context, events []messenger.Event) error {
	type key struct{ page, psid string }
	groups := map[key][]messenger.Event{}
	var keys []key
	for _, ev := range events {
		k := key{ev.PageID, ev.PSID}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], ev)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].page != keys[j].page {
			return keys[i].page < keys[j].page
		}
		return keys[i].psid < keys[j].psid
	})
	for _, evs := range groups {
		sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
	}
	var c committed
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		c = committed{}
		for _, k := range keys {
			var err error
			if k.psid == "" {
				err = s.applyPageEvents(ctx, tx, k.page, groups[k], &c)
			} else {
				err = s.applyThreadEvents(ctx, tx, k.page, k.psid, groups[k], &c)
			}
			if err != nil {
				return fmt.Errorf("page %s: %w", k.page, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("handover: ingest: %w", err)
	}
	s.record(c)
	return nil
}

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
		}
		if _, err := insertEvent(ctx, tx, ev, outcome, now); err != nil {
			return err
		}
		c.events = append(c.events, eventResult{string(ev.Kind), outcome})
	}
	return nil
}

// applyThreadEvents applies one thread's events under its row lock.
func (s *Service) applyThreadEvents(ctx context.Context, tx *store.Tx, pageID, psid string, evs []messenger.Event, c *committed) error {
	page := s.pages[pageID]
	nowT := s.now()
	now := store.Millis(nowT)
	th, err := lockThread(ctx, tx, pageID, psid, nowT)
	if err != nil {
		return err
	}
	applied := false
	var trs []Transition
	for _, ev := range evs {
		dup, err := isDuplicate(ctx, tx, ev)
		if err != nil {
			return err
		}
		if dup {
			c.events = append(c.events, eventResult{string(ev.Kind), "duplicate"})
			continue
		}
		applied = true
		n := len(trs)
		outcome := s.apply(&th, page, ev, &trs)
		id, err := insertEvent(ctx, tx, ev, outcome, now)
		if err != nil {
			return err
		}
		for i := n; i < len(trs); i++ {
			if trs[i].Cause != CauseExpired {
				trs[i].EventID = id
			}
		}
		if err := insertMessage(ctx, tx, ev, now); err != nil {
			return err
		}
		if err := s.observe(ctx, tx, Change{Thread: th, Event: &ev, Outcome: outcome}); err != nil {
			return err
		}
		c.events = append(c.events, eventResult{string(ev.Kind), outcome})
	}
	if !applied {
		return nil
	}
	if err := writeThread(ctx, tx, &th, nowT); err != nil {
		return err
	}
	return s.saveTransitions(ctx, tx, &th, trs, now, c)
}

// saveTransitions stores a thread's new transitions and notes what the
// commit must report.
func (s *Service) saveTransitions(ctx context.Context, tx *store.Tx, th *Thread, trs []Transition, now int64, c *committed) error {
	if len(trs) > 0 {
		if err := s.observe(ctx, tx, Change{Thread: *th, Transitions: trs}); err != nil {
			return err
		}
	}
	for _, t := range trs {
		if err := insertTransition(ctx, tx, th.PageID, th.PSID, t, now); err != nil {
			return err
		}
		c.transitions = append(c.transitions, threadTransition{th.PageID, th.PSID, t})
		if t.To == OwnerAgent {
			c.ownedByUs = true
		}
	}
	if th.granted > 0 {
		c.waits = append(c.waits, th.granted)
		th.granted = 0
	}
	return nil
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
			// Older payloads omit new_owner_app_id: someone else took it.
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
	*trs = append(*trs, Transition{At: at, From: th.Owner, FromAppID: th.OwnerAppID, To: to, ToAppID: toApp, Cause: cause, Actor: actor})
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

func (s *Service) refreshExpiry(th *Thread) {
	if th.Owner == OwnerIdle || th.ActivityAt == nil {
		th.ExpiresAt = nil
		return
	}
	e := th.ActivityAt.Add(s.idleAfter)
	th.ExpiresAt = &e
}

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

func insertEvent(ctx context.Context, tx *store.Tx, ev messenger.Event, outcome string, now int64) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO webhook_events
		(dedupe_key, page_id, psid, kind, channel, occurred_at, received_at, outcome, payload)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
		dedupeKey(ev), ev.PageID, ev.PSID, string(ev.Kind), string(ev.Channel), store.Millis(ev.Time), now, outcome, string(ev.Raw),
	).Scan(&id)
	return id, err
}

// insertMessage keeps customer messages, postbacks and echoes, once per mid.
func insertMessage(ctx context.Context, tx *store.Tx, ev messenger.Event, now int64) error {
	var mid, direction, appID, text string
	var payload any
	kind := "message"
	switch {
	case ev.Message != nil:
		mid, text, payload = ev.Message.MID, ev.Message.Text, ev.Message
		direction = "in"
		if ev.Message.IsEcho {
			direction, appID = "out", ev.Message.AppID
		}
	case ev.Postback != nil && ev.Postback.MID != "":
		mid, text, payload, direction, kind = ev.Postback.MID, ev.Postback.Title, ev.Postback, "in", "postback"
	default:
		return nil
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO messages
		(mid, page_id, psid, direction, app_id, kind, text, payload, channel, occurred_at, received_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (mid) DO NOTHING`,
		mid, ev.PageID, ev.PSID, direction, appID, kind, text, string(b), string(ev.Channel), store.Millis(ev.Time), now)
	return err
}
