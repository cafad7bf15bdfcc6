package inbox_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/inbox"
)

// deliverAll runs DeliverDue until it attempts nothing more and returns
// how many were delivered.
func (e *env) deliverAll() int {
	e.t.Helper()
	total := 0
	attempts := func() (n int) {
		for _, r := range e.outbox() {
			n += r.Attempts
		}
		return n
	}
	for range 100 {
		before := attempts()
		n, err := e.in.DeliverDue(context.Background())
		if err != nil {
			e.t.Fatalf("DeliverDue: %v", err)
		}
		total += n
		if attempts() == before {
			return total
		}
	}
	e.t.Fatal("DeliverDue never ran dry")
	return total
}

// outboxRow is a delivery as stored.
type outboxRow struct {
	Target     string
	Status     string
	Attempts   int
	LastStatus int
}

func (e *env) outbox() []outboxRow {
	e.t.Helper()
	rows, err := e.db.Reader().QueryContext(context.Background(), `SELECT target, status, attempts, last_status FROM outbox ORDER BY id`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out := []outboxRow{}
	for rows.Next() {
		var r outboxRow
		if err := rows.Scan(&r.Target, &r.Status, &r.Attempts, &r.LastStatus); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// hookEvent is what a receiver got: the event name and, for messages,
// the content and the message type by name.
type hookEvent struct {
	Event       string
	Content     string
	MessageType any
}

func decodeHook(t *testing.T, r received) hookEvent {
	t.Helper()
	var b struct {
		Event       string `json:"event"`
		Content     string `json:"content"`
		MessageType any    `json:"message_type"`
	}
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("webhook body: %v: %s", err, r.body)
	}
	return hookEvent{b.Event, b.Content, b.MessageType}
}

// TestOutboxDelivers: every event of the account reaches its webhook,
// signed with the webhook's secret, in the conversation's order, with
// Chatwoot's message type names.
func TestOutboxDelivers(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.ingest(e.customer(pageID, "psid-o", "m.1", "hello"))
		e.ingest(e.customer(otherPage, "psid-x", "m.x", "account 2 has no webhook"))
		if n := e.deliverAll(); n != 4 {
			t.Errorf("delivered %d, want 4", n)
		}
		got := []hookEvent{}
		ids := map[string]bool{}
		for _, r := range e.hook.requests() {
			got = append(got, decodeHook(t, r))
			ts, err := strconv.ParseInt(r.timestamp, 10, 64)
			if err != nil {
				t.Fatalf("timestamp header %q", r.timestamp)
			}
			if want := inbox.SignWebhook(hookSecret, ts, r.body); r.signed != want {
				t.Errorf("signature %q, want %q", r.signed, want)
			}
			if r.delivery == "" || ids[r.delivery] {
				t.Errorf("delivery id %q empty or repeated", r.delivery)
			}
			ids[r.delivery] = true
		}
		want := []hookEvent{
			{Event: inbox.EventConversationCreated},
			{Event: inbox.EventMessageCreated, Content: "hello", MessageType: "incoming"},
			{Event: inbox.EventMessageCreated, Content: "Thread control: idle → bot (customer_message), reason meta_event", MessageType: "activity"},
			{Event: inbox.EventConversationOwner},
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("received (-want +got):\n%s", d)
		}
		for _, r := range e.outbox() {
			if r.Status != "delivered" || r.LastStatus != 200 || r.Attempts != 1 {
				t.Errorf("outbox row %+v, want delivered at the first attempt", r)
			}
		}
	})
}

