package handover_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/store/storetest"
)

// batchBots is a bots consumer that sees whole batches, says the relay
// bot "sample" answers every thread it is told of, and logs what it sees.
type batchBots struct {
	mu  *sync.Mutex
	log *[]string
}

func (b batchBots) BeginChanges(_ context.Context, _ *store.Tx, chs []handover.Change) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	*b.log = append(*b.log, fmt.Sprintf("bots: begin %d", len(chs)))
	return nil
}

func (b batchBots) ThreadChanged(_ context.Context, tx *store.Tx, ch handover.Change) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	*b.log = append(*b.log, "bots: "+describe(ch))
	handover.SetBotAnswering(tx, ch.Thread.PageID, ch.Thread.PSID, "sample")
	return nil
}

func (b batchBots) EndChanges(context.Context, *store.Tx) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	*b.log = append(*b.log, "bots: end")
	return nil
}

// answering is an inbox consumer that logs who answers each thread, as
// the consumers before it said in the transaction.
type answering struct {
	mu  *sync.Mutex
	log *[]string
}

func (a answering) ThreadChanged(_ context.Context, tx *store.Tx, ch handover.Change) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	bot, known := handover.BotAnswering(tx, ch.Thread.PageID, ch.Thread.PSID)
	*a.log = append(*a.log, fmt.Sprintf("inbox: %s, answered by %q (%v)", describe(ch), bot, known))
	return nil
}

func describe(ch handover.Change) string {
	switch {
	case ch.Event != nil:
		return "event " + ch.Event.Message.MID + " " + ch.Outcome
	case len(ch.Transitions) > 0:
		return "owner of " + ch.Thread.PSID + " → " + string(ch.Transitions[0].To)
	case ch.Claim != nil:
		return "claim of " + ch.Thread.PSID
	}
	return "?"
}

