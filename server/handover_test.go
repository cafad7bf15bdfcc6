package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/messenger/simulator"
	"github.com/handoverd/handoverd/store/storetest"
)

const success = `{"status":200,"message":"Success"}`

type histStep struct {
	From, To handover.Owner
	Cause    handover.Cause
	Actor    string
}

func history(v handover.ThreadView) []histStep {
	var out []histStep
	for _, h := range v.History {
		out = append(out, histStep{h.From, h.To, h.Cause, h.Actor})
	}
	return out
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHandoverBotIsDefaultApp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		const psid = "7001"
		h.customerSays(psid, "I need a human")
		h.sim.ResetCalls()

		// bot → agent: handoverd requests control; the bot passes it.
		if status, body := h.engage(botAPIKey, psid, "bot", "agent", ""); status != 200 || body != success {
			t.Fatalf("bot→agent = %d %s", status, body)
		}
		h.flush()
		if v, _ := h.thread(psid); v.Owner != handover.OwnerAgent {
			t.Fatalf("owner after bot→agent = %s, want agent", v.Owner)
		}
		// Asking again while agents own it: success, no Graph call.
		if status, body := h.engage(botAPIKey, psid, "bot", "agent", ""); status != 200 || body != success {
			t.Fatalf("repeated bot→agent = %d %s", status, body)
		}

		// An agent opens an intervention and replies.
		var iv handover.InterventionView
		if st := h.agentJSON(http.MethodPost, "/1.0/interventions", map[string]string{"page_id": pageID, "identity_foreign_id": psid}, &iv); st != 201 {
			t.Fatalf("open intervention = %d", st)
		}
		if iv.Status != "open" || iv.ThreadOwner != handover.OwnerAgent {
			t.Errorf("intervention = %+v", iv)
		}
		// agent → bot while it is open: 409.
		if status, body := h.engage(botAPIKey, psid, "agent", "bot", "&app_id="+botApp); status != 409 || !strings.Contains(body, `"status":409`) {
			t.Errorf("agent→bot with an open intervention = %d %s, want 409", status, body)
		}
		var msg handover.AgentMessageView
		if st := h.agentJSON(http.MethodPost, fmt.Sprintf("/1.0/interventions/%d/messages", iv.ID), map[string]string{"text": "Hi, Alice here"}, &msg); st != 201 {
			t.Fatalf("agent reply = %d %+v", st, msg)
		}
		if msg.Status != "sent" || msg.MID == "" || msg.MessagingType != "RESPONSE" {
			t.Errorf("agent message = %+v", msg)
		}
		inbox := h.sim.Inbox(pageID, psid)
		if len(inbox) != 1 || inbox[0].Text != "Hi, Alice here" || inbox[0].AppID != ourApp {
			t.Errorf("customer received %+v", inbox)
		}

		// Closing the intervention passes the thread back to the default bot.
		if st := h.agentJSON(http.MethodPut, fmt.Sprintf("/1.0/interventions/%d/close", iv.ID), nil, &iv); st != 200 || iv.Status != "closed" {
			t.Fatalf("close = %d %+v", st, iv)
		}
		h.flush()
		// agent → bot now: the bot already owns it, nothing to do.
		if status, body := h.engage(botAPIKey, psid, "agent", "bot", "&app_id="+botApp); status != 200 || body != success {
			t.Errorf("agent→bot after close = %d %s", status, body)
		}

		want := []string{"111 request_thread_control", "222 pass_thread_control", "111 send", "111 pass_thread_control"}
		if diff := cmp.Diff(want, h.calls()); diff != "" {
			t.Errorf("Graph calls (-want +got):\n%s", diff)
		}
		v, _ := h.thread(psid)
		wantHist := []histStep{
			{"idle", "bot", "customer_message", ""},
			{"bot", "agent", "pass_thread_control", ""},
			{"agent", "bot", "pass_thread_control", "alice"},
		}
		if diff := cmp.Diff(wantHist, history(v)); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		if sim := h.sim.Thread(pageID, psid).OwnerAppID; sim != botApp {
			t.Errorf("Facebook says the owner is %q, want the bot", sim)
		}
	})
}

