package handover

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/store/storetest"
)

// TestDecideControl specifies each control operation's decision from what
// it reads under the thread's lock: the Graph call, waiting for an
// identical operation in flight, settling the agents' queued messages on
// a hand-back, or a refusal.
func TestDecideControl(t *testing.T) {
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	botPage := config.Page{ID: "1001", DefaultApp: config.DefaultAppBot, BotAppID: "222"}
	agentPage := config.Page{ID: "1003", DefaultApp: config.DefaultAppAgent, BotAppID: "222"}
	nonePage := config.Page{ID: "1004", DefaultApp: config.DefaultAppNone, BotAppID: "222"}
	s := &Service{appID: "111", hcfg: config.Handover{ControlTimeout: 2 * time.Minute},
		pages: map[string]config.Page{botPage.ID: botPage, agentPage.ID: agentPage, nonePage.ID: nonePage}}
	type op struct {
		dir  Direction
		plan func(controlFacts) (controlPlan, error)
	}
	acquire := func(pg config.Page) op {
		return op{ToAgent, func(f controlFacts) (controlPlan, error) { return s.acquirePlan(pg.ID, f), nil }}
	}
	acquireFor := func(pg config.Page) op {
		return op{ToAgent, func(f controlFacts) (controlPlan, error) { return s.acquireForPlan(pg.ID, f), nil }}
	}
	toBot := op{ToBot, func(f controlFacts) (controlPlan, error) { return s.toBotPlan("222", f) }}
	giveBack := func(pg config.Page) op {
		return op{GiveBack, func(f controlFacts) (controlPlan, error) { return giveBackPlan(pg, f), nil }}
	}
	owned := func(o Owner, app string) Thread { return Thread{Owner: o, OwnerAppID: app} }
	pending := func(o Owner, app string, ago time.Duration) Thread {
		at := now.Add(-ago)
		return Thread{Owner: o, OwnerAppID: app, PendingAppID: "111", PendingAt: &at}
	}
	none := controlPlan{op: opNone}
	tests := []struct {
		name  string
		op    op
		facts controlFacts
		want  controlStep
		err   string // the Conflict's message
	}{
		{name: "acquire from the bot: request", op: acquire(botPage), facts: controlFacts{Thread: owned(OwnerBot, "222")},
			want: controlStep{Plan: controlPlan{op: opRequest}}},
		{name: "acquire from nobody where handoverd is the default app: take", op: acquire(agentPage), facts: controlFacts{Thread: owned(OwnerIdle, "")},
			want: controlStep{Plan: controlPlan{op: opTake}}},
		{name: "acquire on a zero-config Page: request", op: acquire(nonePage), facts: controlFacts{Thread: owned(OwnerOther, "")},
			want: controlStep{Plan: controlPlan{op: opRequest}}},
		{name: "acquire what the agents hold: nothing", op: acquire(botPage), facts: controlFacts{Thread: owned(OwnerAgent, "111")},
			want: controlStep{Plan: none}},
		{name: "acquire while our request is pending: nothing", op: acquire(botPage), facts: controlFacts{Thread: pending(OwnerBot, "222", time.Minute)},
			want: controlStep{Plan: none}},
		{name: "acquire once our request is overdue: request again", op: acquire(botPage),
			facts: controlFacts{Thread: pending(OwnerBot, "222", 2*time.Minute)}, want: controlStep{Plan: controlPlan{op: opRequest}}},
		{name: "acquire for a message still waiting", op: acquireFor(agentPage), facts: controlFacts{Thread: owned(OwnerBot, "222"), MessageWaiting: true},
			want: controlStep{Plan: controlPlan{op: opTake}}},
		{name: "acquire for a message no longer waiting: nothing", op: acquireFor(agentPage), facts: controlFacts{Thread: owned(OwnerBot, "222")},
			want: controlStep{Plan: none}},
		{name: "to the bot: pass, settling queued messages", op: toBot, facts: controlFacts{Thread: owned(OwnerAgent, "111")},
			want: controlStep{Plan: controlPlan{op: opPass, target: "222"}, SettleQueued: true}},
		{name: "to the bot it is already with: nothing, settling queued messages", op: toBot, facts: controlFacts{Thread: owned(OwnerBot, "222")},
			want: controlStep{Plan: none, SettleQueued: true}},
		{name: "to the bot during an intervention: refused", op: toBot,
			facts: controlFacts{Thread: owned(OwnerAgent, "111"), Intervention: &Intervention{ID: 7}},
			err:   "intervention 7 is open on this identity; close it first"},
		{name: "to the bot while our request is pending: refused", op: toBot, facts: controlFacts{Thread: pending(OwnerOther, "", time.Minute)},
			err: "a handover to the agents is pending for this identity"},
		{name: "to the bot once our request is overdue: pass", op: toBot, facts: controlFacts{Thread: pending(OwnerOther, "", 3*time.Minute)},
			want: controlStep{Plan: controlPlan{op: opPass, target: "222"}, SettleQueued: true}},
		{name: "give back where the bot is the default app: pass to it", op: giveBack(botPage), facts: controlFacts{Thread: owned(OwnerAgent, "111")},
			want: controlStep{Plan: controlPlan{op: opPass, target: "222"}, SettleQueued: true}},
		{name: "give back elsewhere: release", op: giveBack(agentPage), facts: controlFacts{Thread: owned(OwnerAgent, "111")},
			want: controlStep{Plan: controlPlan{op: opRelease}, SettleQueued: true}},
		{name: "give back what the agents do not hold: nothing, settling queued messages", op: giveBack(botPage),
			facts: controlFacts{Thread: owned(OwnerPageInbox, config.PageInboxAppID)}, want: controlStep{Plan: none, SettleQueued: true}},
		{name: "the same operation in flight: wait for it", op: giveBack(botPage),
			facts: controlFacts{Thread: owned(OwnerAgent, "111"), InFlight: 9, InFlightDir: GiveBack}, want: controlStep{Wait: 9}},
		{name: "another operation in flight: refused", op: acquire(botPage),
			facts: controlFacts{Thread: owned(OwnerAgent, "111"), InFlight: 9, InFlightDir: ToBot},
			err:   "a handover to_bot is already in flight for this identity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.facts.Now = now
			got, err := decideControl(tt.op.dir, tt.facts, tt.op.plan)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(controlPlan{})); diff != "" {
				t.Errorf("step (-want +got):\n%s", diff)
			}
			var gotErr string
			if err != nil {
				if apperr.CodeOf(err) != apperr.Conflict {
					t.Errorf("error %v is no conflict", err)
				}
				gotErr = apperr.As(err).Message
			}
			if gotErr != tt.err {
				t.Errorf("error %q, want %q", gotErr, tt.err)
			}
		})
	}
}

