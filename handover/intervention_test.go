package handover_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/metrics"
)

// TestInterventionLifecycle: an agent's intervention asks for control,
// is one per identity, closes when idle for the configured time (giving
// the thread back, with the reason idle_timeout), and closing it while
// the request is unanswered withdraws the request.
func TestInterventionLifecycle(t *testing.T) {
	eachSim(t, func(t *testing.T, e *simEnv) {
		ctx := context.Background()
		_, _, err := e.svc.OpenIntervention(ctx, "1009", psid, "alice")
		if diff := cmp.Diff(failure{apperr.Invalid, "page_id", "page 1009 is not configured"}, failureOf(err)); diff != "" {
			t.Errorf("on an unconfigured Page (-want +got):\n%s", diff)
		}
		e.customer(page, psid)
		iv, out, err := e.svc.OpenIntervention(ctx, page, psid, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(handover.Outcome{Op: "request_thread_control", Owner: "bot", Pending: true}, out); diff != "" {
			t.Errorf("opening (-want +got):\n%s", diff)
		}
		_, _, err = e.svc.OpenIntervention(ctx, page, psid, "bob")
		if diff := cmp.Diff(failure{apperr.Conflict, "", "intervention 1 is already open on this identity"}, failureOf(err)); diff != "" {
			t.Errorf("a second one (-want +got):\n%s", diff)
		}
		e.botPasses(page, psid)

		e.clock.Advance(59 * time.Minute)
		if n, err := e.svc.CloseIdleInterventions(ctx); n != 0 || err != nil {
			t.Errorf("before the idle time: closed %d, %v", n, err)
		}
		e.clock.Advance(time.Minute)
		if n, err := e.svc.CloseIdleInterventions(ctx); n != 1 || err != nil {
			t.Errorf("at the idle time: closed %d, %v; want 1", n, err)
		}
		e.flush()
		closed, err := e.svc.Intervention(ctx, iv.ID)
		if err != nil {
			t.Fatal(err)
		}
		type ivView struct{ Status, OpenedBy, ClosedBy, CloseReason string }
		view := func(iv handover.Intervention) ivView {
			return ivView{iv.Status, iv.OpenedBy, iv.ClosedBy, iv.CloseReason}
		}
		if diff := cmp.Diff(ivView{"closed", "alice", "handoverd", "idle"}, view(closed)); diff != "" {
			t.Errorf("the idle intervention (-want +got):\n%s", diff)
		}
		th, hist, err := e.svc.Get(ctx, page, psid)
		if err != nil {
			t.Fatal(err)
		}
		last := hist[len(hist)-1]
		if th.Owner != handover.OwnerBot || last.Cause != handover.CausePass || last.Reason != handover.ReasonIdleTimeout || last.Actor != "handoverd" {
			t.Errorf("after the idle close: owner %s, last change %+v; want the bot's, passed for idle_timeout by handoverd", th.Owner, last)
		}
		e.ours()
		again, err := e.svc.CloseIntervention(ctx, iv.ID, "alice", handover.CloseByAgent)
		if err != nil || view(again) != view(closed) {
			t.Errorf("closing it again: %+v %v, want it as it was", again, err)
		}
		if calls := e.ours(); len(calls) != 0 {
			t.Errorf("Graph calls closing a closed intervention: %v", calls)
		}

		// A second intervention, closed before the bot answers the request.
		iv2, _, err := e.svc.OpenIntervention(ctx, page, psid, "bob")
		if err != nil {
			t.Fatal(err)
		}
		if th, _ := e.thread(page, psid); th.PendingAppID != ourApp {
			t.Fatalf("pending %q, want handoverd's request", th.PendingAppID)
		}
		if _, err := e.svc.CloseIntervention(ctx, iv2.ID, "bob", handover.CloseByAgent); err != nil {
			t.Fatal(err)
		}
		if th, _ := e.thread(page, psid); th.PendingAppID != "" || th.Owner != handover.OwnerBot {
			t.Errorf("after the close: owner %s pending %q, want the bot's, nothing pending", th.Owner, th.PendingAppID)
		}
		if diff := cmp.Diff([]string{"request_thread_control"}, e.ours()); diff != "" {
			t.Errorf("Graph calls (-want +got):\n%s", diff)
		}

		list, err := e.svc.Interventions(ctx, page, psid)
		if err != nil {
			t.Fatal(err)
		}
		var listed []ivView
		for _, iv := range list {
			listed = append(listed, view(iv))
		}
		if diff := cmp.Diff([]ivView{{"closed", "bob", "bob", "agent"}, {"closed", "alice", "handoverd", "idle"}}, listed); diff != "" {
			t.Errorf("the identity's interventions, newest first (-want +got):\n%s", diff)
		}
		if _, err := e.svc.Intervention(ctx, 99); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("an unknown intervention: %v", err)
		}
		closedBy := map[string]float64{}
		for _, r := range []string{"agent", "idle"} {
			closedBy[r] = testutil.ToFloat64(e.m.InterventionsClosed.WithLabelValues(r))
		}
		if diff := cmp.Diff(map[string]float64{"agent": 1, "idle": 1}, closedBy); diff != "" {
			t.Errorf("closed, counted (-want +got):\n%s", diff)
		}
	})
}

