package handover

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/internal/clocktest"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/store/storetest"
)

// callLog is a Graph that answers every call and records its name.
type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (g *callLog) note(op string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, op)
}

func (g *callLog) made() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.calls...)
}

func (g *callLog) Send(context.Context, messenger.PageRef, messenger.SendRequest) (messenger.SendResult, error) {
	g.note(messenger.OpSend)
	return messenger.SendResult{MessageID: "m.1"}, nil
}

func (g *callLog) PassThreadControl(context.Context, messenger.PageRef, string, string, string) error {
	g.note(opPass)
	return nil
}

func (g *callLog) TakeThreadControl(context.Context, messenger.PageRef, string, string) error {
	g.note(opTake)
	return nil
}

func (g *callLog) RequestThreadControl(context.Context, messenger.PageRef, string, string) error {
	g.note(opRequest)
	return nil
}

func (g *callLog) ReleaseThreadControl(context.Context, messenger.PageRef, string, string) error {
	g.note(opRelease)
	return nil
}

func (g *callLog) ThreadOwner(context.Context, messenger.PageRef, string) (messenger.ThreadOwner, error) {
	g.note(messenger.OpThreadOwner)
	return messenger.ThreadOwner{}, nil
}

const (
	settlePage = "1001"
	settlePSID = "5001"
	settleBot  = "222"
)

// settleFixture is an agent-owned thread with an open intervention and one
// queued agent message.
type settleFixture struct {
	svc   *Service
	clock *clocktest.Fake
	graph *callLog
	msg   AgentMessage
}

func newSettleFixture(t *testing.T, b storetest.Backend) *settleFixture {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	g := &callLog{}
	clk := clocktest.New(t0)
	svc := New(Options{
		DB: b.Open(t), AppID: "111", Graph: g, Clock: clk.Paced(), Logger: zerolog.Nop(),
		Pages: []config.Page{{ID: settlePage, AccessToken: "tok", DefaultApp: config.DefaultAppBot, BotAppID: settleBot, ClientID: 1}},
	})
	ev := func(kind messenger.Kind, at time.Duration) messenger.Event {
		return messenger.Event{Kind: kind, Channel: messenger.ChannelMessaging, PageID: settlePage, PSID: settlePSID, Time: t0.Add(at), Raw: []byte(`{}`)}
	}
	hi := ev(messenger.KindMessage, -2*time.Minute)
	hi.Message = &messenger.Message{MID: "c.1", Text: "hi"}
	passed := ev(messenger.KindPass, -time.Minute)
	passed.Handover = &messenger.Handover{PreviousOwnerAppID: settleBot, NewOwnerAppID: "111"}
	if err := svc.Ingest(ctx, []messenger.Event{hi, passed}); err != nil {
		t.Fatal(err)
	}
	iv, _, err := svc.OpenIntervention(ctx, settlePage, settlePSID, "ann")
	if err != nil {
		t.Fatal(err)
	}
	m, err := svc.SendAsAgent(ctx, settlePage, settlePSID, iv.ID, "ann", json.RawMessage(`{"text":"one moment"}`), 0)
	if err != nil || m.Status != SendWaiting {
		t.Fatalf("queue: %+v %v", m, err)
	}
	if calls := g.made(); len(calls) != 0 {
		t.Fatalf("Graph calls before the test: %v", calls)
	}
	return &settleFixture{svc: svc, clock: clk, graph: g, msg: m}
}