// TestOutboxRetries: 5xx, 429 and 408 are retried after a growing delay
// with the same delivery id, holding the conversation's later events back;
// other 4xx fail the delivery at once; retries stop after GiveUpAfter.
func TestOutboxRetries(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.ingest(e.customer(pageID, "psid-r", "m.1", "hello"))
		e.hook.answer(503, 429, http.StatusRequestTimeout, 404)
		attempt := func() int {
			n, err := e.in.DeliverDue(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		// 503: the first event waits 5 s; nothing else goes meanwhile.
		if n := attempt(); n != 0 {
			t.Fatalf("delivered %d on a 503", n)
		}
		if n := attempt(); n != 0 || len(e.hook.requests()) != 1 {
			t.Fatalf("retried before the delay: %d delivered, %d requests", n, len(e.hook.requests()))
		}
		e.clock.Advance(5 * time.Second)
		attempt() // 429
		e.clock.Advance(5 * time.Second)
		if attempt(); len(e.hook.requests()) != 2 {
			t.Fatalf("the second retry came before 10 s: %d requests", len(e.hook.requests()))
		}
		e.clock.Advance(5 * time.Second)
		attempt() // 408
		e.clock.Advance(20 * time.Second)
		// 404 fails the first event for good; the other three follow.
		if n := e.deliverAll(); n != 3 {
			t.Errorf("delivered %d after the 404, want 3", n)
		}
		reqs := e.hook.requests()
		var statuses []int
		for _, r := range reqs {
			statuses = append(statuses, r.status)
		}
		if d := cmp.Diff([]int{503, 429, 408, 404, 200, 200, 200}, statuses); d != "" {
			t.Errorf("answers (-want +got):\n%s", d)
		}
		for i := 1; i < 4; i++ {
			if reqs[i].delivery != reqs[0].delivery {
				t.Errorf("attempt %d has delivery id %q, the first %q", i+1, reqs[i].delivery, reqs[0].delivery)
			}
		}
		target := "config:" + e.hook.url
		want := []outboxRow{
			{target, "failed", 4, 404},
			{target, "delivered", 1, 200},
			{target, "delivered", 1, 200},
			{target, "delivered", 1, 200},
		}
		if d := cmp.Diff(want, e.outbox()); d != "" {
			t.Errorf("outbox (-want +got):\n%s", d)
		}

		// A receiver down for longer than GiveUpAfter (24 h) fails the delivery.
		e.ingest(e.customer(pageID, "psid-g", "m.g", "later"))
		e.hook.answer(500, 500, 500, 500, 500, 500, 500, 500, 500, 500)
		for range 10 {
			attempt()
			e.clock.Advance(6 * time.Hour)
		}
		rows := e.outbox()
		if got := rows[4]; got.Status != "failed" || got.LastStatus != 500 {
			t.Errorf("after a day of 500s: %+v, want failed", got)
		}
		// The job runner counts what the outbox decided: the 404 and the
		// four deliveries of the second conversation given up are
		// failures, not retries.
		attempts := map[string]float64{}
		for _, r := range []string{"ok", "retry", "failed"} {
			attempts[r] = testutil.ToFloat64(e.met.JobAttempts.WithLabelValues("outbox", r))
		}
		deliveries := testutil.ToFloat64(e.met.OutboxDeliveries.WithLabelValues("failed"))
		if attempts["failed"] != 5 || deliveries != 5 {
			t.Errorf("failed attempts counted by the runner %v, by the outbox %v; want 5 each (all: %v)", attempts["failed"], deliveries, attempts)
		}
	})
}

// TestOutboxInboxWebhook: an API inbox's own webhook gets its
// conversations' events, signed with the secret shown once at creation.
func TestOutboxInboxWebhook(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		own := newReceiver(t)
		var iv inbox.InboxView
		e.must("POST", path("1/inboxes"), aliceToken, map[string]any{"name": "site", "channel": map[string]any{"type": "api", "webhook_url": own.url}}, &iv)
		if iv.WebhookSecret == "" {
			t.Fatal("no webhook secret in the creation answer")
		}
		var again inbox.InboxView
		e.must("GET", path("1/inboxes/%d", iv.ID), aliceToken, nil, &again)
		if again.WebhookSecret != "" || again.WebhookURL != own.url {
			t.Errorf("inbox shown later: secret %q, url %q", again.WebhookSecret, again.WebhookURL)
		}
		var c inbox.ContactCreated
		e.must("POST", path("1/contacts"), aliceToken, map[string]any{"inbox_id": iv.ID, "name": "Ada"}, &c)
		var conv inbox.ConversationView
		e.must("POST", path("1/conversations"), aliceToken, map[string]any{"source_id": c.Payload.ContactInbox.SourceID}, &conv)
		e.must("POST", path("1/conversations/%d/messages", conv.ID), aliceToken, map[string]any{"content": "hi"}, nil)
		e.deliverAll()
		var got []hookEvent
		for _, r := range own.requests() {
			ts, _ := strconv.ParseInt(r.timestamp, 10, 64)
			if r.signed != inbox.SignWebhook(iv.WebhookSecret, ts, r.body) {
				t.Errorf("inbox webhook signature %q does not match the inbox's secret", r.signed)
			}
			got = append(got, decodeHook(t, r))
		}
		want := []hookEvent{{Event: inbox.EventConversationCreated}, {Event: inbox.EventMessageCreated, Content: "hi", MessageType: "outgoing"}}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("inbox webhook received (-want +got):\n%s", d)
		}
		if n := len(e.hook.requests()); n != 2 {
			t.Errorf("the account webhook got %d events, want the same 2", n)
		}
	})
}