func TestHandoverAgentIsDefaultApp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "agent")
		const psid = "7002"
		h.customerSays(psid, "hello") // we are the default app: ours
		if v, _ := h.thread(psid); v.Owner != handover.OwnerAgent {
			t.Fatalf("owner = %s, want agent", v.Owner)
		}
		h.sim.ResetCalls()
		// agent → bot: pass to the bot (app_id defaults to the page's bot_app_id).
		if status, body := h.engage(agentToken, psid, "agent", "bot", ""); status != 200 || body != success {
			t.Fatalf("agent→bot = %d %s", status, body)
		}
		h.customerSays(psid, "bot, are you there?") // on standby for us now
		if v, _ := h.thread(psid); v.Owner != handover.OwnerBot {
			t.Fatalf("owner after agent→bot = %s", v.Owner)
		}
		// bot → agent: we are the default app, so we take.
		if status, body := h.engage(botAPIKey, psid, "bot", "agent", ""); status != 200 || body != success {
			t.Fatalf("bot→agent = %d %s", status, body)
		}
		var iv handover.InterventionView
		if st := h.agentJSON(http.MethodPost, "/1.0/interventions", map[string]string{"identity_foreign_id": psid}, &iv); st != 201 {
			t.Fatalf("open = %d", st)
		}
		var msg handover.AgentMessageView
		if st := h.agentJSON(http.MethodPost, fmt.Sprintf("/1.0/interventions/%d/messages", iv.ID), map[string]string{"text": "agent here"}, &msg); st != 201 {
			t.Fatalf("reply = %d %+v", st, msg)
		}
		if st := h.agentJSON(http.MethodPut, fmt.Sprintf("/1.0/interventions/%d/close", iv.ID), nil, &iv); st != 200 {
			t.Fatalf("close = %d", st)
		}
		want := []string{"111 pass_thread_control", "111 take_thread_control", "111 send", "111 release_thread_control"}
		if diff := cmp.Diff(want, h.calls()); diff != "" {
			t.Errorf("Graph calls (-want +got):\n%s", diff)
		}
		v, _ := h.thread(psid)
		wantHist := []histStep{
			{"idle", "agent", "customer_message", ""},
			{"agent", "bot", "pass_thread_control", "alice"},
			{"bot", "agent", "take_thread_control", "support-bot"},
			{"agent", "idle", "release_thread_control", "alice"},
		}
		if diff := cmp.Diff(wantHist, history(v)); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		if sim := h.sim.Thread(pageID, psid).OwnerAppID; sim != "" {
			t.Errorf("Facebook says the owner is %q, want idle", sim)
		}
	})
}

