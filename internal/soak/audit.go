package soak

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store"
)

// Report is a soak's figures. Lost, duplicated and mismatched counts must
// all be zero (OK).
type Report struct {
	// Backend is sqlite or postgres; Replicas how many processes shared it.
	Backend  string
	Replicas int
	// Duration is how long the load ran; Kills how many SIGKILLs it took.
	Duration time.Duration
	Kills    int

	// CustomerMessages is how many messages the customers wrote.
	CustomerMessages int
	// EventsSent is the webhook events the simulator sent handoverd,
	// EventsAcked those of deliveries answered 2xx, EventsStored those of
	// them found in webhook_events.
	EventsSent, EventsAcked, EventsStored int
	// Deliveries is the webhook POSTs sealed for handoverd; Attempts the
	// POSTs made (retries included); Undelivered those never answered 2xx.
	Deliveries, Attempts, Undelivered int
	// EventsLost: acknowledged, not stored. EventsDuplicated: stored (or
	// shown in the inbox) more than once.
	EventsLost, EventsDuplicated int

	// Requests is the API requests the agents and the bot made; Refused
	// those answered non-2xx or not at all (a process being killed).
	Requests, Refused int
	// Handovers and HandBacks are the bot handovers and the agents'
	// hand-backs (close, resolve) accepted.
	Handovers, HandBacks int
	// AgentAccepted is the agent messages answered 2xx; AgentSent those
	// the customer received; AgentFailed those stored as failed (with the
	// reason: cancelled by a hand-back, control not arriving); AgentWaiting
	// those still waiting at the end.
	AgentAccepted, AgentSent, AgentFailed, AgentWaiting int
	// AgentLost: accepted, not stored. AgentDuplicated: stored more than
	// once, or received by the customer more than once.
	AgentLost, AgentDuplicated int
	// AgentSentUnrecorded: the customer received it, handoverd does not say sent.
	AgentSentUnrecorded int

	// OpsLeftInFlight is the handovers (control_ops) a killed process left
	// in flight: they hold the thread's next handovers for two minutes.
	OpsLeftInFlight int
	// ClosesLeft is the interventions a killed process left closing: the
	// sweep finishes them once they are two minutes old.
	ClosesLeft int

	// Threads is the customers' threads compared; OwnersMismatched those
	// whose owner in handoverd is not Messenger's.
	Threads, OwnersMismatched int

	// Problems names the first few findings.
	Problems []string
}

// OK reports whether the audit found nothing lost, duplicated or mismatched.
func (r Report) OK() bool {
	return r.EventsLost == 0 && r.EventsDuplicated == 0 && r.AgentLost == 0 && r.AgentDuplicated == 0 &&
		r.OwnersMismatched == 0 && r.AgentSentUnrecorded == 0
}

// Print writes the figures.
func (r Report) Print(w io.Writer) {
	verdict := "PASS"
	if !r.OK() {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, `soak %s (%d process(es)), %s, %d kills: %s
  customer messages %d; webhook events sent %d, acknowledged %d, stored %d; lost %d, duplicated %d
  webhook deliveries %d (%d POSTs with retries, %d never acknowledged)
  API requests %d (%d refused or unanswered); bot handovers %d, hand-backs %d
  agent messages accepted %d: sent %d, failed %d (reason stored), waiting %d; lost %d, duplicated %d, sent but not recorded %d
  threads %d, owners mismatched %d; handovers a kill left in flight %d, interventions left closing %d
`, r.Backend, r.Replicas, r.Duration, r.Kills, verdict,
		r.CustomerMessages, r.EventsSent, r.EventsAcked, r.EventsStored, r.EventsLost, r.EventsDuplicated,
		r.Deliveries, r.Attempts, r.Undelivered,
		r.Requests, r.Refused, r.Handovers, r.HandBacks,
		r.AgentAccepted, r.AgentSent, r.AgentFailed, r.AgentWaiting, r.AgentLost, r.AgentDuplicated, r.AgentSentUnrecorded,
		r.Threads, r.OwnersMismatched, r.OpsLeftInFlight, r.ClosesLeft)
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  - %s\n", p)
	}
}