// TestOutboxSeveralProcesses: processes sharing the database deliver
// together; each delivery reaches the receiver exactly once, and each
// conversation's events in order.
func TestOutboxSeveralProcesses(t *testing.T) {
	each(t, func(t *testing.T, a *env) {
		b := newProcess(t, a.b, a.hook)
		for i := range 6 {
			p := "psid-" + strconv.Itoa(i)
			a.ingest(a.customer(pageID, p, "m."+p, "hello from "+p))
		}
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for _, e := range []*env{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 50 {
					if _, err := e.in.DeliverDue(context.Background()); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		rows := a.outbox()
		reqs := a.hook.requests()
		seen := map[string]int{}
		perConv := map[string][]string{}
		for _, r := range reqs {
			seen[r.delivery]++
			var body struct {
				Event        string `json:"event"`
				Conversation struct {
					ID int64 `json:"id"`
				} `json:"conversation"`
				ID int64 `json:"id"`
			}
			_ = json.Unmarshal(r.body, &body)
			conv := body.Conversation.ID
			if body.Event != inbox.EventMessageCreated {
				conv = body.ID
			}
			perConv[strconv.FormatInt(conv, 10)] = append(perConv[strconv.FormatInt(conv, 10)], body.Event)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("delivery %s reached the receiver %d times", id, n)
			}
		}
		if len(seen) != len(rows) || len(rows) != 24 {
			t.Errorf("%d deliveries received, %d stored, want 24", len(seen), len(rows))
		}
		want := []string{inbox.EventConversationCreated, inbox.EventMessageCreated, inbox.EventMessageCreated, inbox.EventConversationOwner}
		for conv, evs := range perConv {
			if d := cmp.Diff(want, evs); d != "" {
				t.Errorf("conversation %s got (-want +got):\n%s", conv, d)
			}
		}
		for _, r := range rows {
			if r.Status != "delivered" || r.Attempts != 1 {
				t.Errorf("outbox row %+v, want delivered at the first attempt", r)
			}
		}
	})
}

// TestOutboxLogsNoSecrets: a failed delivery is logged with its URL's
// path, never the URL's query (where receivers often take a token) nor
// the signing secret.
func TestOutboxLogsNoSecrets(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		own := newReceiver(t)
		own.answer(500)
		var iv inbox.InboxView
		e.must("POST", path("1/inboxes"), aliceToken, map[string]any{"name": "site",
			"channel": map[string]any{"type": "api", "webhook_url": strings.Replace(own.url, "://", "://hook:pass-word-456@", 1) + "?access_token=query-token-123"}}, &iv)
		var c inbox.ContactCreated
		e.must("POST", path("1/contacts"), aliceToken, map[string]any{"inbox_id": iv.ID, "name": "Ada"}, &c)
		e.must("POST", path("1/conversations"), aliceToken, map[string]any{"source_id": c.Payload.ContactInbox.SourceID}, nil)
		e.hook.answer(500)
		if n, err := e.in.DeliverDue(context.Background()); err != nil || n != 0 {
			t.Fatalf("DeliverDue: %d, %v", n, err)
		}
		logs := e.logs.String()
		if got := strings.Count(logs, "webhook delivery failed"); got != 2 {
			t.Errorf("%d failed deliveries logged, want 2:\n%s", got, logs)
		}
		if !strings.Contains(logs, own.url) {
			t.Errorf("the log does not name the receiver %s:\n%s", own.url, logs)
		}
		for _, secret := range []string{"query-token-123", "pass-word-456", iv.WebhookSecret, hookSecret, aliceToken} {
			if strings.Contains(logs, secret) {
				t.Errorf("the log holds the secret %q:\n%s", secret, logs)
			}
		}
	})
}