// TestAskOwnerAfter: only a hand-back's refusal as not the owner, or a
// call Facebook did not answer, leaves the owner to be asked of Graph.
func TestAskOwnerAfter(t *testing.T) {
	notOwner := &messenger.GraphError{Code: 10, Subcode: 2018300, Class: messenger.ClassNotOwner}
	noAnswer := &messenger.GraphError{Err: errors.New("connection reset"), Class: messenger.ClassTransient}
	refused := &messenger.GraphError{Code: 100, Class: messenger.ClassBadRequest}
	got := map[string]bool{}
	for _, dir := range []Direction{ToAgent, ToBot, GiveBack} {
		for name, err := range map[string]error{"not owner": notOwner, "no answer": noAnswer, "refused": refused,
			"wrapped not owner": fmt.Errorf("pass: %w", notOwner)} {
			got[string(dir)+", "+name] = askOwnerAfter(dir, err)
		}
	}
	want := map[string]bool{
		"to_agent, not owner": false, "to_agent, no answer": false, "to_agent, refused": false, "to_agent, wrapped not owner": false,
		"to_bot, not owner": true, "to_bot, no answer": true, "to_bot, refused": false, "to_bot, wrapped not owner": true,
		"give_back, not owner": true, "give_back, no answer": true, "give_back, refused": false, "give_back, wrapped not owner": true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestAwaitOp: a caller that waited for another's identical operation
// answers as it ended: done (no call of its own), or failed with Graph's
// code, or with what failed when Graph gave none.
func TestAwaitOp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newSettleFixture(t, b)
		insert := func(status, errText string, code, sub int) int64 {
			t.Helper()
			var id int64
			if err := f.svc.db.InTx(ctx, func(tx *store.Tx) error {
				return tx.QueryRowContext(ctx, `INSERT INTO control_ops (page_id, psid, direction, op, target_app_id, actor, status, created_at, error, graph_code, graph_subcode)
					VALUES ($1, $2, 'to_agent', 'take_thread_control', '', 'ann', $3, $4, $5, $6, $7) RETURNING id`,
					settlePage, settlePSID, status, store.Millis(f.svc.now()), errText, code, sub).Scan(&id)
			}); err != nil {
				t.Fatal(err)
			}
			return id
		}
		type answer struct {
			Out Outcome
			Err string
		}
		var got []answer
		for _, id := range []int64{insert("succeeded", "", 0, 0), insert("failed", "boom", 10, 2018300), insert("failed", "abandoned", 0, 0)} {
			out, err := f.svc.awaitOp(ctx, id)
			a := answer{Out: out}
			if err != nil {
				a.Err = string(apperr.CodeOf(err)) + ": " + apperr.As(err).Message
			}
			got = append(got, a)
		}
		want := []answer{
			{Out: Outcome{Op: "take_thread_control", Noop: true, Owner: OwnerAgent}},
			{Err: "upstream: Facebook refused take_thread_control (code 10, subcode 2018300)"},
			{Err: "upstream: take_thread_control failed: abandoned"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

// TestAbandonedOperationNoLongerBlocks: an operation in flight blocks
// another direction's with a Conflict, until it is older than a crashed
// process's could be; then it is failed as abandoned and the thread is
// free.
func TestAbandonedOperationNoLongerBlocks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newSettleFixture(t, b)
		f.exec(t, `INSERT INTO control_ops (page_id, psid, direction, op, target_app_id, actor, status, created_at)
			VALUES ($1, $2, 'to_bot', 'pass_thread_control', $3, 'bob', 'in_flight', $4)`, settlePage, settlePSID, settleBot,
			store.Millis(f.svc.now().Add(-staleOpAfter+time.Second)))
		_, err := f.svc.AcquireControl(ctx, settlePage, settlePSID, "ann")
		if diff := cmp.Diff("a handover to_bot is already in flight for this identity", apperr.As(err).Message); diff != "" || apperr.CodeOf(err) != apperr.Conflict {
			t.Errorf("while the pass may still be under way: %v", err)
		}
		f.clock.Set(time.Date(2026, 11, 1, 9, 0, 2, 0, time.UTC))
		out, err := f.svc.AcquireControl(ctx, settlePage, settlePSID, "ann")
		if err != nil || out != (Outcome{Op: opNone, Noop: true, Owner: OwnerAgent}) {
			t.Errorf("once it is abandoned: %+v %v, want nothing to do", out, err)
		}
		var status, why string
		if err := f.svc.db.Reader().QueryRowContext(ctx, `SELECT status, error FROM control_ops`).Scan(&status, &why); err != nil {
			t.Fatal(err)
		}
		if status != "failed" || why != "abandoned" {
			t.Errorf("the old operation: %s %q, want failed as abandoned", status, why)
		}
	})
}
