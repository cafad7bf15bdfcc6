package handover_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/internal/clocktest"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/metrics"
	"github.com/handoverd/handoverd/store/storetest"
)

const (
	ourApp = "111"
	botApp = "222"
	inbox  = config.PageInboxAppID
	page   = "1001"
	psid   = "5001"
)

var t0 = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

type fixture struct {
	svc   *handover.Service
	clock *clocktest.Fake
	m     *metrics.Metrics
}

func newFixture(t *testing.T, b storetest.Backend, defaultApp string) *fixture {
	t.Helper()
	clock := clocktest.New(t0)
	m := metrics.New()
	svc := handover.New(handover.Options{
		DB:    b.Open(t),
		AppID: ourApp,
		Pages: []config.Page{{ID: page, AccessToken: "tok", DefaultApp: defaultApp, BotAppID: botApp, ClientID: 1}},
		Clock: clock.Paced(), Metrics: m, Logger: zerolog.Nop(),
	})
	return &fixture{svc: svc, clock: clock, m: m}
}

// ev builders. at is minutes after t0.
func msg(ch messenger.Channel, mid string, at int) messenger.Event {
	return messenger.Event{Kind: messenger.KindMessage, Channel: ch, PageID: page, PSID: psid, Time: t0.Add(time.Duration(at) * time.Minute),
		Message: &messenger.Message{MID: mid, Text: "hi " + mid}, Raw: []byte(`{}`)}
}

func echo(ch messenger.Channel, mid, app string, at int) messenger.Event {
	e := msg(ch, mid, at)
	e.Kind, e.Message.IsEcho, e.Message.AppID = messenger.KindEcho, true, app
	return e
}

func pass(prev, next string, at int) messenger.Event {
	return messenger.Event{Kind: messenger.KindPass, Channel: messenger.ChannelMessaging, PageID: page, PSID: psid,
		Time: t0.Add(time.Duration(at) * time.Minute), Handover: &messenger.Handover{PreviousOwnerAppID: prev, NewOwnerAppID: next}, Raw: []byte(`{}`)}
}

func take(prev, next string, at int) messenger.Event {
	e := pass(prev, next, at)
	e.Kind = messenger.KindTake
	return e
}

func request(app string, at int) messenger.Event {
	e := pass("", "", at)
	e.Kind, e.Handover = messenger.KindRequest, &messenger.Handover{RequestedOwnerAppID: app}
	return e
}

type step struct {
	From, To  handover.Owner
	ToAppID   string
	Cause     handover.Cause
	AtMinutes int
}

func steps(hist []handover.Transition) []step {
	var out []step
	for _, h := range hist {
		out = append(out, step{h.From, h.To, h.ToAppID, h.Cause, int(h.At.Sub(t0) / time.Minute)})
	}
	return out
}

func (f *fixture) ingest(t *testing.T, evs ...messenger.Event) {
	t.Helper()
	if err := f.svc.Ingest(context.Background(), evs); err != nil {
		t.Fatalf("Ingest: %v", err)
	}
}

func (f *fixture) get(t *testing.T) (handover.Thread, []step) {
	t.Helper()
	th, hist, err := f.svc.Get(context.Background(), page, psid)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return th, steps(hist)
}

const (
	M = messenger.ChannelMessaging
	S = messenger.ChannelStandby
)

