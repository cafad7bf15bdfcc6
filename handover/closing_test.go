package handover

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/internal/clocktest"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store/storetest"
)

// onLine runs hook, once, on the first log line containing every one of
// match, in the logging goroutine, before the line is written: a test can
// act at the instant a service logs something, no sooner, no later.
type onLine struct {
	match [][]byte
	once  sync.Once
	hook  func()
}

func (w *onLine) Write(p []byte) (int, error) {
	for _, m := range w.match {
		if !bytes.Contains(p, m) {
			return len(p), nil
		}
	}
	w.once.Do(w.hook)
	return len(p), nil
}

// TestNoAgentMessageOnceTheHandBackIsDecided: an agent's message sent at
// the instant the close of their intervention has given the thread back
// (the transition to the bot is committed, the close not yet recorded) is
// refused, and asks Facebook for nothing — before the intervention's
// closing state, it was queued and asked for control back
// (request_thread_control) for an intervention about to close.
func TestNoAgentMessageOnceTheHandBackIsDecided(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
		g := &callLog{}
		var svc *Service
		var iv Intervention
		var during struct {
			status string
			code   apperr.Code
			queued int64
		}
		log := &onLine{match: [][]byte{[]byte(`"thread transition"`), []byte(`"to":"bot"`)}, hook: func() {
			got, err := svc.Intervention(ctx, iv.ID)
			if err != nil {
				t.Error(err)
			}
			during.status = got.Status
			m, err := svc.SendAsAgent(ctx, settlePage, settlePSID, iv.ID, "ann", json.RawMessage(`{"text":"one more thing"}`), 0)
			during.code, during.queued = apperr.CodeOf(err), m.ID
		}}
		svc = New(Options{
			DB: b.Open(t), AppID: "111", Graph: g, Clock: clocktest.New(t0).Paced(), Logger: zerolog.New(log),
			Pages: []config.Page{{ID: settlePage, AccessToken: "tok", DefaultApp: config.DefaultAppBot, BotAppID: settleBot, ClientID: 1}},
		})
		hi := messenger.Event{Kind: messenger.KindMessage, Channel: messenger.ChannelMessaging, PageID: settlePage, PSID: settlePSID,
			Time: t0.Add(-2 * time.Minute), Raw: []byte(`{}`), Message: &messenger.Message{MID: "c.1", Text: "hi"}}
		passed := messenger.Event{Kind: messenger.KindPass, Channel: messenger.ChannelMessaging, PageID: settlePage, PSID: settlePSID,
			Time: t0.Add(-time.Minute), Raw: []byte(`{}`), Handover: &messenger.Handover{PreviousOwnerAppID: settleBot, NewOwnerAppID: "111"}}
		if err := svc.Ingest(ctx, []messenger.Event{hi, passed}); err != nil {
			t.Fatal(err)
		}
		var err error
		if iv, _, err = svc.OpenIntervention(ctx, settlePage, settlePSID, "ann"); err != nil {
			t.Fatal(err)
		}
		closed, err := svc.CloseIntervention(ctx, iv.ID, "ann", CloseByAgent)
		if err != nil {
			t.Fatal(err)
		}
		type result struct {
			StatusDuring string
			SendDuring   apperr.Code
			Queued       int64
			Final        string
			Calls        []string
		}
		want := result{StatusDuring: InterventionClosing, SendDuring: apperr.Conflict, Final: InterventionClosed, Calls: []string{opPass}}
		got := result{during.status, during.code, during.queued, closed.Status, g.made()}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("a message at the instant of the give-back (-want +got):\n%s", diff)
		}
		// The closing state never outlives the close: a new intervention opens.
		if _, _, err := svc.OpenIntervention(ctx, settlePage, settlePSID, "ann"); err != nil {
			t.Errorf("reopening after the close: %v", err)
		}
	})
}

// TestCloseThatCannotGiveBackKeepsTheIntervention: when the give-back
// fails, the intervention is open again (agents may keep writing); a close
// a crashed process left closing is finished by the sweep, as it was begun.
func TestCloseThatCannotGiveBackKeepsTheIntervention(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newSettleFixture(t, b)
		iv, err := f.svc.Interventions(ctx, settlePage, settlePSID)
		if err != nil || len(iv) != 1 {
			t.Fatalf("interventions: %v %v", iv, err)
		}
		id := iv[0].ID
		// A hand-back already in flight elsewhere and failing: the close waits for it and fails.
		f.handBackInFlight(t)
		f.exec(t, `UPDATE control_ops SET direction = 'to_agent' WHERE page_id = $1 AND psid = $2`, settlePage, settlePSID)
		if _, err := f.svc.CloseIntervention(ctx, id, "ann", CloseByAgent); apperr.CodeOf(err) != apperr.Conflict {
			t.Fatalf("close with a handover to the agents in flight: %v, want a conflict", err)
		}
		got, err := f.svc.Intervention(ctx, id)
		if err != nil || got.Status != InterventionOpen || got.ClosedAt != nil || got.ClosedBy != "" {
			t.Fatalf("after the failed close: %+v %v, want open as before", got, err)
		}
		f.exec(t, `DELETE FROM control_ops WHERE page_id = $1 AND psid = $2`, settlePage, settlePSID)

		// A process died after deciding the close.
		f.exec(t, `UPDATE interventions SET status = 'closing', closed_by = 'bob', closed_at = $2, close_reason = 'agent' WHERE id = $1`,
			id, f.svc.now().Add(-time.Hour).UnixMilli())
		if _, err := f.svc.SendAsAgent(ctx, settlePage, settlePSID, id, "ann", json.RawMessage(`{"text":"late"}`), 0); apperr.CodeOf(err) != apperr.Conflict {
			t.Errorf("send to a closing intervention: %v, want a conflict", err)
		}
		if _, _, err := f.svc.OpenIntervention(ctx, settlePage, settlePSID, "ann"); apperr.CodeOf(err) != apperr.Conflict {
			t.Errorf("open while one is closing: %v, want a conflict", err)
		}
		if n, err := f.svc.CloseIdleInterventions(ctx); err != nil || n != 1 {
			t.Fatalf("sweep closed %d: %v, want 1", n, err)
		}
		got, err = f.svc.Intervention(ctx, id)
		if err != nil || got.Status != InterventionClosed || got.ClosedBy != "bob" || got.CloseReason != CloseByAgent {
			t.Errorf("after the sweep: %+v %v, want closed by bob (agent)", got, err)
		}
		if diff := cmp.Diff([]string{opPass}, f.graph.made()); diff != "" {
			t.Errorf("Graph calls (-want +got):\n%s", diff)
		}
	})
}
