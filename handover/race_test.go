package handover_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/handover"
)

// TestTwoProcessesAcquireOnce: two processes asking for control of the
// same thread at once make one Graph call between them, and both answer
// that the request is pending.
func TestTwoProcessesAcquireOnce(t *testing.T) {
	eachSim(t, func(t *testing.T, e *simEnv) {
		ctx := context.Background()
		e.customer(page, psid)
		e.ours()
		procs := []*handover.Service{e.svc, e.another()}
		outs := make([]handover.Outcome, len(procs))
		errs := make([]error, len(procs))
		var wg sync.WaitGroup
		for i, p := range procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs[i], errs[i] = p.AcquireControl(ctx, page, psid, "ann")
			}()
		}
		wg.Wait()
		for i := range procs {
			if errs[i] != nil || outs[i].Owner != handover.OwnerBot || !outs[i].Pending {
				t.Errorf("process %d: %+v %v, want pending with the bot", i, outs[i], errs[i])
			}
		}
		if diff := cmp.Diff([]string{"request_thread_control"}, e.ours()); diff != "" {
			t.Errorf("Graph calls (-want +got):\n%s", diff)
		}
	})
}

// TestTwoAgentsAcceptAtOnce: of two agents accepting one offer at once,
// in two processes, exactly one wins and asks Facebook for the thread;
// the other gets a Conflict.
func TestTwoAgentsAcceptAtOnce(t *testing.T) {
	eachSim(t, func(t *testing.T, e *simEnv) {
		ctx := context.Background()
		e.customer(page, psid)
		h, _, err := e.svc.CreateHandoff(ctx, supportBot, handover.HandoffInput{PSID: psid, To: "agent", Mode: handover.ModeOffer})
		if err != nil {
			t.Fatal(err)
		}
		e.ours()
		procs := []*handover.Service{e.svc, e.another()}
		agents := []auth.Principal{alice, bob}
		won := make([]handover.Handoff, len(procs))
		errs := make([]error, len(procs))
		var wg sync.WaitGroup
		for i, p := range procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				won[i], _, errs[i] = p.AcceptOffer(ctx, agents[i], h.ID)
			}()
		}
		wg.Wait()
		var winners, conflicts int
		for i := range procs {
			switch {
			case errs[i] == nil && won[i].Status == handover.HandoffAccepted && won[i].DecidedBy == agents[i].Name:
				winners++
			case apperr.CodeOf(errs[i]) == apperr.Conflict:
				conflicts++
			default:
				t.Errorf("%s: %+v %v", agents[i].Name, won[i], errs[i])
			}
		}
		if winners != 1 || conflicts != 1 {
			t.Errorf("%d won, %d refused; want one each", winners, conflicts)
		}
		if diff := cmp.Diff([]string{"request_thread_control"}, e.ours()); diff != "" {
			t.Errorf("Graph calls (-want +got):\n%s", diff)
		}
		ivs, err := e.svc.Interventions(ctx, page, psid)
		if err != nil || len(ivs) != 1 {
			t.Errorf("interventions %+v %v, want the winner's only", ivs, err)
		}
	})
}