func (r *Report) problem(format string, args ...any) {
	if len(r.Problems) < 20 {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// openDB opens the run's database for the audit (direct SQL).
func openDB(ctx context.Context, dbURL string) (*store.DB, error) {
	d, err := config.ParseDatabase(dbURL)
	if err != nil {
		return nil, err
	}
	return store.Open(ctx, d.Driver, d.DSN)
}

// settle waits, with every process up, until the simulator has no
// delivery left to make and handoverd no agent message waiting, twice in a
// row (what one settles may start another). A handover a killed process
// left in flight is not waited for: it is abandoned after two minutes, and
// the webhooks alone tell what became of it.
func (r *run) settle(ctx context.Context, dbURL string) error {
	db, err := openDB(ctx, dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(3 * time.Minute)
	quiet := 0
	for quiet < 2 {
		if time.Now().After(deadline) {
			r.log("still not quiet after 3 minutes; auditing as it stands")
			return nil
		}
		fctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := r.sim.Flush(fctx)
		cancel()
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		var waiting int
		if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM agent_messages WHERE status = 'waiting'`).Scan(&waiting); err != nil {
			return err
		}
		if waiting == 0 {
			quiet++
		} else {
			quiet = 0
		}
		sleep(ctx, time.Second)
	}
	return nil
}

// audit compares what Messenger (the simulator) saw with what handoverd stored.
func (r *run) audit(ctx context.Context, dbURL string, rep *Report) error {
	db, err := openDB(ctx, dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	q := db.Reader()

	r.rec.mu.Lock()
	rep.CustomerMessages, rep.Handovers, rep.HandBacks = r.rec.customer, r.rec.handovers, r.rec.closes
	rep.Requests, rep.Refused = r.rec.tries, r.rec.refused
	acceptedMsgs := append([]accepted(nil), r.rec.accepted...)
	var psids []string
	for p := range r.rec.wrote {
		psids = append(psids, p)
	}
	r.rec.mu.Unlock()
	sort.Strings(psids)

	if err := r.auditEvents(ctx, q, rep); err != nil {
		return err
	}
	if err := r.auditAgentMessages(ctx, q, rep, acceptedMsgs, psids); err != nil {
		return err
	}
	if err := q.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM control_ops WHERE status = 'in_flight'),
		(SELECT count(*) FROM interventions WHERE status = 'closing')`).Scan(&rep.OpsLeftInFlight, &rep.ClosesLeft); err != nil {
		return err
	}

	return r.auditOwners(ctx, q, rep, psids)
}

// auditEvents checks that every webhook event Messenger saw acknowledged
// is stored exactly once, and every customer message is in the inbox once.
func (r *run) auditEvents(ctx context.Context, q *sql.DB, rep *Report) error {
	// Webhook events: every acknowledged one stored exactly once.
	stored := map[string]int{}
	if err := eachRow(ctx, q, `SELECT dedupe_key, count(*) FROM webhook_events GROUP BY dedupe_key`, func(scan func(...any) error) error {
		var k string
		var n int
		if err := scan(&k, &n); err != nil {
			return err
		}
		stored[k] = n
		return nil
	}); err != nil {
		return err
	}
	sent, acked := map[string]bool{}, map[string]bool{}
	for _, d := range r.sim.Deliveries(ourApp) {
		rep.Deliveries++
		rep.Attempts += d.Attempts
		if !d.Delivered {
			rep.Undelivered++
		}
		b, err := messenger.ParseWebhook(d.Body)
		if err != nil {
			return fmt.Errorf("soak: the simulator sent a webhook handoverd's parser refuses: %w", err)
		}
		for _, ev := range b.Events {
			k := handover.DedupeKey(ev)
			sent[k] = true
			if d.Delivered {
				acked[k] = true
			}
		}
	}
	rep.EventsSent, rep.EventsAcked = len(sent), len(acked)
	for k := range acked {
		switch n := stored[k]; {
		case n == 0:
			rep.EventsLost++
			rep.problem("webhook event acknowledged, not stored: %s", k)
		case n > 1:
			rep.EventsDuplicated++
			rep.problem("webhook event stored %d times: %s", n, k)
		default:
			rep.EventsStored++
		}
	}
	// A customer message appears once in the agents' inbox.
	if err := eachRow(ctx, q, `SELECT source_id, count(*) FROM inbox_messages WHERE source_id IS NOT NULL AND source_id <> ''
		GROUP BY source_id HAVING count(*) > 1`, func(scan func(...any) error) error {
		var mid string
		var n int
		if err := scan(&mid, &n); err != nil {
			return err
		}
		rep.EventsDuplicated++
		rep.problem("message %s is in the inbox %d times", mid, n)
		return nil
	}); err != nil {
		return err
	}

	return nil
}

// auditAgentMessages checks that every agent message handoverd accepted is
// stored once and reached the customer at most once, and that what reached
// the customer is recorded as sent.
func (r *run) auditAgentMessages(ctx context.Context, q *sql.DB, rep *Report, acceptedMsgs []accepted, psids []string) error {
	byText, received, inboxCount, err := r.agentRecords(ctx, q, psids)
	if err != nil {
		return err
	}
	for text, n := range received {
		if n > 1 {
			rep.AgentDuplicated++
			rep.problem("%q reached the customer %d times", text, n)
		}
		if ms := byText[text]; len(ms) == 1 && ms[0].status != handover.SendSent {
			rep.AgentSentUnrecorded++
			rep.problem("%q reached the customer; handoverd says %s (%s)", text, ms[0].status, ms[0].reason)
		}
	}
	rep.AgentAccepted = len(acceptedMsgs)
	for _, a := range acceptedMsgs {
		ms := byText[a.text]
		if a.via == "inbox" && inboxCount[a.text] != 1 {
			if inboxCount[a.text] == 0 {
				rep.AgentLost++
			} else {
				rep.AgentDuplicated++
			}
			rep.problem("inbox reply %q accepted, in the inbox %d times", a.text, inboxCount[a.text])
			continue
		}
		switch {
		case len(ms) == 0 && a.via == "inbox":
			// The reply is in the inbox, marked failed: its intervention
			// could not take it (the conversation was being handed back).
			rep.AgentFailed++
			continue
		case len(ms) == 0:
			rep.AgentLost++
			rep.problem("agent message %q accepted, not stored", a.text)
			continue
		case len(ms) > 1:
			rep.AgentDuplicated++
			rep.problem("agent message %q stored %d times", a.text, len(ms))
			continue
		}
		switch ms[0].status {
		case handover.SendSent:
			rep.AgentSent++
			if received[a.text] == 0 {
				rep.AgentLost++
				rep.problem("agent message %q stored as sent, the customer never received it", a.text)
			}
		case handover.SendFailed:
			rep.AgentFailed++
		default:
			rep.AgentWaiting++
		}
	}

	return nil
}

// storedMsg is an agent message as handoverd stored it.
type storedMsg struct{ status, reason string }

// agentRecords reads what became of the soak's agent replies: as
// handoverd stored them (by text), as the customers received them, and as
// the inbox shows them.
func (r *run) agentRecords(ctx context.Context, q *sql.DB, psids []string) (byText map[string][]storedMsg, received, inboxCount map[string]int, err error) {
	byText = map[string][]storedMsg{}
	if err := eachRow(ctx, q, `SELECT message, status, error FROM agent_messages`, func(scan func(...any) error) error {
		var raw, status, reason string
		if err := scan(&raw, &status, &reason); err != nil {
			return err
		}
		var m struct {
			Text string `json:"text"`
		}
		if json.Unmarshal([]byte(raw), &m) == nil && strings.HasPrefix(m.Text, "soak reply ") {
			byText[m.Text] = append(byText[m.Text], storedMsg{status, reason})
		}
		return nil
	}); err != nil {
		return nil, nil, nil, err
	}
	received = map[string]int{}
	for _, p := range psids {
		for _, m := range r.sim.Inbox(pageID, p) {
			if m.AppID == ourApp && strings.HasPrefix(m.Text, "soak reply ") {
				received[m.Text]++
			}
		}
	}
	inboxCount = map[string]int{}
	if err := eachRow(ctx, q, `SELECT content, count(*) FROM inbox_messages WHERE content LIKE 'soak reply %' GROUP BY content`, func(scan func(...any) error) error {
		var c string
		var n int
		if err := scan(&c, &n); err != nil {
			return err
		}
		inboxCount[c] = n
		return nil
	}); err != nil {
		return nil, nil, nil, err
	}
	return byText, received, inboxCount, nil
}

// auditOwners checks that each thread's owner in handoverd is Messenger's.
func (r *run) auditOwners(ctx context.Context, q *sql.DB, rep *Report, psids []string) error {
	// Owners: handoverd's equals Messenger's.
	for _, p := range psids {
		want := r.sim.Thread(pageID, p).OwnerAppID
		var owner, app string
		err := q.QueryRowContext(ctx, `SELECT owner, owner_app_id FROM threads WHERE page_id = $1 AND psid = $2`, pageID, p).Scan(&owner, &app)
		if err != nil {
			owner, app = "(no thread: "+err.Error()+")", "?"
		}
		rep.Threads++
		if app != want || (want == "" && owner != string(handover.OwnerIdle)) {
			rep.OwnersMismatched++
			rep.problem("thread %s: handoverd says %s (app %q), Messenger says app %q", p, owner, app, want)
		}
	}
	return nil
}

// eachRow runs query and calls fn with each row's Scan.
func eachRow(ctx context.Context, q *sql.DB, query string, fn func(scan func(...any) error) error) error {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}
