package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/messenger/simulator"
	"github.com/handoverd/handoverd/openapi"
	"github.com/handoverd/handoverd/server"
	"github.com/handoverd/handoverd/store/storetest"
)

const adminToken = "ops-admin-token-0123456789"

// withAdmin adds an admin user without a client to the configuration
// and restarts handoverd with it.
func (h *harness) withAdmin() {
	h.t.Helper()
	h.cfg.Users = append(h.cfg.Users, config.User{Name: "ops", Role: config.RoleAdmin, Token: adminToken})
	h.restart()
}

// docExample returns the example name of path's GET 200 answer (of media
// type mt) in openapi.yaml, decoded.
func docExample(t *testing.T, path, mt, name string) any {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openapi.Spec())
	if err != nil {
		t.Fatal(err)
	}
	c := doc.Paths.Find(path).Get.Responses.Status(200).Value.Content[mt]
	if name == "" {
		return c.Example
	}
	ex := c.Examples[name]
	if ex == nil || ex.Value == nil {
		t.Fatalf("openapi.yaml has no example %s for GET %s", name, path)
	}
	return ex.Value.Value
}

// checkPagesExample holds the real answer of GET /1.0/pages to an example
// of the document.
func (h *harness) checkPagesExample(t *testing.T, name string) {
	t.Helper()
	_, body := h.do(http.MethodGet, "/1.0/pages", adminToken, nil)
	var got any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(docExample(t, "/1.0/pages", "application/json", name), got); diff != "" {
		t.Errorf("GET /1.0/pages and the example %q in openapi.yaml differ (-example +real):\n%s", name, diff)
	}
}

// pages reads GET /1.0/pages as the admin.
func (h *harness) pages() []handover.PageView {
	h.t.Helper()
	status, body := h.do(http.MethodGet, "/1.0/pages", adminToken, nil)
	if status != http.StatusOK {
		h.t.Fatalf("GET /1.0/pages = %d: %s", status, body)
	}
	var out struct{ Pages []handover.PageView }
	if err := json.Unmarshal(body, &out); err != nil {
		h.t.Fatalf("decode pages: %v: %s", err, body)
	}
	return out.Pages
}

// readyz reads /readyz.
func (h *harness) readyz() (int, map[string]any) {
	h.t.Helper()
	status, body := h.do(http.MethodGet, "/readyz", "", nil)
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		h.t.Fatalf("decode readyz: %v: %s", err, body)
	}
	return status, v
}

