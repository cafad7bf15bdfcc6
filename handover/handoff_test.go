package handover_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/messenger/simulator"
	"github.com/handoverd/handoverd/store/storetest"
)

// The API users of the handoff tests: page's bot and agents (client 1),
// an agent of agentPage's client (2), and an admin of every client.
var (
	supportBot = auth.Principal{Name: "support-bot", Role: config.RoleBot, ClientID: 1}
	alice      = auth.Principal{Name: "alice", Role: config.RoleAgent, ClientID: 1}
	bob        = auth.Principal{Name: "bob", Role: config.RoleAgent, ClientID: 1}
	eve        = auth.Principal{Name: "eve", Role: config.RoleAgent, ClientID: 2}
	root       = auth.Principal{Name: "root", Role: config.RoleAdmin}
)

// handoffView is what a test checks of a handoff.
type handoffView struct {
	Mode, Status, DecidedBy, Error string
	Reason                         handover.Reason
	Metadata                       handover.Metadata
	GraphCode                      int
	HasIntervention                bool
}

func viewOf(h handover.Handoff) handoffView {
	return handoffView{Mode: h.Mode, Status: h.Status, DecidedBy: h.DecidedBy, Error: h.Error, Reason: h.Reason, Metadata: h.Metadata,
		GraphCode: h.GraphCode, HasIntervention: h.InterventionID != 0}
}

// TestHandoffRequestsAreValidated: what a bot's handoff must carry, and
// which Pages and identities it may name.
func TestHandoffRequestsAreValidated(t *testing.T) {
	reasons := make([]string, len(handover.Reasons))
	for i, r := range handover.Reasons {
		reasons[i] = string(r)
	}
	tests := []struct {
		name string
		p    auth.Principal
		in   handover.HandoffInput
		want failure
	}{
		{"an identity is required", supportBot, handover.HandoffInput{To: "agent"},
			failure{apperr.Invalid, "identity_foreign_id", "is required"}},
		{"only to the agents", supportBot, handover.HandoffInput{PSID: psid, To: "bot"},
			failure{apperr.Invalid, "to", "must be agent (handovers to the bot are passes: POST /1.0/bots/handover?from=agent&to=bot)"}},
		{"offer or pass", supportBot, handover.HandoffInput{PSID: psid, To: "agent", Mode: "later"},
			failure{apperr.Invalid, "mode", `must be offer or pass, got "later"`}},
		{"a known reason", supportBot, handover.HandoffInput{PSID: psid, To: "agent", Reason: "bored"},
			failure{apperr.Invalid, "reason", `unknown reason "bored" (want one of ` + strings.Join(reasons, ", ") + ")"}},
		{"flat metadata", supportBot, handover.HandoffInput{PSID: psid, To: "agent", Metadata: []byte(`{"a":{"b":1}}`)},
			failure{apperr.Invalid, "metadata", `"a": must be flat (string, number, boolean or null values, no objects or lists)`}},
		{"a Page of the bot's client", supportBot, handover.HandoffInput{PageID: agentPage, PSID: psid, To: "agent"},
			failure{apperr.Forbidden, "", "page 1003 belongs to another client"}},
		{"a configured Page", supportBot, handover.HandoffInput{PageID: "1009", PSID: psid, To: "agent"},
			failure{apperr.NotFound, "", "page 1009 is not configured"}},
		{"the Page, when the caller sees several", root, handover.HandoffInput{PSID: psid, To: "agent"},
			failure{apperr.Invalid, "page_id", "page_id is required: your client has 2 pages"}},
		{"an identity handoverd has seen", supportBot, handover.HandoffInput{PSID: "nobody", To: "agent", Mode: handover.ModeOffer},
			failure{apperr.NotFound, "", "unknown identity nobody on page 1001"}},
	}
	e := newSimEnv(t, storetest.SQLite(t))
	e.customer(page, psid)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, out, err := e.svc.CreateHandoff(context.Background(), tt.p, tt.in)
			if diff := cmp.Diff(tt.want, failureOf(err)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if out != (handover.Outcome{}) {
				t.Errorf("outcome %+v, want none", out)
			}
		})
	}
	if calls := e.ours(); len(calls) != 0 {
		t.Errorf("Graph calls %v, want none", calls)
	}
}