func TestHandoverAPIErrors(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t), "bot")
	h.customerSays("7003", "hi")
	tests := []struct {
		name, query, token string
		status             int
		message            string
	}{
		{"missing identity", "from=bot&to=agent&type=messenger", botAPIKey, 400, "identity_foreign_id is missing"},
		{"missing from", "identity_foreign_id=7003&to=agent", botAPIKey, 400, "from is missing"},
		{"bad direction", "identity_foreign_id=7003&from=bot&to=bot", botAPIKey, 400, "from=bot&to=agent"},
		{"bad type", "identity_foreign_id=7003&from=bot&to=agent&type=whatsapp", botAPIKey, 400, "type must be messenger"},
		{"bad app id", "identity_foreign_id=7003&from=agent&to=bot&app_id=abc", botAPIKey, 400, "app_id"},
		{"no token", "identity_foreign_id=7003&from=bot&to=agent", "", 401, "missing API token"},
		{"bad token", "identity_foreign_id=7003&from=bot&to=agent", "nope-nope-nope-nope", 401, "invalid API token"},
		{"other client's page", "identity_foreign_id=7003&from=bot&to=agent&page_id=1001", "other-client-token-0123", 403, "another client"},
		{"unknown identity", "identity_foreign_id=404&from=bot&to=agent", botAPIKey, 404, "unknown identity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/1.0/bots/handover?" + tt.query
			if tt.token != "" {
				path += "&access_token=" + tt.token
			}
			status, body := h.do(http.MethodPost, path, "", nil)
			if status != tt.status || !strings.Contains(string(body), fmt.Sprintf(`"status":%d`, tt.status)) || !strings.Contains(string(body), tt.message) {
				t.Errorf("= %d %s, want %d naming %q", status, body, tt.status, tt.message)
			}
		})
	}
	// The token may also come as a bearer header.
	if status, body := h.do(http.MethodPost, "/1.0/bots/handover?identity_foreign_id=7003&from=bot&to=agent&type=messenger", botAPIKey, nil); status != 200 {
		t.Errorf("bearer token = %d %s", status, body)
	}
	if strings.Contains(h.logs.String(), botAPIKey) {
		t.Error("the access_token from the query string reached the logs")
	}
}

// TestConcurrentHandoversMakeOneGraphCall: two bot→agent calls at once for
// one identity: one request_thread_control, both answered Success.
func TestConcurrentHandoversMakeOneGraphCall(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		const psid = "7004"
		h.customerSays(psid, "hi")
		h.botPasses.Store(false)
		h.sim.ResetCalls()
		h.graphDelay.Store(150)
		var wg sync.WaitGroup
		results := make([]string, 4)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, body := h.engage(botAPIKey, psid, "bot", "agent", "")
				results[i] = fmt.Sprint(status, " ", body)
			}()
		}
		wg.Wait()
		for i, r := range results {
			if r != "200 "+success {
				t.Errorf("call %d = %s", i, r)
			}
		}
		if diff := cmp.Diff([]string{"111 request_thread_control"}, h.calls()); diff != "" {
			t.Errorf("Graph calls (-want +got):\n%s", diff)
		}
		v, _ := h.thread(psid)
		if v.PendingRequest == nil || v.PendingRequest.AppID != ourApp {
			t.Errorf("pending request = %+v, want ours", v.PendingRequest)
		}
	})
}

func TestHandoverWhileFacebookFails(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		const psid = "7005"
		h.customerSays(psid, "hi")
		h.botPasses.Store(false)
		h.sim.ResetCalls()
		// Rate limited twice, then accepted: retried with backoff.
		h.sim.InjectFault(simulator.Fault{Op: "request_thread_control", Times: 2, Code: 613, Message: "(#613) Calls to this API have exceeded the rate limit."})
		if status, body := h.engage(botAPIKey, psid, "bot", "agent", ""); status != 200 {
			t.Fatalf("after rate limits = %d %s", status, body)
		}
		if n := len(h.calls()); n != 3 {
			t.Errorf("Graph calls = %d, want 3 (2 rate-limited + 1)", n)
		}
		// The bot passes; then agent → bot while Facebook answers 5xx
		// throughout: a clear 502 with Graph's code.
		if err := h.bot.PassThreadControl(context.Background(), h.botPage(), psid, ourApp, ""); err != nil {
			t.Fatal(err)
		}
		h.flush()
		h.sim.ResetCalls()
		h.sim.InjectFault(simulator.Fault{Op: "pass_thread_control", Times: 20, HTTPStatus: 503, Code: 2, Message: "(#2) Service temporarily unavailable"})
		status, body := h.engage(botAPIKey, psid, "agent", "bot", "")
		if status != 502 || !strings.Contains(body, `"status":502`) || !strings.Contains(body, "code 2") {
			t.Errorf("agent→bot while Facebook fails = %d %s", status, body)
		}
		// Four attempts, then (no answer but errors: did it happen?) one
		// thread_owner, which shows the agents still hold the thread.
		want := []string{"111 pass_thread_control", "111 pass_thread_control", "111 pass_thread_control", "111 pass_thread_control", "111 thread_owner"}
		if diff := cmp.Diff(want, h.calls()); diff != "" {
			t.Errorf("Graph calls (-want +got):\n%s", diff)
		}
	})
}