// TestGauges: the gauges are counted in the shared database, so a
// process that has just started (another replica, or after a restart)
// reports what the others did, and the last webhook time of each Page.
func TestGauges(t *testing.T) {
	eachSim(t, func(t *testing.T, e *simEnv) {
		ctx := context.Background()
		e.customer(page, "a") // the bot's, offered to the agents
		if _, _, err := e.svc.CreateHandoff(ctx, supportBot, handover.HandoffInput{PSID: "a", To: "agent", Mode: handover.ModeOffer}); err != nil {
			t.Fatal(err)
		}
		e.customer(page, "b") // the agents', in an intervention
		e.botPasses(page, "b")
		if _, _, err := e.svc.OpenIntervention(ctx, page, "b", "alice"); err != nil {
			t.Fatal(err)
		}
		e.customer(page, "c") // control requested
		if _, err := e.svc.AcquireControl(ctx, page, "c", "alice"); err != nil {
			t.Fatal(err)
		}
		if err := e.sim.SetAppRoles(page, map[string][]string{ourApp: {"primary_receiver"}}); err != nil {
			t.Fatal(err)
		}
		e.flush()
		last := e.clock.Now()
		e.clock.Advance(time.Hour)

		m := metrics.New()
		fresh := handover.New(handover.Options{DB: e.b.Open(t), AppID: ourApp, Clock: e.clock.Paced(), Metrics: m, Logger: zerolog.Nop(),
			Pages: []config.Page{{ID: page, DefaultApp: "bot", BotAppID: botApp, ClientID: 1}, {ID: agentPage, DefaultApp: "agent", ClientID: 2}}})
		fresh.ExportGauges(ctx)
		got := gathered(t, m, map[string]bool{"handoverd_handover_requests_pending": true, "handoverd_interventions_open": true,
			"handoverd_agent_sends_waiting": true, "handoverd_agent_send_oldest_waiting_seconds": true, "handoverd_handover_offers_open": true,
			"handoverd_threads": true, "handoverd_page_mode": true, "handoverd_page_config_mismatch": true,
			"handoverd_reconcile_threads_due": true, "handoverd_page_last_webhook_timestamp_seconds": true})
		want := map[string]float64{
			"handoverd_handover_requests_pending":          1,
			"handoverd_interventions_open":                 1,
			"handoverd_agent_sends_waiting":                0,
			"handoverd_agent_send_oldest_waiting_seconds":  0,
			"handoverd_handover_offers_open":               1,
			"handoverd_reconcile_threads_due":              0,
			"handoverd_page_config_mismatch{page_id=1001}": 1, "handoverd_page_config_mismatch{page_id=1003}": 0,
			"handoverd_page_last_webhook_timestamp_seconds{page_id=1001}": float64(last.UnixMilli()) / 1000,
		}
		for _, p := range []string{page, agentPage} {
			for _, o := range handover.Owners {
				want["handoverd_threads{owner="+string(o)+",page_id="+p+"}"] = 0
			}
			for _, mode := range handover.PageModes {
				want["handoverd_page_mode{mode="+string(mode)+",page_id="+p+"}"] = 0
			}
		}
		want["handoverd_threads{owner=bot,page_id=1001}"] = 2
		want["handoverd_threads{owner=agent,page_id=1001}"] = 1
		want["handoverd_page_mode{mode=handover_protocol,page_id=1001}"] = 1
		want["handoverd_page_mode{mode=unknown,page_id=1003}"] = 1
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("gauges (-want +got):\n%s", diff)
		}
	})
}

// gathered reads the named metrics from m's registry as name{label=value,…}.
func gathered(t *testing.T, m *metrics.Metrics, names map[string]bool) map[string]float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if !names[mf.GetName()] {
			continue
		}
		for _, s := range mf.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			key := mf.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			v := s.GetGauge().GetValue()
			if s.GetGauge() == nil {
				v = s.GetUntyped().GetValue()
			}
			out[key] = v
		}
	}
	return out
}