// metricLine returns the /metrics line that starts with prefix ("" if none).
func (h *harness) metricLine(prefix string) string {
	h.t.Helper()
	_, body := h.do(http.MethodGet, "/metrics", "", nil)
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// countLogs counts the log lines at level whose message starts with msg.
func (h *harness) countLogs(level, msg string) int {
	n := 0
	for _, l := range h.logLines() {
		if l["level"] == level && strings.HasPrefix(l["message"].(string), msg) {
			n++
		}
	}
	return n
}

// TestPageModeFromAppRoles: the config says default_app: bot, and the Page
// admin makes another app the primary receiver (an app_roles webhook from
// the simulator): GET /1.0/pages, /readyz, the metrics and a warning in
// the log say they disagree, and say so again after a restart; once the
// bot is the primary receiver again they agree. Only admins read the
// Pages.
func TestPageModeFromAppRoles(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		h.withAdmin()
		h.customerSays("7701", "hi")
		h.customerSays("7702", "hello")

		pages := h.pages()
		if len(pages) != 1 {
			t.Fatalf("pages = %+v", pages)
		}
		p := pages[0]
		if p.Meta.Mode != handover.ModeUnknown || !p.Agrees || p.Warning != "" {
			t.Errorf("before any app_roles: %+v", p)
		}
		if diff := cmp.Diff(map[handover.Owner]int{"bot": 2, "agent": 0, "page_inbox": 0, "idle": 0, "other": 0}, p.Threads); diff != "" {
			t.Errorf("threads by owner (-want +got):\n%s", diff)
		}
		if p.LastWebhookAt == nil || !p.LastWebhookAt.Equal(h.clock.Now()) {
			t.Errorf("last_webhook_at = %v, want %v", p.LastWebhookAt, h.clock.Now())
		}
		if st, v := h.readyz(); st != 200 || v["warnings"] != nil {
			t.Errorf("readyz before = %d %v", st, v)
		}
		h.checkPagesExample(t, "unknown")

		h.clock.Advance(time.Minute)
		if err := h.sim.SetAppRoles(pageID, map[string][]string{"333": {"primary_receiver"}, ourApp: {"secondary_receiver"}, botApp: {"secondary_receiver"}}); err != nil {
			t.Fatal(err)
		}
		h.flush()
		p = h.pages()[0]
		wantWarning := "page 1001: config says default_app: bot (the bot (app 222)), but Meta's app_roles make app 333 the primary receiver"
		if p.Meta.Mode != handover.ModeHandoverProtocol || p.Meta.DefaultAppID != "333" || p.Meta.DefaultApp != handover.OwnerOther ||
			p.Meta.Source != "app_roles" || p.Agrees || p.Warning != wantWarning {
			t.Errorf("after app_roles: %+v", p)
		}
		if diff := cmp.Diff(map[string][]string{"333": {"primary_receiver"}, ourApp: {"secondary_receiver"}, botApp: {"secondary_receiver"}}, p.Meta.Roles); diff != "" {
			t.Errorf("roles (-want +got):\n%s", diff)
		}
		if p.Meta.LearnedAt == nil || !p.Meta.LearnedAt.Equal(h.clock.Now()) {
			t.Errorf("learned_at = %v", p.Meta.LearnedAt)
		}
		h.checkPagesExample(t, "disagrees")
		st, v := h.readyz()
		if want := []any{map[string]any{"page_id": pageID, "warning": wantWarning}}; st != 200 || !cmp.Equal(want, v["warnings"]) {
			t.Errorf("readyz = %d %v, want 200 with %v", st, v, want)
		}
		if got := h.countLogs("warn", "page mode: "+wantWarning); got != 1 {
			t.Errorf("%d warnings logged as app_roles arrived, want 1:\n%s", got, h.logs.String())
		}
		if l := h.metricLine(`handoverd_page_config_mismatch{page_id="1001"}`); !strings.HasSuffix(l, " 1") {
			t.Errorf("mismatch metric: %q", l)
		}
		if l := h.metricLine(`handoverd_page_mode{mode="handover_protocol",page_id="1001"}`); !strings.HasSuffix(l, " 1") {
			t.Errorf("mode metric: %q", l)
		}

		// A new process says so as it starts.
		h.restart()
		if got := h.countLogs("warn", "page mode: "+wantWarning); got != 2 {
			t.Errorf("%d warnings logged after the restart, want 2", got)
		}

		// The bot becomes the primary receiver: config and Meta agree.
		h.clock.Advance(time.Minute)
		if err := h.sim.SetAppRoles(pageID, map[string][]string{botApp: {"primary_receiver"}, ourApp: {"secondary_receiver"}}); err != nil {
			t.Fatal(err)
		}
		h.flush()
		p = h.pages()[0]
		if p.Meta.Mode != handover.ModeHandoverProtocol || p.Meta.DefaultAppID != botApp || p.Meta.DefaultApp != handover.OwnerBot || !p.Agrees || p.Warning != "" {
			t.Errorf("bot primary: %+v", p)
		}
		if st, v := h.readyz(); st != 200 || v["warnings"] != nil {
			t.Errorf("readyz after = %d %v", st, v)
		}
		if l := h.metricLine(`handoverd_page_config_mismatch{page_id="1001"}`); !strings.HasSuffix(l, " 0") {
			t.Errorf("mismatch metric after: %q", l)
		}

		// Roles without a primary receiver: zero-config, which the config does not say.
		h.clock.Advance(time.Minute)
		if err := h.sim.SetAppRoles(pageID, map[string][]string{botApp: {"secondary_receiver"}}); err != nil {
			t.Fatal(err)
		}
		h.flush()
		if p = h.pages()[0]; p.Meta.Mode != handover.ModeZeroConfig || p.Agrees || !strings.Contains(p.Warning, "no primary receiver") {
			t.Errorf("zero-config: %+v", p)
		}

		// Only admins.
		for token, want := range map[string]int{agentToken: 403, botAPIKey: 403, "": 401, "wrong-token-0123456789": 401} {
			if st, body := h.do(http.MethodGet, "/1.0/pages", token, nil); st != want || !strings.Contains(string(body), `"error"`) {
				t.Errorf("GET /1.0/pages with %q = %d %s, want %d", token, st, body, want)
			}
		}
	})
}