// TestOfferIsAcceptedOnce: a bot's offer waits for an agent; a newer offer
// replaces it; the first agent to accept gets the conversation (an
// intervention, and a request for control), the others a Conflict naming
// who was first.
func TestOfferIsAcceptedOnce(t *testing.T) {
	eachSim(t, func(t *testing.T, e *simEnv) {
		ctx := context.Background()
		e.customer(page, psid) // the bot owns the thread
		e.facts.take()
		first, out, err := e.svc.CreateHandoff(ctx, supportBot, handover.HandoffInput{PSID: psid, To: "agent", Mode: handover.ModeOffer,
			Reason: "customer_asked", Metadata: []byte(`{"topic":"billing"}`)})
		if err != nil || out != (handover.Outcome{}) {
			t.Fatalf("offer: %+v %v", out, err)
		}
		if want := e.clock.Now().Add(5 * time.Minute); first.ExpiresAt == nil || !first.ExpiresAt.Equal(want) {
			t.Errorf("expires at %v, want %v", first.ExpiresAt, want)
		}
		second, _, err := e.svc.CreateHandoff(ctx, supportBot, handover.HandoffInput{PSID: psid, To: "agent", Mode: handover.ModeOffer})
		if err != nil {
			t.Fatal(err)
		}
		open, err := e.svc.OpenOffer(ctx, page, psid)
		if err != nil || open == nil || open.ID != second.ID {
			t.Fatalf("open offer = %+v, %v; want the second", open, err)
		}
		replaced, err := e.svc.Handoff(ctx, alice, first.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(handoffView{Mode: "offer", Status: "replaced", DecidedBy: "handoverd", Reason: "customer_asked",
			Metadata: handover.Metadata{"topic": "billing"}}, viewOf(replaced), cmpNumbers); diff != "" {
			t.Errorf("the first offer (-want +got):\n%s", diff)
		}
		if _, err := e.svc.Handoff(ctx, eve, second.ID); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("another client's agent reading it: %v, want not found", err)
		}
		if _, _, err := e.svc.AcceptOffer(ctx, eve, second.ID); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("another client's agent accepting it: %v, want not found", err)
		}

		won, out, err := e.svc.AcceptOffer(ctx, alice, second.ID)
		if err != nil {
			t.Fatal(err)
		}
		e.flush()
		if diff := cmp.Diff(handoffView{Mode: "offer", Status: "accepted", DecidedBy: "alice", Reason: "bot_requested", HasIntervention: true},
			viewOf(won)); diff != "" {
			t.Errorf("the accepted offer (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(handover.Outcome{Op: "request_thread_control", Owner: "bot", Pending: true}, out); diff != "" {
			t.Errorf("outcome (-want +got):\n%s", diff)
		}
		iv, err := e.svc.Intervention(ctx, won.InterventionID)
		if err != nil || iv.OpenedBy != "alice" || iv.Status != handover.InterventionOpen {
			t.Errorf("intervention %+v %v, want alice's, open", iv, err)
		}
		late := failure{apperr.Conflict, "", "handover 2 was already accepted by alice"}
		_, _, err = e.svc.AcceptOffer(ctx, bob, second.ID)
		_, derr := e.svc.DeclineOffer(ctx, bob, second.ID)
		if diff := cmp.Diff([]failure{late, late}, []failure{failureOf(err), failureOf(derr)}); diff != "" {
			t.Errorf("a second agent accepting, declining (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"request_thread_control"}, e.ours()); diff != "" {
			t.Errorf("Graph calls (-want +got):\n%s", diff)
		}
		// A replaced offer is no fact of its own: the newer one stands for it.
		if diff := cmp.Diff([]string{"handoff open customer_asked", "handoff open bot_requested", "handoff accepted bot_requested"}, e.facts.take()); diff != "" {
			t.Errorf("facts (-want +got):\n%s", diff)
		}
		if n := testutil.ToFloat64(e.m.HandoverOffers.WithLabelValues("conflict")); n != 2 {
			t.Errorf("conflicts counted %v, want 2", n)
		}
		// The bot grants the request: the agents hold the thread.
		e.botPasses(page, psid)
		if th, _ := e.thread(page, psid); th.Owner != handover.OwnerAgent {
			t.Errorf("owner %s, want agent", th.Owner)
		}
	})
}

// cmpNumbers compares metadata numbers and strings by their text.
var cmpNumbers = cmp.Comparer(func(a, b handover.Metadata) bool { return a.JSON() == b.JSON() })

// TestOfferDeclinedExpiredOrRefused: a declined offer leaves the bot the
// thread; one nobody accepts expires with the sweep; no offer is made
// while the agents hold the thread or an intervention is open; an agent
// opening an intervention takes the open offer.
func TestOfferDeclinedExpiredOrRefused(t *testing.T) {
	eachSim(t, func(t *testing.T, e *simEnv) {
		ctx := context.Background()
		e.customer(page, psid)
		e.facts.take()
		offer := func() handover.Handoff {
			t.Helper()
			h, _, err := e.svc.CreateHandoff(ctx, supportBot, handover.HandoffInput{PSID: psid, To: "agent", Mode: handover.ModeOffer})
			if err != nil {
				t.Fatal(err)
			}
			return h
		}
		h := offer()
		declined, err := e.svc.DeclineOffer(ctx, bob, h.ID)
		if err != nil || declined.Status != handover.HandoffDeclined || declined.DecidedBy != "bob" {
			t.Errorf("declined: %+v %v", declined, err)
		}

		h = offer()
		e.clock.Advance(5 * time.Minute)
		_, _, err = e.svc.AcceptOffer(ctx, alice, h.ID)
		if diff := cmp.Diff(failure{apperr.Conflict, "", "handover 2 expired at 2026-11-01T09:05:01Z"}, failureOf(err)); diff != "" {
			t.Errorf("accepting past the deadline (-want +got):\n%s", diff)
		}
		if n, err := e.svc.ExpireOffers(ctx); n != 1 || err != nil {
			t.Errorf("ExpireOffers = %d, %v; want 1", n, err)
		}
		if n, err := e.svc.ExpireOffers(ctx); n != 0 || err != nil {
			t.Errorf("ExpireOffers again = %d, %v; want 0", n, err)
		}
		_, _, err = e.svc.AcceptOffer(ctx, alice, h.ID)
		if diff := cmp.Diff(failure{apperr.Conflict, "", "handover 2 is expired"}, failureOf(err)); diff != "" {
			t.Errorf("accepting an expired offer (-want +got):\n%s", diff)
		}

		// An agent opens an intervention: the open offer is theirs.
		h = offer()
		iv, _, err := e.svc.OpenIntervention(ctx, page, psid, "alice")
		if err != nil {
			t.Fatal(err)
		}
		taken, err := e.svc.Handoff(ctx, alice, h.ID)
		if err != nil || taken.Status != handover.HandoffAccepted || taken.DecidedBy != "alice" || taken.InterventionID != iv.ID {
			t.Errorf("the offer after the intervention opened: %+v %v, want accepted by alice, intervention %d", taken, err, iv.ID)
		}
		_, _, err = e.svc.CreateHandoff(ctx, supportBot, handover.HandoffInput{PSID: psid, To: "agent", Mode: handover.ModeOffer})
		if diff := cmp.Diff(failure{apperr.Conflict, "", "intervention 1 is open on this identity"}, failureOf(err)); diff != "" {
			t.Errorf("offering during an intervention (-want +got):\n%s", diff)
		}
		e.botPasses(page, psid)
		_, _, err = e.svc.CreateHandoff(ctx, supportBot, handover.HandoffInput{PSID: psid, To: "agent", Mode: handover.ModeOffer})
		if diff := cmp.Diff(failure{apperr.Conflict, "", "the agents already hold this thread"}, failureOf(err)); diff != "" {
			t.Errorf("offering what the agents hold (-want +got):\n%s", diff)
		}
		want := []string{"handoff open bot_requested", "handoff declined bot_requested", "handoff open bot_requested",
			"handoff expired offer_expired", "handoff open bot_requested", "handoff accepted bot_requested", "owner bot→agent pass_thread_control"}
		if diff := cmp.Diff(want, e.facts.take()); diff != "" {
			t.Errorf("facts (-want +got):\n%s", diff)
		}
		offers := map[string]float64{}
		for _, l := range []string{"offered", "declined", "expired", "accepted"} {
			offers[l] = testutil.ToFloat64(e.m.HandoverOffers.WithLabelValues(l))
		}
		if diff := cmp.Diff(map[string]float64{"offered": 3, "declined": 1, "expired": 1, "accepted": 1}, offers); diff != "" {
			t.Errorf("offers counted (-want +got):\n%s", diff)
		}
	})
}

// TestPassHandoff: a pass acquires control at once — taken where
// handoverd is the default app, requested elsewhere (done once the bot
// passes) — and fails, telling the bot, when Facebook refuses or the
// request is not granted within the control timeout.
func TestPassHandoff(t *testing.T) {
	ctx := context.Background()
	pass := func(e *simEnv, p auth.Principal) (handover.Handoff, handover.Outcome, error) {
		return e.svc.CreateHandoff(ctx, p, handover.HandoffInput{PSID: psid, To: "agent", Reason: "bot_failed"})
	}
	type result struct {
		Handoff handoffView
		Out     handover.Outcome
		Err     failure
		Later   handoffView // after what follows
		Failed  int         // FailOverdueHandoffs
		Calls   []string
	}
	tests := []struct {
		name  string
		setup func(e *simEnv)
		bot   auth.Principal
		then  func(e *simEnv, h handover.Handoff) int
		want  result
	}{
		{
			name: "requested, then granted", bot: supportBot, setup: func(e *simEnv) { e.customer(page, psid) },
			then: func(e *simEnv, h handover.Handoff) int {
				e.botPasses(page, psid) // done with the pass, no sweep needed
				return 0
			},
			want: result{Handoff: handoffView{Mode: "pass", Status: "pending", Reason: "bot_failed"},
				Out:   handover.Outcome{Op: "request_thread_control", Owner: "bot", Pending: true},
				Later: handoffView{Mode: "pass", Status: "done", Reason: "bot_failed"}, Calls: []string{"request_thread_control"}},
		},
		{
			name: "requested, never granted", bot: supportBot, setup: func(e *simEnv) { e.customer(page, psid) },
			then: func(e *simEnv, h handover.Handoff) int {
				e.clock.Advance(time.Minute)
				if n, err := e.svc.FailOverdueHandoffs(ctx); n != 0 || err != nil {
					e.t.Errorf("within the control timeout: failed %d, %v", n, err)
				}
				e.clock.Advance(time.Minute)
				n, err := e.svc.FailOverdueHandoffs(ctx)
				if err != nil {
					e.t.Fatal(err)
				}
				return n
			},
			want: result{Handoff: handoffView{Mode: "pass", Status: "pending", Reason: "bot_failed"},
				Out:   handover.Outcome{Op: "request_thread_control", Owner: "bot", Pending: true},
				Later: handoffView{Mode: "pass", Status: "failed", Reason: "bot_failed", Error: "thread control did not come within 2m0s"}, Failed: 1,
				Calls: []string{"request_thread_control"}},
		},
		{
			// The thread became the agents' without a pass (the
			// customer wrote on messaging): overdue, the handoff is done.
			name: "requested, then the agents' another way", bot: supportBot, setup: func(e *simEnv) { e.customer(page, psid) },
			then: func(e *simEnv, h handover.Handoff) int {
				e.sim.SetOwner(page, psid, ourApp)
				e.customer(page, psid)
				e.clock.Advance(time.Hour)
				n, err := e.svc.FailOverdueHandoffs(ctx)
				if err != nil {
					e.t.Fatal(err)
				}
				return n
			},
			want: result{Handoff: handoffView{Mode: "pass", Status: "pending", Reason: "bot_failed"},
				Out:   handover.Outcome{Op: "request_thread_control", Owner: "bot", Pending: true},
				Later: handoffView{Mode: "pass", Status: "done", Reason: "bot_failed"}, Calls: []string{"request_thread_control"}},
		},
		{
			name: "refused by Facebook", bot: supportBot,
			setup: func(e *simEnv) {
				e.customer(page, psid)
				e.sim.InjectFault(simulator.Fault{Op: "request_thread_control", AppID: ourApp, Code: 10, Subcode: 2018300, Message: "(#10) no"})
			},
			want: result{Handoff: handoffView{Mode: "pass", Status: "failed", Reason: "bot_failed", GraphCode: 10,
				Error: "Facebook refused request_thread_control: (#10) no (code 10, subcode 2018300)"},
				Err: failure{apperr.Upstream, "", "Facebook refused request_thread_control: (#10) no (code 10, subcode 2018300)"},
				Later: handoffView{Mode: "pass", Status: "failed", Reason: "bot_failed", GraphCode: 10,
					Error: "Facebook refused request_thread_control: (#10) no (code 10, subcode 2018300)"},
				Calls: []string{"request_thread_control"}},
		},
		{
			name: "taken where handoverd is the default app", bot: auth.Principal{Name: "bot-2", Role: config.RoleBot, ClientID: 2},
			setup: func(e *simEnv) {
				e.customer(agentPage, psid)
				if _, err := e.svc.PassToBot(ctx, agentPage, psid, "", "ann"); err != nil {
					e.t.Fatal(err)
				}
				e.flush()
				e.ours()
			},
			want: result{Handoff: handoffView{Mode: "pass", Status: "done", Reason: "bot_failed"},
				Out:   handover.Outcome{Op: "take_thread_control", Owner: "agent"},
				Later: handoffView{Mode: "pass", Status: "done", Reason: "bot_failed"}, Calls: []string{"take_thread_control"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachSim(t, func(t *testing.T, e *simEnv) {
				tt.setup(e)
				h, out, err := pass(e, tt.bot)
				got := result{Handoff: viewOf(h), Out: out, Err: failureOf(err)}
				if tt.then != nil {
					got.Failed = tt.then(e, h)
				}
				later, err := e.svc.Handoff(ctx, tt.bot, h.ID)
				if err != nil {
					t.Fatal(err)
				}
				got.Later, got.Calls = viewOf(later), e.ours()
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		})
	}
}

// TestHandoffOfAnotherKind: a pass is no offer to accept, and an unknown
// handoff does not exist.
func TestHandoffOfAnotherKind(t *testing.T) {
	e := newSimEnv(t, storetest.SQLite(t))
	ctx := context.Background()
	e.customer(page, psid)
	h, _, err := e.svc.CreateHandoff(ctx, supportBot, handover.HandoffInput{PSID: psid, To: "agent", Mode: handover.ModePass})
	if err != nil {
		t.Fatal(err)
	}
	_, _, aerr := e.svc.AcceptOffer(ctx, alice, h.ID)
	_, gerr := e.svc.Handoff(ctx, alice, 99)
	want := []failure{{apperr.Conflict, "", "handover 1 is a pass, not an offer"}, {apperr.NotFound, "", "handover 99 does not exist"}}
	if diff := cmp.Diff(want, []failure{failureOf(aerr), failureOf(gerr)}); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if open, err := e.svc.OpenOffer(ctx, page, psid); open != nil || err != nil {
		t.Errorf("open offer %+v %v, want none", open, err)
	}
}