// exec runs one statement.
func (f *settleFixture) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if err := f.svc.db.InTx(context.Background(), func(tx *store.Tx) error {
		_, err := tx.ExecContext(context.Background(), query, args...)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// inFlightElsewhere has another process's sender hold the message, handing
// it to the Send API, while a hand-back of the identity is in flight.
func (f *settleFixture) inFlightElsewhere(t *testing.T) {
	t.Helper()
	now := f.svc.now()
	f.exec(t, `UPDATE agent_messages SET sending = 1, lease_until = $2 WHERE id = $1`, f.msg.ID, store.Millis(now.Add(leaseFor)))
	f.handBackInFlight(t)
}

func (f *settleFixture) handBackInFlight(t *testing.T) {
	t.Helper()
	f.exec(t, `INSERT INTO control_ops (page_id, psid, direction, op, target_app_id, actor, status, created_at)
		VALUES ($1, $2, 'give_back', 'pass_thread_control', $3, 'ann', 'in_flight', $4)`, settlePage, settlePSID, settleBot, store.Millis(f.svc.now()))
}

// status returns the message's status and error.
func (f *settleFixture) status(t *testing.T) (string, string) {
	t.Helper()
	m, err := f.svc.AgentMessage(context.Background(), f.msg.ID)
	if err != nil {
		t.Fatal(err)
	}
	return m.Status, m.Error
}

// TestMessageInFlightIsNeverSettledByOthers: while a sender (of any
// process) hands a message to the Send API and a hand-back waits for it,
// neither another sender that listed it as due before the claim nor the
// agent's request asking for control fails or cancels it.
func TestMessageInFlightIsNeverSettledByOthers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newSettleFixture(t, b)
		f.inFlightElsewhere(t)

		// Another sender listed it as due before it was claimed.
		if ok, err := f.svc.sendOne(ctx, f.msg.ID); ok || err != nil {
			t.Fatalf("sendOne = %v, %v; want nothing done", ok, err)
		}
		if st, why := f.status(t); st != SendWaiting {
			t.Errorf("after another sender's look: %s %q, want still waiting (in flight)", st, why)
		}
		// The request that queued it asks for control after the claim.
		if refused, err := f.svc.acquireFor(ctx, f.msg, "thread control could not be acquired: "); refused != nil || err != nil {
			t.Errorf("acquireFor = %v, %v; want no failure of the message's", refused, err)
		}
		if st, why := f.status(t); st != SendWaiting {
			t.Errorf("after the late request for control: %s %q, want still waiting (in flight)", st, why)
		}
		if calls := f.graph.made(); len(calls) != 0 {
			t.Errorf("Graph calls: %v, want none", calls)
		}
	})
}

// TestHandBackSettlesAMessageAskingForControl: a queued message whose
// request for control meets a hand-back in flight is left to the hand-back
// (cancelled with its reason, not failed as a control failure); once it is
// settled, asking for control for it asks Facebook for nothing.
func TestHandBackSettlesAMessageAskingForControl(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newSettleFixture(t, b)
		f.handBackInFlight(t)
		if refused, err := f.svc.acquireFor(ctx, f.msg, "thread control could not be acquired: "); refused != nil || err != nil {
			t.Errorf("acquireFor = %v, %v; want the message left to the hand-back", refused, err)
		}
		if st, why := f.status(t); st != SendWaiting {
			t.Fatalf("after the request for control: %s %q, want waiting for the hand-back", st, why)
		}
		if err := f.svc.awaitSends(ctx, settlePage, settlePSID); err != nil {
			t.Fatal(err)
		}
		if st, why := f.status(t); st != SendFailed || why != cancelHandedBack {
			t.Errorf("after the hand-back: %s %q, want failed %q", st, why, cancelHandedBack)
		}
		// The hand-back is done: the thread is the bot's.
		f.exec(t, `UPDATE control_ops SET status = 'succeeded' WHERE page_id = $1 AND psid = $2`, settlePage, settlePSID)
		f.exec(t, `UPDATE threads SET owner = 'bot', owner_app_id = $3 WHERE page_id = $1 AND psid = $2`, settlePage, settlePSID, settleBot)
		if refused, err := f.svc.acquireFor(ctx, f.msg, "thread control could not be acquired: "); refused != nil || err != nil {
			t.Errorf("acquireFor after the hand-back = %v, %v", refused, err)
		}
		if calls := f.graph.made(); len(calls) != 0 {
			t.Errorf("Graph calls: %v, want none (a cancelled message never asks for control back)", calls)
		}
	})
}
