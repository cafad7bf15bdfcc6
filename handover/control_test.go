package handover_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/messenger/simulator"
	"github.com/handoverd/handoverd/store/storetest"
)

// hops renders a thread's history as "from→to cause".
func hops(hist []step) []string {
	var out []string
	for _, h := range hist {
		out = append(out, string(h.From)+"→"+string(h.To)+" "+string(h.Cause))
	}
	return out
}

// TestControlOperations specifies the thread-control operations against
// Facebook (the simulator): which Graph call each makes from the thread's
// state, what it answers, and where the thread ends, in handoverd and at
// Facebook.
func TestControlOperations(t *testing.T) {
	ctx := context.Background()
	acquire := func(e *simEnv, pg string) (handover.Outcome, error) {
		return e.svc.AcquireControl(ctx, pg, psid, "ann")
	}
	toBot := func(e *simEnv, pg string) (handover.Outcome, error) { return e.svc.PassToBot(ctx, pg, psid, "", "ann") }
	giveBack := func(e *simEnv, pg string) (handover.Outcome, error) { return e.svc.GiveBack(ctx, pg, psid, "ann") }
	// Setups. The customer writing makes the Page's default app the owner.
	botOwns := func(e *simEnv, pg string) { e.customer(pg, psid) }
	agentsOwn := func(e *simEnv, pg string) {
		e.customer(pg, psid)
		if pg == page {
			e.botPasses(pg, psid)
		}
	}
	passedToBot := func(e *simEnv, pg string) {
		agentsOwn(e, pg)
		if _, err := toBot(e, pg); err != nil {
			e.t.Fatal(err)
		}
		e.flush()
	}
	type want struct {
		Out      handover.Outcome
		Err      failure
		Calls    []string // handoverd's Graph calls, in order
		Owner    handover.Owner
		Pending  bool
		SimOwner string // the owner at Facebook
		History  []string
	}
	tests := []struct {
		name  string
		page  string
		setup func(e *simEnv, pg string)
		op    func(e *simEnv, pg string) (handover.Outcome, error)
		want  want
	}{
		{
			name: "acquire on the bot's thread requests control", page: page, setup: botOwns, op: acquire,
			want: want{Out: handover.Outcome{Op: "request_thread_control", Owner: "bot", Pending: true}, Calls: []string{"request_thread_control"},
				Owner: "bot", Pending: true, SimOwner: botApp, History: []string{"idle→bot customer_message"}},
		},
		{
			name: "acquire while our request is pending asks for nothing", page: page,
			setup: func(e *simEnv, pg string) {
				botOwns(e, pg)
				if _, err := acquire(e, pg); err != nil {
					e.t.Fatal(err)
				}
				e.ours()
			}, op: acquire,
			want: want{Out: handover.Outcome{Op: "none", Noop: true, Owner: "bot", Pending: true},
				Owner: "bot", Pending: true, SimOwner: botApp, History: []string{"idle→bot customer_message"}},
		},
		{
			name: "acquire on a Page whose default app is handoverd takes control", page: agentPage, setup: passedToBot, op: acquire,
			want: want{Out: handover.Outcome{Op: "take_thread_control", Owner: "agent"}, Calls: []string{"take_thread_control"},
				Owner: "agent", SimOwner: ourApp,
				History: []string{"idle→agent customer_message", "agent→bot pass_thread_control", "bot→agent take_thread_control"}},
		},
		{
			name: "acquire when the agents hold the thread asks for nothing", page: agentPage, setup: agentsOwn, op: acquire,
			want: want{Out: handover.Outcome{Op: "none", Noop: true, Owner: "agent"}, Owner: "agent", SimOwner: ourApp,
				History: []string{"idle→agent customer_message"}},
		},
		{
			name: "a refused take fails with Graph's code and changes nothing", page: agentPage,
			setup: func(e *simEnv, pg string) {
				passedToBot(e, pg)
				e.ours()
				e.sim.InjectFault(simulator.Fault{Op: "take_thread_control", AppID: ourApp, Code: 10, Subcode: 2018300, Message: "(#10) not now"})
			}, op: acquire,
			want: want{Err: failure{Code: apperr.Upstream, Message: "Facebook refused take_thread_control: (#10) not now (code 10, subcode 2018300)"},
				Calls: []string{"take_thread_control"}, Owner: "bot", SimOwner: botApp,
				History: []string{"idle→agent customer_message", "agent→bot pass_thread_control"}},
		},
		{
			name: "pass to the Page's bot", page: agentPage, setup: agentsOwn, op: toBot,
			want: want{Out: handover.Outcome{Op: "pass_thread_control", Owner: "bot"}, Calls: []string{"pass_thread_control"},
				Owner: "bot", SimOwner: botApp, History: []string{"idle→agent customer_message", "agent→bot pass_thread_control"}},
		},
		{
			name: "pass to the bot that owns the thread asks for nothing", page: page, setup: botOwns, op: toBot,
			want: want{Out: handover.Outcome{Op: "none", Noop: true, Owner: "bot"}, Owner: "bot", SimOwner: botApp,
				History: []string{"idle→bot customer_message"}},
		},
		{
			name: "pass to the bot is refused while an intervention is open", page: agentPage,
			setup: func(e *simEnv, pg string) {
				agentsOwn(e, pg)
				if _, _, err := e.svc.OpenIntervention(ctx, pg, psid, "ann"); err != nil {
					e.t.Fatal(err)
				}
			}, op: toBot,
			want: want{Err: failure{Code: apperr.Conflict, Message: "intervention 1 is open on this identity; close it first"},
				Owner: "agent", SimOwner: ourApp, History: []string{"idle→agent customer_message"}},
		},
		{
			name: "pass to the bot on a Page without one needs the app", page: page, setup: botOwns,
			op: func(e *simEnv, pg string) (handover.Outcome, error) {
				return e.svc.PassToBot(ctx, "1009", psid, "", "ann")
			},
			want: want{Err: failure{Code: apperr.Invalid, Field: "app_id", Message: "app_id is required: page 1009 has no bot_app_id"},
				Owner: "bot", SimOwner: botApp, History: []string{"idle→bot customer_message"}},
		},
		{
			name: "give back on a Page whose default app is the bot passes to it", page: page, setup: agentsOwn, op: giveBack,
			want: want{Out: handover.Outcome{Op: "pass_thread_control", Owner: "bot"}, Calls: []string{"pass_thread_control"},
				Owner: "bot", SimOwner: botApp,
				History: []string{"idle→bot customer_message", "bot→agent pass_thread_control", "agent→bot pass_thread_control"}},
		},
		{
			name: "give back on a Page whose default app is handoverd releases", page: agentPage, setup: agentsOwn, op: giveBack,
			want: want{Out: handover.Outcome{Op: "release_thread_control", Owner: "idle"}, Calls: []string{"release_thread_control"},
				Owner: "idle", History: []string{"idle→agent customer_message", "agent→idle release_thread_control"}},
		},
		{
			name: "give back of a thread the agents do not hold asks for nothing", page: page, setup: botOwns, op: giveBack,
			want: want{Out: handover.Outcome{Op: "none", Noop: true, Owner: "bot"}, Owner: "bot", SimOwner: botApp,
				History: []string{"idle→bot customer_message"}},
		},
		{
			// The bot took the thread back without a webhook reaching
			// handoverd: the pass is refused as not the owner, and
			// thread_owner shows the agents no longer hold it.
			name: "give back that Facebook shows done already is done", page: page,
			setup: func(e *simEnv, pg string) {
				agentsOwn(e, pg)
				e.sim.SetOwner(pg, psid, botApp)
			}, op: giveBack,
			want: want{Out: handover.Outcome{Op: "pass_thread_control", Noop: true, Owner: "other"},
				Calls: []string{"pass_thread_control", "thread_owner"}, Owner: "other", SimOwner: botApp,
				History: []string{"idle→bot customer_message", "bot→agent pass_thread_control", "agent→other thread_owner"}},
		},
		{
			name: "an identity handoverd has not seen", page: page, setup: botOwns,
			op: func(e *simEnv, pg string) (handover.Outcome, error) {
				return e.svc.AcquireControl(ctx, pg, "nobody", "ann")
			},
			want: want{Err: failure{Code: apperr.NotFound, Message: "unknown identity nobody on page 1001"},
				Owner: "bot", SimOwner: botApp, History: []string{"idle→bot customer_message"}},
		},
		{
			name: "a Page that is not configured", page: page, setup: botOwns,
			op: func(e *simEnv, pg string) (handover.Outcome, error) { return e.svc.GiveBack(ctx, "1009", psid, "ann") },
			want: want{Err: failure{Code: apperr.NotFound, Message: "page 1009 is not configured"},
				Owner: "bot", SimOwner: botApp, History: []string{"idle→bot customer_message"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachSim(t, func(t *testing.T, e *simEnv) {
				tt.setup(e, tt.page)
				e.ours()
				out, err := tt.op(e, tt.page)
				e.flush()
				th, hist := e.thread(tt.page, psid)
				got := want{Out: out, Err: failureOf(err), Calls: e.ours(), Owner: th.Owner, Pending: th.PendingAppID == ourApp,
					SimOwner: e.sim.Thread(tt.page, psid).OwnerAppID, History: hops(hist)}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		})
	}
}

// TestControlWithoutGraph: without a Graph client, thread control is only
// tracked; operations that need Facebook say so.
func TestControlWithoutGraph(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t), "bot")
	f.ingest(t, msg(S, "m1", 0))
	ctx := context.Background()
	_, aerr := f.svc.AcquireControl(ctx, page, psid, "ann")
	_, rerr := f.svc.Reconcile(ctx, page, psid)
	res, derr := f.svc.ReconcileDoubtful(ctx)
	n, lerr := f.svc.LookupTakers(ctx)
	unavailable := failure{Code: apperr.Unavailable, Message: "no Graph client configured"}
	type result struct {
		Acquire, Reconcile, Doubtful, Lookup failure
		Result                               handover.ReconcileResult
		Asked                                int
	}
	want := result{Acquire: unavailable, Reconcile: unavailable}
	got := result{failureOf(aerr), failureOf(rerr), failureOf(derr), failureOf(lerr), res, n}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