func TestOwnershipRules(t *testing.T) {
	tests := []struct {
		name       string
		defaultApp string
		events     []messenger.Event
		want       []step
		owner      handover.Owner
	}{
		{
			name: "standby message on a bot-default page: bot owns", defaultApp: "bot",
			events: []messenger.Event{msg(S, "m1", 0)},
			want:   []step{{"idle", "bot", botApp, "customer_message", 0}},
			owner:  "bot",
		},
		{
			name: "bot passes to us, then the customer writes on messaging", defaultApp: "bot",
			events: []messenger.Event{msg(S, "m1", 0), pass(botApp, ourApp, 1), msg(M, "m2", 2)},
			want:   []step{{"idle", "bot", botApp, "customer_message", 0}, {"bot", "agent", ourApp, "pass_thread_control", 1}},
			owner:  "agent",
		},
		{
			name: "messaging on an agent-default page: we own", defaultApp: "agent",
			events: []messenger.Event{msg(M, "m1", 0)},
			want:   []step{{"idle", "agent", ourApp, "customer_message", 0}},
			owner:  "agent",
		},
		{
			name: "standby after we owned: another app took it, the default bot", defaultApp: "bot",
			events: []messenger.Event{pass("", ourApp, 0), msg(S, "m1", 5)},
			want:   []step{{"idle", "agent", ourApp, "pass_thread_control", 0}, {"agent", "bot", botApp, "customer_message", 5}},
			owner:  "bot",
		},
		{
			name: "page inbox echo: a human took over", defaultApp: "bot",
			events: []messenger.Event{msg(S, "m1", 0), echo(S, "e1", inbox, 1)},
			want:   []step{{"idle", "bot", botApp, "customer_message", 0}, {"bot", "page_inbox", inbox, "echo", 1}},
			owner:  "page_inbox",
		},
		{
			name: "our own echo while we own changes nothing", defaultApp: "bot",
			events: []messenger.Event{pass(botApp, ourApp, 0), echo(M, "e1", ourApp, 1)},
			want:   []step{{"idle", "agent", ourApp, "pass_thread_control", 0}},
			owner:  "agent",
		},
		{
			name: "default app may send while idle without owning", defaultApp: "bot",
			events: []messenger.Event{echo(S, "e1", botApp, 0)},
			want:   nil,
			owner:  "idle",
		},
		{
			name: "take by the page inbox", defaultApp: "agent",
			events: []messenger.Event{msg(M, "m1", 0), take(ourApp, inbox, 3)},
			want:   []step{{"idle", "agent", ourApp, "customer_message", 0}, {"agent", "page_inbox", inbox, "take_thread_control", 3}},
			owner:  "page_inbox",
		},
		{
			name: "pass to an unknown app", defaultApp: "bot",
			events: []messenger.Event{pass(botApp, "999", 0)},
			want:   []step{{"idle", "other", "999", "pass_thread_control", 0}},
			owner:  "other",
		},
		{
			name: "zero-config: messages and echoes prove nothing", defaultApp: "none",
			events: []messenger.Event{msg(M, "m1", 0), echo(M, "e1", botApp, 1), msg(S, "m2", 2)},
			want:   nil,
			owner:  "idle",
		},
		{
			name: "out of order: a late pass never rolls back newer evidence", defaultApp: "bot",
			// Delivered in this order: the standby message at 5 (bot owns), then the pass at 3.
			events: []messenger.Event{msg(S, "m1", 5), pass(botApp, ourApp, 3)},
			want:   []step{{"idle", "bot", botApp, "customer_message", 5}},
			owner:  "bot",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, b storetest.Backend) {
				f := newFixture(t, b, tt.defaultApp)
				// Deliver one event per webhook, in the listed order.
				for _, ev := range tt.events {
					f.ingest(t, ev)
				}
				th, got := f.get(t)
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("history (-want +got):\n%s", diff)
				}
				if th.Owner != tt.owner {
					t.Errorf("owner = %s, want %s", th.Owner, tt.owner)
				}
			})
		})
	}
}

func TestBatchAppliedInTimestampOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b, "bot")
		// One webhook carrying the pass (t=1) after a standby message (t=0)
		// and a messaging message (t=2), listed out of order.
		f.ingest(t, msg(M, "m2", 2), pass(botApp, ourApp, 1), msg(S, "m1", 0))
		th, got := f.get(t)
		want := []step{{"idle", "bot", botApp, "customer_message", 0}, {"bot", "agent", ourApp, "pass_thread_control", 1}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		if th.Owner != "agent" {
			t.Errorf("owner = %s", th.Owner)
		}
	})
}

func TestRedeliveryAppliesNothingTwice(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b, "bot")
		batch := []messenger.Event{msg(S, "m1", 0), pass(botApp, ourApp, 1)}
		f.ingest(t, batch...)
		f.ingest(t, batch...)
		f.ingest(t, batch[1])
		_, got := f.get(t)
		if len(got) != 2 {
			t.Errorf("history has %d transitions, want 2: %+v", len(got), got)
		}
		if n := testutil.ToFloat64(f.m.WebhookEvents.WithLabelValues("pass_thread_control", "duplicate")); n != 2 {
			t.Errorf("duplicate pass events counted = %v, want 2", n)
		}
		if n := testutil.ToFloat64(f.m.ThreadTransitions.WithLabelValues("bot", "agent", "pass_thread_control")); n != 1 {
			t.Errorf("bot→agent transitions counted = %v, want 1", n)
		}
		var messages int
		if err := b.Open(t).Reader().QueryRow(`SELECT count(*) FROM messages WHERE psid = $1`, psid).Scan(&messages); err != nil {
			t.Fatal(err)
		}
		if messages != 1 {
			t.Errorf("messages stored = %d, want 1", messages)
		}
	})
}