// TestConsumersSeeABatchInOrder: a batch observer is told of the whole
// batch first and last; each change reaches the bots, then the inbox,
// which sees who the bots said answers the thread — in that transaction
// only.
func TestConsumersSeeABatchInOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newFixture(t, b, config.DefaultAppBot)
		var mu sync.Mutex
		var log []string
		f.svc.SetConsumers(handover.Consumers{Bots: batchBots{&mu, &log}, Inbox: answering{&mu, &log}})
		a, c := msg(S, "m1", 0), msg(S, "m2", 1)
		c.PSID = "5002"
		f.ingest(t, a, c)
		if err := b.Open(t).InTx(ctx, func(tx *store.Tx) error { return f.svc.ClaimByAgents(ctx, tx, page, psid, "alice", true) }); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"bots: begin 4",
			"bots: event m1 applied", `inbox: event m1 applied, answered by "sample" (true)`,
			"bots: owner of 5001 → bot", `inbox: owner of 5001 → bot, answered by "sample" (true)`,
			"bots: event m2 applied", `inbox: event m2 applied, answered by "sample" (true)`,
			"bots: owner of 5002 → bot", `inbox: owner of 5002 → bot, answered by "sample" (true)`,
			"bots: end",
			// Another transaction: a claim, on its own.
			"bots: claim of 5001", `inbox: claim of 5001, answered by "sample" (true)`,
		}
		if diff := cmp.Diff(want, log); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		// Outside the bots' transactions nothing is known.
		if err := b.Open(t).InTx(ctx, func(tx *store.Tx) error {
			if bot, known := handover.BotAnswering(tx, page, psid); known || bot != "" {
				t.Errorf("in a new transaction: %q %v, want nothing known", bot, known)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
}

// refuses is a consumer that fails every change of one thread.
type refuses struct{ psid string }

func (r refuses) ThreadChanged(_ context.Context, _ *store.Tx, ch handover.Change) error {
	if ch.Thread.PSID == r.psid {
		return errors.New("refused")
	}
	return nil
}

// TestAFailingWebhookFailsAlone: webhooks committed together answer each
// for itself: when one cannot be applied (here a consumer refuses its
// thread), it gets the error and nothing of it is stored, and the others
// commit.
func TestAFailingWebhookFailsAlone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newFixture(t, b, config.DefaultAppBot)
		f.svc.SetConsumers(handover.Consumers{Inbox: refuses{"bad"}})
		who := []string{"a", "b", "bad", "c", "d", "e"}
		errs := make([]error, len(who))
		var wg sync.WaitGroup
		for i, p := range who {
			ev := msg(S, "m-"+p, i)
			ev.PSID = p
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = f.svc.Ingest(ctx, []messenger.Event{ev})
			}()
		}
		wg.Wait()
		got := map[string]string{}
		for i, p := range who {
			state := "error"
			if errs[i] == nil {
				th, _, err := f.svc.Get(ctx, page, p)
				state = string(th.Owner)
				if err != nil {
					state = err.Error()
				}
			} else if _, _, err := f.svc.Get(ctx, page, p); !errors.Is(err, handover.ErrNotFound) {
				state = "error, yet stored"
			}
			got[p] = state
		}
		want := map[string]string{"a": "bot", "b": "bot", "bad": "error", "c": "bot", "d": "bot", "e": "bot"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

// TestSenderLabels: who sent an agent message, as history shows it and
// as Messenger's tags allow.
func TestSenderLabels(t *testing.T) {
	type view struct {
		Label     string
		Automated bool
	}
	got := map[handover.SenderKind]view{}
	for _, k := range []handover.SenderKind{handover.SenderAgent, handover.SenderRelayBot, handover.SenderPageInbox, handover.SenderBotApp} {
		s := handover.Sender{Kind: k, Name: "sample"}
		got[k] = view{s.Label(), s.Automated()}
	}
	want := map[handover.SenderKind]view{
		handover.SenderAgent:     {"sample", false},
		handover.SenderRelayBot:  {"relay bot sample", true},
		handover.SenderPageInbox: {"sample", false},
		handover.SenderBotApp:    {"sample", true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestReadingAnExpiredThreadExpiresIt: a thread read after its expiry is
// idle, with the expiry in its history, before any sweep has run.
func TestReadingAnExpiredThreadExpiresIt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b, config.DefaultAppBot)
		f.ingest(t, msg(S, "m1", 0))
		f.clock.Set(t0.Add(24 * time.Hour))
		th, got := f.get(t)
		want := []step{{"idle", "bot", botApp, "customer_message", 0}, {"bot", "idle", "", "expired", 24 * 60}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		if th.Owner != handover.OwnerIdle || th.ExpiresAt != nil {
			t.Errorf("owner %s, expires %v; want idle, no expiry", th.Owner, th.ExpiresAt)
		}
		if n, err := f.svc.ExpireIdle(context.Background()); n != 0 || err != nil {
			t.Errorf("the sweep after: %d, %v; want nothing left", n, err)
		}
	})
}

// TestRunReconciler: the reconciler checks the doubtful threads at once,
// then runs until its context ends.
func TestRunReconciler(t *testing.T) {
	eachSim(t, func(t *testing.T, e *simEnv) {
		ctx, cancel := context.WithCancel(context.Background())
		e.customer(page, psid)
		if _, err := e.svc.AcquireControl(ctx, page, psid, "ann"); err != nil {
			t.Fatal(err)
		}
		e.sim.SetOwner(page, psid, ourApp) // granted, its webhook lost
		e.clock.Advance(3 * time.Minute)
		done := make(chan struct{})
		go func() { e.svc.RunReconciler(ctx); close(done) }()
		deadline := time.Now().Add(20 * time.Second)
		for {
			if th, _ := e.thread(page, psid); th.Owner == handover.OwnerAgent {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the doubtful thread was never corrected")
			}
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		<-done
	}, func(o *handover.Options) { o.Reconcile = config.Reconcile{Interval: time.Hour} })
}