// TestPageModeFromThreadOwner: the config says default_app: bot, but on
// Meta's side handoverd's app is the default app (Conversation Routing):
// thread_owner shows handoverd another app's id, which only the owner and
// the default app see, and /1.0/pages says the config is wrong.
func TestPageModeFromThreadOwner(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		h.withAdmin()
		h.sim.AddPage(simulator.Page{ID: pageID, DefaultAppID: ourApp, Tokens: map[string]string{ourToken: ourApp, botToken: botApp}})
		h.customerSays("7711", "hi")
		h.sim.SetOwner(pageID, "7711", botApp)
		h.clock.Advance(time.Second)
		if owner, err := h.srv.Handover().Reconcile(context.Background(), pageID, "7711"); err != nil || owner != handover.OwnerBot {
			t.Fatalf("Reconcile = %v %v", owner, err)
		}
		p := h.pages()[0]
		want := "page 1001: config says default_app: bot (the bot (app 222)), but Graph's thread_owner answers show handoverd (app 111) is the default app"
		if p.Meta.Mode != handover.ModeConversationRouting || p.Meta.DefaultAppID != ourApp || p.Meta.Source != "thread_owner" || p.Warning != want {
			t.Errorf("pages = %+v", p)
		}
		if n := h.countLogs("warn", "page mode: "+want); n != 1 {
			t.Errorf("%d warnings logged as thread_owner showed the default app, want 1", n)
		}
		// Seen again: nothing new to say.
		if _, err := h.srv.Handover().Reconcile(context.Background(), pageID, "7711"); err != nil {
			t.Fatal(err)
		}
		if n := h.countLogs("warn", "page mode: "+want); n != 1 {
			t.Errorf("%d warnings logged after a second thread_owner answer, want still 1", n)
		}
	})
}

// missedPass leaves psid in the state a lost webhook leaves: the agents
// asked the bot for control (an intervention), the bot passed it, and the
// pass_thread_control webhook never arrived.
func (h *harness) missedPass(psid string) {
	h.t.Helper()
	h.botPasses.Store(false)
	h.customerSays(psid, "I need a human")
	if st := h.agentJSON(http.MethodPost, "/1.0/interventions", map[string]string{"identity_foreign_id": psid}, nil); st != 201 {
		h.t.Fatalf("open intervention on %s = %d", psid, st)
	}
	h.flush()
	h.sim.SetOwner(pageID, psid, ourApp) // the bot passed; no webhook came
	if v, _ := h.thread(psid); v.Owner != handover.OwnerBot || v.PendingRequest == nil {
		h.t.Fatalf("%s before reconciliation: %+v", psid, v)
	}
}

// threadOwnerCalls counts the thread_owner calls handoverd made per PSID.
func (h *harness) threadOwnerCalls() map[string]int {
	out := map[string]int{}
	for _, c := range h.sim.Calls() {
		if c.Op == "thread_owner" && c.AppID == ourApp {
			out[c.PSID]++
		}
	}
	return out
}