func TestIdleAfterInactivity(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b, "bot")
		f.ingest(t, msg(S, "m1", 0), pass(botApp, ourApp, 1))
		th, _ := f.get(t)
		wantExp := t0.Add(time.Minute + 24*time.Hour)
		if th.ExpiresAt == nil || !th.ExpiresAt.Equal(wantExp) {
			t.Fatalf("expires_at = %v, want %v", th.ExpiresAt, wantExp)
		}
		f.clock.Set(wantExp.Add(-time.Second))
		if n, err := f.svc.ExpireIdle(context.Background()); err != nil || n != 0 {
			t.Fatalf("ExpireIdle before expiry = %d, %v; want 0", n, err)
		}
		f.clock.Set(wantExp.Add(time.Minute))
		if n, err := f.svc.ExpireIdle(context.Background()); err != nil || n != 1 {
			t.Fatalf("ExpireIdle = %d, %v; want 1", n, err)
		}
		th, got := f.get(t)
		if th.Owner != "idle" || th.ExpiresAt != nil {
			t.Errorf("owner = %s expires = %v, want idle and nil", th.Owner, th.ExpiresAt)
		}
		last := got[len(got)-1]
		if diff := cmp.Diff(step{"agent", "idle", "", "expired", 24*60 + 1}, last); diff != "" {
			t.Errorf("last step (-want +got):\n%s", diff)
		}
		// A second sweep finds nothing.
		if n, _ := f.svc.ExpireIdle(context.Background()); n != 0 {
			t.Errorf("second sweep moved %d threads", n)
		}
	})
}

func TestCustomerActivityExtendsExpiry(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b, "bot")
		f.ingest(t, pass(botApp, ourApp, 0), msg(M, "m1", 60))
		th, _ := f.get(t)
		if want := t0.Add(time.Hour + 24*time.Hour); th.ExpiresAt == nil || !th.ExpiresAt.Equal(want) {
			t.Errorf("expires_at = %v, want %v", th.ExpiresAt, want)
		}
		// An event after the expiry, before any sweep: the thread went idle
		// at its expiry, then the new evidence applies.
		f.ingest(t, msg(S, "m2", 26*60))
		_, got := f.get(t)
		want := []step{
			{"idle", "agent", ourApp, "pass_thread_control", 0},
			{"agent", "idle", "", "expired", 25 * 60},
			{"idle", "bot", botApp, "customer_message", 26 * 60},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
	})
}

func TestRequestIsRecordedAndClearedByTheHandover(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b, "agent")
		f.ingest(t, msg(M, "m1", 0), request(botApp, 1))
		th, _ := f.get(t)
		if th.PendingAppID != botApp || th.PendingAt == nil {
			t.Fatalf("pending = %q %v, want %s", th.PendingAppID, th.PendingAt, botApp)
		}
		f.ingest(t, take(ourApp, botApp, 2)) // e.g. handed over
		th, _ = f.get(t)
		if th.PendingAppID != "" || th.Owner != "bot" {
			t.Errorf("after handover: pending=%q owner=%s", th.PendingAppID, th.Owner)
		}
	})
}

func TestGetUnknownThread(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b, "bot")
		if _, _, err := f.svc.Get(context.Background(), page, "nobody"); err != handover.ErrNotFound {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
	})
}

