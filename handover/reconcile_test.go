package handover_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/messenger/simulator"
)

// TestReconcileCorrectsFromThreadOwner: Reconcile asks Graph's
// thread_owner and corrects handoverd's owner and expiry from the answer;
// where handoverd is not the default app Facebook hides another app's id,
// and what handoverd knows of a non-agent owner is kept.
func TestReconcileCorrectsFromThreadOwner(t *testing.T) {
	ctx := context.Background()
	botOwns := func(e *simEnv, pg string) { e.customer(pg, psid) }
	agentsOwn := func(e *simEnv, pg string) {
		e.customer(pg, psid)
		if pg == page {
			e.botPasses(pg, psid)
		}
	}
	type result struct {
		Owner         handover.Owner
		Err           failure
		AppID         string
		ExpiresAgree  bool // handoverd's expiry is Facebook's
		History       []string
		Mode          handover.PageMode
		DefaultAppID  string
		Warning       string
		ThreadOwnerOK bool
	}
	tests := []struct {
		name   string
		page   string
		setup  func(e *simEnv, pg string)
		simApp string // the owner at Facebook, set silently
		fault  *simulator.Fault
		want   result
	}{
		{
			name: "another app, hidden, where handoverd thought the agents held it", page: page, setup: agentsOwn, simApp: botApp,
			want: result{Owner: "other", ExpiresAgree: true, Mode: "unknown",
				History: []string{"idle→bot customer_message", "bot→agent pass_thread_control", "agent→other thread_owner"}},
		},
		{
			name: "another app, hidden, where handoverd knew the bot held it", page: page, setup: botOwns, simApp: botApp,
			want: result{Owner: "bot", AppID: botApp, ExpiresAgree: true, Mode: "unknown", History: []string{"idle→bot customer_message"}},
		},
		{
			name: "handoverd's app", page: page, setup: botOwns, simApp: ourApp,
			want: result{Owner: "agent", AppID: ourApp, ExpiresAgree: true, Mode: "unknown",
				History: []string{"idle→bot customer_message", "bot→agent thread_owner"}},
		},
		{
			name: "nobody", page: page, setup: agentsOwn, simApp: "",
			want: result{Owner: "idle", ExpiresAgree: true, Mode: "unknown",
				History: []string{"idle→bot customer_message", "bot→agent pass_thread_control", "agent→idle thread_owner"}},
		},
		{
			// Facebook shows handoverd, the default app, every owner: the
			// Page is under Conversation Routing, as configured.
			name: "another app, shown to the default app", page: agentPage, setup: agentsOwn, simApp: botApp,
			want: result{Owner: "bot", AppID: botApp, ExpiresAgree: true, Mode: "conversation_routing", DefaultAppID: ourApp,
				History: []string{"idle→agent customer_message", "agent→bot thread_owner"}},
		},
		{
			name: "thread_owner refused", page: page, setup: agentsOwn, simApp: botApp,
			fault: &simulator.Fault{Op: "thread_owner", AppID: ourApp, Code: 100, Message: "(#100) no"},
			want: result{Err: failure{apperr.Upstream, "", "Facebook refused thread_owner: (#100) no (code 100, subcode 0)"},
				Owner: "agent", AppID: ourApp, Mode: "unknown",
				History: []string{"idle→bot customer_message", "bot→agent pass_thread_control"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachSim(t, func(t *testing.T, e *simEnv) {
				tt.setup(e, tt.page)
				e.clock.Advance(time.Minute)
				e.sim.SetOwner(tt.page, psid, tt.simApp)
				if tt.fault != nil {
					e.sim.InjectFault(*tt.fault)
				}
				owner, err := e.svc.Reconcile(ctx, tt.page, psid)
				th, hist := e.thread(tt.page, psid)
				exp := e.sim.Thread(tt.page, psid).ExpiresAt
				sts, serr := e.svc.PageStatuses(ctx)
				if serr != nil {
					t.Fatal(serr)
				}
				st := sts[0]
				if tt.page == agentPage {
					st = sts[1]
				}
				got := result{Owner: owner, Err: failureOf(err), AppID: th.OwnerAppID, History: hops(hist),
					ExpiresAgree: (th.ExpiresAt == nil && exp.IsZero()) || (th.ExpiresAt != nil && th.ExpiresAt.Equal(exp)),
					Mode:         st.Meta.Mode, DefaultAppID: st.Meta.DefaultAppID, Warning: st.Warning}
				if err != nil {
					got.Owner = th.Owner
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		})
	}
}

// TestReconcileDoubtful: the background pass finds the threads whose
// state is in doubt (a request for control unanswered past the control
// timeout, a handover Facebook refused), checks them with thread_owner
// within the per-Page rate, retries the checks Graph failed a minute
// later, and leaves alone what it checked.
func TestReconcileDoubtful(t *testing.T) {
	rate := func(o *handover.Options) { o.Reconcile = config.Reconcile{Rate: 1} }
	eachSim(t, func(t *testing.T, e *simEnv) {
		ctx := context.Background()
		pass := func() handover.ReconcileResult {
			t.Helper()
			res, err := e.svc.ReconcileDoubtful(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		// Two requests for control: Facebook passed the first to
		// handoverd without its webhook arriving; the bot keeps the second.
		for _, who := range []string{"a", "b"} {
			e.customer(page, who)
			if _, err := e.svc.AcquireControl(ctx, page, who, "ann"); err != nil {
				t.Fatal(err)
			}
		}
		e.flush()
		e.sim.SetOwner(page, "a", ourApp)
		e.ours()

		var got []handover.ReconcileResult
		got = append(got, pass()) // within the control timeout: no doubt
		e.clock.Advance(2 * time.Minute)
		got = append(got, pass()) // one call a second per Page: "a", "b" deferred
		got = append(got, pass()) // the same second: "b" still deferred
		e.clock.Advance(time.Second)
		got = append(got, pass()) // "b", still the bot's
		got = append(got, pass()) // nothing left

		// A handover Facebook refused, and a thread_owner that fails once.
		e.customer(page, "c")
		e.sim.InjectFault(simulator.Fault{Op: "request_thread_control", AppID: ourApp, Code: 10, Subcode: 2018300, Message: "(#10) no"})
		if _, err := e.svc.AcquireControl(ctx, page, "c", "ann"); apperr.CodeOf(err) != apperr.Upstream {
			t.Fatalf("refused request: %v", err)
		}
		e.clock.Advance(time.Second)
		e.sim.InjectFault(simulator.Fault{Op: "thread_owner", AppID: ourApp, Code: 100, Message: "(#100) no"})
		got = append(got, pass()) // fails
		e.clock.Advance(time.Second)
		got = append(got, pass()) // retried only after a minute
		e.clock.Advance(time.Minute)
		got = append(got, pass()) // confirmed

		want := []handover.ReconcileResult{{}, {Checked: 1, Corrected: 1, Deferred: 1}, {Deferred: 1}, {Checked: 1}, {},
			{Checked: 1, Failed: 1}, {}, {Checked: 1}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("passes (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"thread_owner", "thread_owner", "request_thread_control", "thread_owner", "thread_owner"}, e.ours()); diff != "" {
			t.Errorf("Graph calls (-want +got):\n%s", diff)
		}
		a, hist := e.thread(page, "a")
		if a.Owner != handover.OwnerAgent || a.PendingAppID != "" {
			t.Errorf("a: owner %s pending %q, want the agents', nothing pending", a.Owner, a.PendingAppID)
		}
		if diff := cmp.Diff([]string{"idle→bot customer_message", "bot→agent reconciled"}, hops(hist)); diff != "" {
			t.Errorf("a's history (-want +got):\n%s", diff)
		}
		counted := map[string]float64{}
		for _, r := range []string{"corrected", "confirmed", "failed"} {
			counted[r] = testutil.ToFloat64(e.m.Reconciles.WithLabelValues(r))
		}
		counted["deferred"] = testutil.ToFloat64(e.m.ReconcileDeferred)
		if diff := cmp.Diff(map[string]float64{"corrected": 1, "confirmed": 2, "failed": 1, "deferred": 2}, counted); diff != "" {
			t.Errorf("metrics (-want +got):\n%s", diff)
		}
	}, rate)
}

// TestReconcileRateBelowOnePerSecond: a rate under one call a second
// spaces the calls by the time one takes.
func TestReconcileRateBelowOnePerSecond(t *testing.T) {
	rate := func(o *handover.Options) { o.Reconcile = config.Reconcile{Rate: 0.5} }
	eachSim(t, func(t *testing.T, e *simEnv) {
		ctx := context.Background()
		for _, who := range []string{"a", "b"} {
			e.customer(page, who)
			if _, err := e.svc.AcquireControl(ctx, page, who, "ann"); err != nil {
				t.Fatal(err)
			}
		}
		// Past the timeout, at the start of a two-second window.
		e.clock.Set(t0.Add(4 * time.Minute))
		var got []int
		for i := 0; i < 3; i++ {
			res, err := e.svc.ReconcileDoubtful(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, res.Checked)
			e.clock.Advance(time.Second)
		}
		if diff := cmp.Diff([]int{1, 0, 1}, got); diff != "" {
			t.Errorf("checked per second (-want +got):\n%s", diff)
		}
	}, rate)
}

// takeWithoutTaker is a take_thread_control webhook in an older payload's
// form, naming no new owner.
func takeWithoutTaker(pg, who string, at time.Time) []byte {
	ms := at.UnixMilli()
	return []byte(fmt.Sprintf(`{"object":"page","entry":[{"id":%q,"time":%d,"messaging":[{"sender":{"id":%q},"recipient":{"id":%q},`+
		`"timestamp":%d,"take_thread_control":{"previous_owner_app_id":%q,"metadata":""}}]}]}`, pg, ms, who, pg, ms, ourApp))
}

// TestLookupTakers: a take that names no taker, where handoverd cannot
// tell who took, leaves the thread to "other" until thread_owner answers;
// each such take is asked about once.
func TestLookupTakers(t *testing.T) {
	eachSim(t, func(t *testing.T, e *simEnv) {
		ctx := context.Background()
		e.customer(agentPage, psid) // handoverd, the default app, owns it
		e.clock.Advance(time.Second)
		e.sim.SetOwner(agentPage, psid, config.PageInboxAppID)
		e.sim.Deliver(ourApp, takeWithoutTaker(agentPage, psid, e.clock.Now()))
		e.flush()
		th, _ := e.thread(agentPage, psid)
		if th.Owner != handover.OwnerOther || th.OwnerAppID != "" {
			t.Fatalf("after the take: %s %q, want other, unnamed", th.Owner, th.OwnerAppID)
		}
		e.ours()
		var asked []int
		for i := 0; i < 2; i++ {
			n, err := e.svc.LookupTakers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			asked = append(asked, n)
		}
		if diff := cmp.Diff([]int{1, 0}, asked); diff != "" {
			t.Errorf("asked (-want +got):\n%s", diff)
		}
		th, hist := e.thread(agentPage, psid)
		if diff := cmp.Diff([]string{"idle→agent customer_message", "agent→other take_thread_control", "other→page_inbox thread_owner"}, hops(hist)); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		if th.OwnerAppID != config.PageInboxAppID {
			t.Errorf("owner app %q, want the Page Inbox", th.OwnerAppID)
		}
		if diff := cmp.Diff([]string{"thread_owner"}, e.ours()); diff != "" {
			t.Errorf("Graph calls (-want +got):\n%s", diff)
		}
	})
}
