package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/messenger/simulator"
	"github.com/handoverd/handoverd/store/storetest"
)

// TestUnderGraphFaults: agents open interventions, send and close while
// Facebook's Graph API has 5xx storms, rate limits and answers slower than
// handoverd's timeout (executed, but too late to know), and webhooks come
// twice and out of order; two processes share the database. Afterwards no
// agent message reached a customer twice, every message handoverd calls
// sent reached the customer, no hand-back was lost, and each thread's
// owner is what the simulator says.
func TestUnderGraphFaults(t *testing.T) {
	for _, seed := range []uint64{2, 3} { // seeds whose faults include slow answers
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, b storetest.Backend) {
				h := newHarness(t, b, "bot")
				h.cfg.Graph.Timeout = 250 * time.Millisecond
				h.restart()
				h.replica() // a second process on the database: its sender competes for the queue
				psids := []string{"7701", "7702", "7703", "7704", "7705"}
				for _, p := range psids {
					h.customerSays(p, "hi")
				}
				h.sim.SetChaos(&simulator.Chaos{Seed: seed, AppID: ourApp, ServerError: 0.15, StormLength: 3,
					RateLimit: 0.15, Slow: 0.1, SlowFor: 400 * time.Millisecond, Redeliver: 0.3})
				// retry does what an agent's client does: try again on a refusal.
				retry := func(what string, f func() int, ok ...int) {
					for i := 0; i < 20; i++ {
						st := f()
						for _, o := range ok {
							if st == o {
								return
							}
						}
					}
					t.Fatalf("%s kept failing", what)
				}
				ivs := map[string]handover.InterventionView{}
				for _, p := range psids {
					h.clock.Advance(time.Second) // distinct times: redeliveries arrive out of order
					retry("open "+p, func() int {
						var iv handover.InterventionView
						st := h.agentJSON(http.MethodPost, "/1.0/interventions", map[string]string{"identity_foreign_id": p}, &iv)
						if st == 201 {
							ivs[p] = iv
						}
						return st
					}, 201)
					h.clock.Advance(time.Second)
					for i := 1; i <= 2; i++ {
						h.agentJSON(http.MethodPost, fmt.Sprintf("/1.0/interventions/%d/messages", ivs[p].ID), map[string]string{"text": fmt.Sprintf("%s says %d", p, i)}, nil)
					}
					h.clock.Advance(time.Second)
					retry("close "+p, func() int {
						st, _ := h.do(http.MethodPut, fmt.Sprintf("/1.0/interventions/%d/close", ivs[p].ID), agentToken, nil)
						return st
					}, 200)
				}
				injected := h.sim.ChaosInjected()
				h.sim.SetChaos(nil)
				h.flush()
				waitFor(t, "the queue and the handovers to settle", func() bool {
					return h.count(`SELECT count(*) FROM agent_messages WHERE status = 'waiting'`) == 0 &&
						h.count(`SELECT count(*) FROM control_ops WHERE status = 'in_flight'`) == 0
				})
				h.flush()
				t.Logf("faults injected: %v", injected)
				if injected["server_error"]+injected["rate_limit"]+injected["slow"] == 0 {
					t.Fatal("no fault was injected: the test tests nothing")
				}
				appOf := map[handover.Owner]string{handover.OwnerBot: botApp, handover.OwnerAgent: ourApp, handover.OwnerIdle: ""}
				for _, p := range psids {
					seen := map[string]int{}
					for _, m := range h.sim.Inbox(pageID, p) {
						seen[m.Text]++
					}
					for text, n := range seen {
						if n > 1 {
							t.Errorf("%s: %q reached the customer %d times", p, text, n)
						}
					}
					for _, m := range h.interventionMessages(ivs[p].ID) {
						var text struct{ Text string }
						_ = jsonUnmarshal(m.Message, &text)
						if m.Status == "sent" && seen[text.Text] != 1 {
							t.Errorf("%s: %q is recorded sent but reached the customer %d times", p, text.Text, seen[text.Text])
						}
					}
					sim := h.sim.Thread(pageID, p).OwnerAppID
					if sim != botApp {
						t.Errorf("%s: Facebook's owner after the close = %q, want the bot (hand-back lost)", p, sim)
					}
					// Conversation Routing hides another app's id from a non-default
					// app: "other" is all handoverd can know then.
					if v, _ := h.thread(p); appOf[v.Owner] != sim && (v.Owner != handover.OwnerOther || sim == ourApp || sim == "") {
						t.Errorf("%s: handoverd says %s, Facebook says %q", p, v.Owner, sim)
					}
				}
			})
		})
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