// TestAgentSendWaitsForControl: an agent replies while the bot owns the
// thread and does not pass yet; the message waits durably across a restart
// and goes out once control arrives.
func TestAgentSendWaitsForControl(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		const psid = "7006"
		h.customerSays(psid, "hi")
		h.botPasses.Store(false)
		var iv handover.InterventionView
		if st := h.agentJSON(http.MethodPost, "/1.0/interventions", map[string]string{"identity_foreign_id": psid}, &iv); st != 201 || !iv.ControlPending {
			t.Fatalf("open = %d %+v", st, iv)
		}
		var msg handover.AgentMessageView
		st := h.agentJSON(http.MethodPost, fmt.Sprintf("/1.0/interventions/%d/messages", iv.ID), map[string]string{"text": "one moment"}, &msg)
		if st != 202 || msg.Status != "waiting" {
			t.Fatalf("send while the bot owns = %d %+v, want 202 waiting", st, msg)
		}
		if len(h.sim.Inbox(pageID, psid)) != 0 {
			t.Fatal("a message went out while the bot owned the thread")
		}
		h.restart()
		// The bot passes; the waiting message goes out.
		if err := h.bot.PassThreadControl(context.Background(), h.botPage(), psid, ourApp, ""); err != nil {
			t.Fatal(err)
		}
		h.flush()
		var msgs []handover.AgentMessageView
		waitFor(t, "the waiting message to be sent", func() bool {
			h.agentJSON(http.MethodGet, fmt.Sprintf("/1.0/interventions/%d/messages", iv.ID), nil, &msgs)
			return len(msgs) == 1 && msgs[0].Status == "sent"
		})
		if inbox := h.sim.Inbox(pageID, psid); len(inbox) != 1 || inbox[0].Text != "one moment" {
			t.Errorf("customer received %+v", inbox)
		}
		// The send came only after our app held the thread.
		calls := h.calls()
		if i, j := indexOf(calls, "222 pass_thread_control"), indexOf(calls, "111 send"); i < 0 || j < i {
			t.Errorf("send before control: %v", calls)
		}
	})
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

func TestAgentSendFailsWhenControlNeverComes(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t), "bot")
	const psid = "7007"
	h.customerSays(psid, "hi")
	h.botPasses.Store(false)
	var iv handover.InterventionView
	h.agentJSON(http.MethodPost, "/1.0/interventions", map[string]string{"identity_foreign_id": psid}, &iv)
	var msg handover.AgentMessageView
	h.agentJSON(http.MethodPost, fmt.Sprintf("/1.0/interventions/%d/messages", iv.ID), map[string]string{"text": "hello?"}, &msg)
	h.clock.Advance(3 * time.Minute)
	waitFor(t, "the message to fail", func() bool {
		var msgs []handover.AgentMessageView
		h.agentJSON(http.MethodGet, fmt.Sprintf("/1.0/interventions/%d/messages", iv.ID), nil, &msgs)
		msg = msgs[0]
		return msg.Status == "failed"
	})
	if !strings.Contains(msg.Error, "did not arrive within 2m0s") {
		t.Errorf("error = %q", msg.Error)
	}
	if len(h.sim.Inbox(pageID, psid)) != 0 {
		t.Error("the message went out anyway")
	}
}