// TestReconcileMissedWebhook: a request for control whose grant was
// missed (the pass webhook never came) is doubtful once it has been
// pending past handover.control_timeout; reconciliation asks thread_owner,
// gives the thread to the agents with the reason "reconciled", and does
// not ask again. A thread whose state is right is asked once and left.
func TestReconcileMissedWebhook(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		ctx := context.Background()
		const psid, fine = "7801", "7802"
		h.missedPass(psid)
		h.customerSays(fine, "just the bot")
		h.sim.ResetCalls()

		svc := h.srv.Handover()
		if _, err := svc.ReconcileDoubtful(ctx); err != nil {
			t.Fatal(err)
		}
		if calls := h.threadOwnerCalls(); len(calls) != 0 {
			t.Errorf("thread_owner asked before the request timed out: %v", calls)
		}

		h.clock.Advance(h.cfg.Handover.ControlTimeout + time.Second)
		if _, err := svc.ReconcileDoubtful(ctx); err != nil {
			t.Fatal(err)
		}
		v, _ := h.thread(psid)
		if v.Owner != handover.OwnerAgent || v.PendingRequest != nil {
			t.Errorf("after reconciliation: %+v", v)
		}
		last := v.History[len(v.History)-1]
		if want := (handover.TransitionView{At: h.clock.Now(), From: "bot", To: "agent", Cause: "reconciled", Reason: handover.ReasonReconciled, FromAppID: botApp, ToAppID: ourApp}); !cmp.Equal(want, last) {
			t.Errorf("last transition (-want +got):\n%s", cmp.Diff(want, last))
		}
		if diff := cmp.Diff(map[string]int{psid: 1}, h.threadOwnerCalls()); diff != "" {
			t.Errorf("thread_owner calls (-want +got):\n%s", diff)
		}
		if l := h.metricLine(`handoverd_reconcile_checks_total{result="corrected"}`); !strings.HasSuffix(l, " 1") {
			t.Errorf("corrected metric: %q", l)
		}

		// Checked: not asked again, on this process or after a restart.
		h.clock.Advance(time.Hour)
		if _, err := svc.ReconcileDoubtful(ctx); err != nil {
			t.Fatal(err)
		}
		h.restart()
		if _, err := h.srv.Handover().ReconcileDoubtful(ctx); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]int{psid: 1}, h.threadOwnerCalls()); diff != "" {
			t.Errorf("thread_owner calls later (-want +got):\n%s", diff)
		}
		if v, _ := h.thread(fine); v.Owner != handover.OwnerBot || len(v.History) != 1 {
			t.Errorf("the thread nobody doubted: %+v", v)
		}
	})
}

// TestReconcileFailedHandover: a hand-back Facebook refused is doubtful;
// reconciliation finds the thread already idle on Meta's side and says so.
// A check Graph refuses is tried again after a minute.
func TestReconcileFailedHandover(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "agent")
		const psid = "7811"
		h.customerSays(psid, "hi") // handoverd is the default app: the thread is ours
		h.sim.SetOwner(pageID, psid, "")
		h.sim.InjectFault(simulator.Fault{Op: "release_thread_control", AppID: ourApp, Times: 3, HTTPStatus: 400, Code: 100, Message: "(#100) Invalid parameter"})
		if _, err := h.srv.Handover().GiveBack(context.Background(), pageID, psid, "alice"); err == nil {
			t.Fatal("the refused release succeeded")
		}
		h.sim.ResetCalls()
		h.clock.Advance(time.Second)
		// The first check fails (Graph refuses thread_owner): the thread
		// stays doubtful and is asked again a minute later.
		h.sim.InjectFault(simulator.Fault{Op: "thread_owner", AppID: ourApp, HTTPStatus: 400, Code: 100, Message: "(#100) Invalid parameter"})
		res, err := h.srv.Handover().ReconcileDoubtful(context.Background())
		if err != nil || res.Checked != 1 || res.Failed != 1 {
			t.Fatalf("first pass = %+v, %v", res, err)
		}
		if v, _ := h.thread(psid); v.Owner != handover.OwnerAgent {
			t.Errorf("a failed check changed the thread: %+v", v)
		}
		if res, _ := h.srv.Handover().ReconcileDoubtful(context.Background()); res.Checked != 0 {
			t.Errorf("asked again at once: %+v", res)
		}
		h.clock.Advance(time.Minute + time.Second)
		if _, err := h.srv.Handover().ReconcileDoubtful(context.Background()); err != nil {
			t.Fatal(err)
		}
		v, _ := h.thread(psid)
		if last := v.History[len(v.History)-1]; v.Owner != handover.OwnerIdle || last.Cause != "reconciled" || last.Reason != handover.ReasonReconciled || last.From != handover.OwnerAgent {
			t.Errorf("after reconciliation: %+v", v)
		}
		if diff := cmp.Diff(map[string]int{psid: 2}, h.threadOwnerCalls()); diff != "" {
			t.Errorf("thread_owner calls (-want +got):\n%s", diff)
		}
	})
}

// startReplica starts a second handoverd process on the harness's
// database and returns it.
func (h *harness) startReplica() *server.Server {
	h.t.Helper()
	srv, err := server.New(context.Background(), server.Options{Config: h.cfg, Logger: zerolog.New(h.logs).Level(zerolog.DebugLevel),
		Clock: h.clock.Paced(), GraphRetry: messenger.Retry{Initial: time.Millisecond, Max: 5 * time.Millisecond}, GraphTransport: delayTransport{h}})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { srv.Close() })
	return srv
}