// TestParallelProcessesAgree feeds the same thread's events to two services
// on one database (two handoverd processes), concurrently and in different
// orders, and checks they end in the state one process reaches in order.
func TestParallelProcessesAgree(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		var evs []messenger.Event
		for i := 0; i < 40; i++ {
			switch i % 4 {
			case 0:
				evs = append(evs, msg(S, fmt.Sprintf("s%d", i), i))
			case 1:
				evs = append(evs, pass(botApp, ourApp, i))
			case 2:
				evs = append(evs, msg(M, fmt.Sprintf("m%d", i), i))
			case 3:
				evs = append(evs, take(ourApp, inbox, i))
			}
		}
		// Reference: one process, in order, on its own database.
		ref := newFixture(t, storetest.SQLite(t), "bot")
		for _, ev := range evs {
			ref.ingest(t, ev)
		}
		want, _ := ref.get(t)

		a, c := newFixture(t, b, "bot"), newFixture(t, b, "bot")
		c.svc = handover.New(handover.Options{DB: b.Open(t), AppID: ourApp,
			Pages: []config.Page{{ID: page, AccessToken: "tok", DefaultApp: "bot", BotAppID: botApp, ClientID: 1}},
			Clock: a.clock.Paced(), Metrics: metrics.New(), Logger: zerolog.Nop()})
		done := make(chan error, 2)
		go func() {
			var err error
			for _, ev := range evs {
				err = errorsJoin(err, a.svc.Ingest(context.Background(), []messenger.Event{ev}))
			}
			done <- err
		}()
		go func() {
			var err error
			for i := len(evs) - 1; i >= 0; i-- {
				err = errorsJoin(err, c.svc.Ingest(context.Background(), []messenger.Event{evs[i]}))
			}
			done <- err
		}()
		for i := 0; i < 2; i++ {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		got, _ := a.get(t)
		type state struct {
			Owner     handover.Owner
			AppID     string
			StateAt   time.Time
			ExpiresAt *time.Time
		}
		if diff := cmp.Diff(state{want.Owner, want.OwnerAppID, want.StateAt, want.ExpiresAt},
			state{got.Owner, got.OwnerAppID, got.StateAt, got.ExpiresAt}); diff != "" {
			t.Errorf("state (-one process in order +two processes in parallel):\n%s", diff)
		}
		var events, messages int
		db := b.Open(t)
		_ = db.Reader().QueryRow(`SELECT count(*) FROM webhook_events`).Scan(&events)
		_ = db.Reader().QueryRow(`SELECT count(*) FROM messages`).Scan(&messages)
		if events != len(evs) || messages != 20 {
			t.Errorf("stored %d events and %d messages, want %d and 20", events, messages, len(evs))
		}
	})
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// TestRaceStandbyMessageAndPass: the customer's message routed on standby
// (the bot still owned the thread) and the bot's pass to us, delivered in
// either order, end with the agents owning the thread and the message kept.
func TestRaceStandbyMessageAndPass(t *testing.T) {
	for _, order := range []string{"message first", "pass first"} {
		t.Run(order, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, b storetest.Backend) {
				f := newFixture(t, b, "bot")
				f.ingest(t, msg(S, "m0", 0))
				m, p := msg(S, "m1", 2), pass(botApp, ourApp, 3)
				if order == "message first" {
					f.ingest(t, m)
					f.ingest(t, p)
				} else {
					f.ingest(t, p)
					f.ingest(t, m)
				}
				th, got := f.get(t)
				if th.Owner != handover.OwnerAgent {
					t.Errorf("owner = %s, want agent; history %+v", th.Owner, got)
				}
				if want := t0.Add(2 * time.Minute); th.LastCustomerAt == nil || !th.LastCustomerAt.Equal(want) {
					t.Errorf("last customer message = %v, want %v", th.LastCustomerAt, want)
				}
			})
		})
	}
}

func TestEventOutcomesAreStored(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b, "bot")
		f.ingest(t, pass(botApp, ourApp, 5))
		// In one batch: evidence older than the pass (stale), a new message,
		// and a second copy of it.
		f.ingest(t, msg(S, "old", 1), msg(M, "new", 6), msg(M, "new", 6))
		rows, err := b.Open(t).Reader().Query(`SELECT kind, outcome FROM webhook_events WHERE psid = $1 ORDER BY occurred_at`, psid)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got [][2]string
		for rows.Next() {
			var k, o string
			if err := rows.Scan(&k, &o); err != nil {
				t.Fatal(err)
			}
			got = append(got, [2]string{k, o})
		}
		want := [][2]string{{"message", "stale"}, {"pass_thread_control", "applied"}, {"message", "applied"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("stored events (-want +got):\n%s", diff)
		}
		if n := testutil.ToFloat64(f.m.WebhookEvents.WithLabelValues("message", "duplicate")); n != 1 {
			t.Errorf("duplicate messages counted = %v, want 1", n)
		}
		if n := testutil.ToFloat64(f.m.WebhookEvents.WithLabelValues("message", "stale")); n != 1 {
			t.Errorf("stale messages counted = %v, want 1", n)
		}
	})
}