// TestStaleOwnerOnSend: handoverd believes it owns the thread but Facebook
// gave it to the bot silently. The send's 10/2018300 makes handoverd ask
// thread_owner, correct the state, request control once, and send.
func TestStaleOwnerOnSend(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		const psid = "7008"
		h.customerSays(psid, "hi")
		var iv handover.InterventionView
		h.agentJSON(http.MethodPost, "/1.0/interventions", map[string]string{"identity_foreign_id": psid}, &iv)
		h.flush()
		if v, _ := h.thread(psid); v.Owner != handover.OwnerAgent {
			t.Fatalf("owner = %s", v.Owner)
		}
		h.clock.Advance(time.Second)
		h.sim.SetOwner(pageID, psid, botApp) // no webhook: our state is now stale
		h.sim.ResetCalls()
		var msg handover.AgentMessageView
		h.agentJSON(http.MethodPost, fmt.Sprintf("/1.0/interventions/%d/messages", iv.ID), map[string]string{"text": "still here"}, &msg)
		waitFor(t, "the message to be sent", func() bool { return len(h.sim.Inbox(pageID, psid)) == 1 })
		want := []string{"111 send", "111 thread_owner", "111 request_thread_control", "222 pass_thread_control", "111 send"}
		if diff := cmp.Diff(want, h.calls()); diff != "" {
			t.Errorf("Graph calls (-want +got):\n%s", diff)
		}
		v, _ := h.thread(psid)
		causes := history(v)
		if got := causes[len(causes)-2]; got.Cause != handover.CauseThreadOwner {
			t.Errorf("correction step = %+v, want cause thread_owner", got)
		}
	})
}

func TestInterventionIdleCloses(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t), "bot")
	const psid = "7009"
	h.customerSays(psid, "hi")
	var iv handover.InterventionView
	h.agentJSON(http.MethodPost, "/1.0/interventions", map[string]string{"identity_foreign_id": psid}, &iv)
	h.flush()
	h.clock.Advance(61 * time.Minute)
	n, err := h.srv.Handover().CloseIdleInterventions(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("CloseIdleInterventions = %d, %v", n, err)
	}
	h.agentJSON(http.MethodGet, fmt.Sprintf("/1.0/interventions/%d", iv.ID), nil, &iv)
	if iv.Status != "closed" || iv.CloseReason != "idle" {
		t.Errorf("intervention = %+v", iv)
	}
	if sim := h.sim.Thread(pageID, psid).OwnerAppID; sim != botApp {
		t.Errorf("owner after idle close = %q, want the bot", sim)
	}
	var list []handover.InterventionView
	if st := h.agentJSON(http.MethodGet, "/1.0/interventions?identity_foreign_id="+psid, nil, &list); st != 200 || len(list) != 1 {
		t.Errorf("list = %d %+v", st, list)
	}
}

// TestClosingWithdrawsAPendingRequest: an intervention closed before the
// bot passed control withdraws handoverd's request on its side.
func TestClosingWithdrawsAPendingRequest(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t), "bot")
	const psid = "7010"
	h.customerSays(psid, "hi")
	h.botPasses.Store(false)
	var iv handover.InterventionView
	h.agentJSON(http.MethodPost, "/1.0/interventions", map[string]string{"identity_foreign_id": psid}, &iv)
	if v, _ := h.thread(psid); v.PendingRequest == nil {
		t.Fatal("no pending request after opening the intervention")
	}
	if st := h.agentJSON(http.MethodPut, fmt.Sprintf("/1.0/interventions/%d/close", iv.ID), nil, &iv); st != 200 {
		t.Fatalf("close = %d", st)
	}
	if v, _ := h.thread(psid); v.PendingRequest != nil || v.Owner != handover.OwnerBot {
		t.Errorf("after close: owner %s, pending %+v; want bot and no pending request", v.Owner, v.PendingRequest)
	}
	// A new bot→agent handover asks again (one more request).
	h.sim.ResetCalls()
	if status, body := h.engage(botAPIKey, psid, "bot", "agent", ""); status != 200 {
		t.Fatalf("bot→agent = %d %s", status, body)
	}
	if diff := cmp.Diff([]string{"111 request_thread_control"}, h.calls()); diff != "" {
		t.Errorf("Graph calls (-want +got):\n%s", diff)
	}
}