// TestReconcileRateLimitAcrossProcesses: two handoverd processes on one
// database reconcile five doubtful threads of one Page with
// reconcile.rate 2: together they ask thread_owner at most twice per
// second of the (injected) clock, never twice about one thread, and every
// thread ends corrected.
func TestReconcileRateLimitAcrossProcesses(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		h.cfg.Reconcile = config.Reconcile{Rate: 2, Interval: time.Hour}
		h.restart()
		other := h.startReplica()
		psids := []string{"7901", "7902", "7903", "7904", "7905"}
		for _, p := range psids {
			h.missedPass(p)
		}
		h.sim.ResetCalls()
		h.clock.Advance(h.cfg.Handover.ControlTimeout + time.Second)

		both := func() {
			t.Helper()
			var wg sync.WaitGroup
			for _, svc := range []*handover.Service{h.srv.Handover(), other.Handover()} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := svc.ReconcileDoubtful(context.Background()); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
		}
		total := func() (n int) {
			for p, c := range h.threadOwnerCalls() {
				if c != 1 {
					t.Errorf("thread_owner asked %d times about %s", c, p)
				}
				n += c
			}
			return n
		}
		for i, want := range []int{2, 2, 4, 5, 5} {
			both()
			if got := total(); got != want {
				t.Errorf("pass %d: %d thread_owner calls in all, want %d", i, got, want)
			}
			if i != 0 { // the second pass stays in the first second
				h.clock.Advance(time.Second)
			}
		}
		for _, p := range psids {
			if v, _ := h.thread(p); v.Owner != handover.OwnerAgent || v.History[len(v.History)-1].Reason != handover.ReasonReconciled {
				t.Errorf("%s: %+v", p, v)
			}
		}
	})
}

// TestReconcileOnStart: a process starting finds the threads left
// doubtful (here while no process ran) and corrects them without being asked.
func TestReconcileOnStart(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		const psid = "7821"
		h.missedPass(psid)
		h.stop()
		h.clock.Advance(h.cfg.Handover.ControlTimeout + time.Second)
		h.startServer()
		waitFor(t, "the start's reconciliation", func() bool {
			v, _ := h.thread(psid)
			return v.Owner == handover.OwnerAgent && v.History[len(v.History)-1].Cause == "reconciled"
		})
	})
}

// TestReconcileRefusedSend: an agent's message is refused as not the
// owner (the bot took the thread without a webhook) and the thread_owner
// lookup right after fails: the thread stays doubtful, and reconciliation
// corrects it later (the owner's id is hidden from handoverd, which is not
// the default app: "other").
func TestReconcileRefusedSend(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		const psid = "7831"
		iv := h.openAgentThread(psid)
		h.sim.SetOwner(pageID, psid, botApp) // no webhook
		h.sim.InjectFault(simulator.Fault{Op: "thread_owner", AppID: ourApp, HTTPStatus: 400, Code: 100, Message: "(#100) Invalid parameter"})
		var m handover.AgentMessageView
		h.agentJSON(http.MethodPost, "/1.0/interventions/"+strconv.FormatInt(iv.ID, 10)+"/messages", map[string]string{"text": "hello?"}, &m)
		waitFor(t, "the refused message to fail", func() bool {
			ms := h.interventionMessages(iv.ID)
			return len(ms) == 1 && ms[0].Status == "failed"
		})
		if v, _ := h.thread(psid); v.Owner != handover.OwnerAgent {
			t.Fatalf("before reconciliation: %+v", v)
		}
		h.sim.ResetCalls()
		h.clock.Advance(time.Second)
		if _, err := h.srv.Handover().ReconcileDoubtful(context.Background()); err != nil {
			t.Fatal(err)
		}
		v, _ := h.thread(psid)
		if last := v.History[len(v.History)-1]; v.Owner != handover.OwnerOther || last.Cause != "reconciled" || last.Reason != handover.ReasonReconciled || last.From != handover.OwnerAgent {
			t.Errorf("after reconciliation: %+v", v)
		}
		if diff := cmp.Diff(map[string]int{psid: 1}, h.threadOwnerCalls()); diff != "" {
			t.Errorf("thread_owner calls (-want +got):\n%s", diff)
		}
	})
}
