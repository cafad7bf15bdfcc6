package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/messenger/simulator"
	"github.com/handoverd/handoverd/store/storetest"
)

const (
	botHookSecret = "bot-hook-secret-0123456789"
	bobToken      = "bob-agent-token-0123456789"
)

// botReceiver is the bot's handover-event webhook: it checks every
// delivery's signature and keeps the events in arrival order.
type botReceiver struct {
	t      testing.TB
	mu     sync.Mutex
	events []handover.BotEvent
	ids    []string // X-Handoverd-Event-Id of every attempt
	fail   int      // answer this many attempts with 503 first
}

func (b *botReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ts, _ := strconv.ParseInt(r.Header.Get(handover.HeaderBotTimestamp), 10, 64)
	if got, want := r.Header.Get(handover.HeaderBotSignature), handover.SignBotEvent(botHookSecret, ts, body); got != want {
		b.t.Errorf("bot event signature = %q, want %q", got, want)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ev handover.BotEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		b.t.Errorf("bot event body: %v: %s", err, body)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ids = append(b.ids, r.Header.Get(handover.HeaderBotEventID))
	if ev.ID != r.Header.Get(handover.HeaderBotEventID) || ev.Type != r.Header.Get(handover.HeaderBotEvent) {
		b.t.Errorf("headers %s/%s disagree with the body %s/%s", r.Header.Get(handover.HeaderBotEventID), r.Header.Get(handover.HeaderBotEvent), ev.ID, ev.Type)
	}
	if b.fail > 0 {
		b.fail--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	b.events = append(b.events, ev)
	w.WriteHeader(http.StatusNoContent)
}

func (b *botReceiver) types() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, e := range b.events {
		out = append(out, e.Type)
	}
	return out
}

func (b *botReceiver) last() handover.BotEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.events[len(b.events)-1]
}

// withBotHook gives the harness's Page a bot webhook and a second agent
// (bob), and restarts handoverd with them.
func (h *harness) withBotHook(t *testing.T) *botReceiver {
	rec := &botReceiver{t: t}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	h.cfg.Pages[0].BotWebhook = config.BotWebhook{URL: srv.URL + "/hooks/handover?token=secret-in-query", Secret: botHookSecret}
	h.cfg.Users = append(h.cfg.Users, config.User{Name: "bob", Role: "agent", Token: bobToken, ClientID: 1})
	h.cfg.Handover.OfferTimeout = 10 * time.Minute
	h.restart()
	return rec
}

// handoff calls POST /1.0/handovers as the bot.
func (h *harness) handoff(in map[string]any) (int, handover.HandoffView, []byte) {
	h.t.Helper()
	b, _ := json.Marshal(in)
	status, body := h.do(http.MethodPost, "/1.0/handovers", botAPIKey, b)
	var v handover.HandoffView
	if status == http.StatusCreated {
		if err := json.Unmarshal(body, &v); err != nil {
			h.t.Fatalf("decode handover: %v: %s", err, body)
		}
	}
	return status, v, body
}

// conversationOffer returns the psid's conversation status and offer_id.
func (h *harness) conversationOffer(psid string) (string, any) {
	h.t.Helper()
	_, list := h.api(http.MethodGet, "/conversations?status=all", nil)
	for _, c := range list["data"].(map[string]any)["payload"].([]any) {
		if cm := c.(map[string]any); cm["psid"] == psid {
			return cm["status"].(string), cm["offer_id"]
		}
	}
	return "", nil
}

func graphOps(h *harness, op string) int {
	n := 0
	for _, c := range h.sim.Calls() {
		if c.AppID == ourApp && c.Op == op {
			n++
		}
	}
	return n
}

// TestOfferAccept: a bot offers a conversation; the conversation is in the
// agents' queue, offered, while the bot keeps the thread (no Graph call);
// the first accept gets it — handoverd requests control, the bot passes —
// and a later accept is a 409. The bot hears of both through its signed
// webhook, and the history records the reasons and metadata.
func TestOfferAccept(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		rec := h.withBotHook(t)
		const psid = "8101"
		h.customerSays(psid, "can I talk to someone about my bill?")
		h.sim.ResetCalls()
		rec.mu.Lock()
		rec.fail = 1 // the first delivery attempt fails: it is retried with the same id, before any later event
		rec.mu.Unlock()

		status, off, body := h.handoff(map[string]any{"page_id": pageID, "identity_foreign_id": psid, "to": "agent", "mode": "offer",
			"reason": "customer_asked", "metadata": map[string]any{"topic": "billing", "score": 0.4}})
		if status != http.StatusCreated {
			t.Fatalf("offer = %d %s", status, body)
		}
		if off.Status != handover.HandoffOpen || off.Mode != "offer" || off.Reason != handover.ReasonCustomerAsked || off.ExpiresAt == nil ||
			!off.ExpiresAt.Equal(start.Add(10*time.Minute)) {
			t.Errorf("offer = %+v", off)
		}
		if got := h.sim.Calls(); len(got) != 0 {
			t.Errorf("an offer made Graph calls: %v", h.calls())
		}
		if st, offer := h.conversationOffer(psid); st != "open" || offer != float64(off.ID) {
			t.Errorf("conversation while offered = %s, offer_id %v; want open, %d", st, offer, off.ID)
		}
		if v, _ := h.thread(psid); v.Owner != handover.OwnerBot {
			t.Errorf("owner while offered = %s, want bot (the bot keeps the thread)", v.Owner)
		}

		waitFor(t, "the first delivery attempt", func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return len(rec.ids) == 1 })

		var acc handover.HandoffView
		if st := h.agentJSON(http.MethodPost, fmt.Sprintf("/1.0/handovers/%d/accept", off.ID), nil, &acc); st != http.StatusOK {
			t.Fatalf("accept = %d", st)
		}
		if acc.Status != handover.HandoffAccepted || acc.DecidedBy != "alice" || acc.InterventionID == 0 {
			t.Errorf("accepted = %+v", acc)
		}
		h.flush()
		v, _ := h.thread(psid)
		if v.Owner != handover.OwnerAgent {
			t.Fatalf("owner after accept = %s, want agent", v.Owner)
		}
		if n := graphOps(h, "request_thread_control"); n != 1 {
			t.Errorf("request_thread_control calls = %d, want 1", n)
		}
		last := v.History[len(v.History)-1]
		if diff := cmp.Diff(handover.TransitionView{At: last.At, From: handover.OwnerBot, To: handover.OwnerAgent, Cause: handover.CausePass,
			FromAppID: botApp, ToAppID: ourApp, Reason: handover.ReasonAgentTookOver,
			Metadata: handover.Metadata{"topic": "billing", "score": 0.4}}, last); diff != "" {
			t.Errorf("last transition (-want +got):\n%s", diff)
		}
		if st, offer := h.conversationOffer(psid); st != "open" || offer != nil {
			t.Errorf("conversation after accept = %s, offer_id %v; want open, null", st, offer)
		}

		// A second accept, by another agent: 409 naming who won; no Graph call.
		h.sim.ResetCalls()
		st, b2 := h.do(http.MethodPost, fmt.Sprintf("/1.0/handovers/%d/accept", off.ID), bobToken, nil)
		if st != http.StatusConflict || !bytes.Contains(b2, []byte("accepted by alice")) {
			t.Errorf("second accept = %d %s, want 409 naming alice", st, b2)
		}
		if len(h.sim.Calls()) != 0 {
			t.Errorf("the losing accept called Graph: %v", h.calls())
		}

		h.clock.Advance(6 * time.Second) // past the first retry delay
		waitFor(t, "bot events", func() bool { return len(rec.types()) >= 2 })
		if diff := cmp.Diff([]string{handover.EventOffered, handover.EventAccepted}, rec.types()); diff != "" {
			t.Errorf("bot events (-want +got):\n%s", diff)
		}
		rec.mu.Lock()
		if len(rec.ids) != 3 || rec.ids[0] != rec.ids[1] || rec.ids[1] == rec.ids[2] {
			t.Errorf("delivery ids = %v, want the retried event's id twice, then a new one", rec.ids)
		}
		rec.mu.Unlock()
		ev := rec.last()
		if ev.Handover == nil || ev.Handover.ID != off.ID || ev.Handover.DecidedBy != "alice" || ev.IdentityForeignID != psid ||
			ev.Metadata["topic"] != "billing" {
			t.Errorf("accepted event = %+v", ev)
		}
		// The agent hands the conversation back: the bot hears handover.returned, with the reason.
		if st := h.agentJSON(http.MethodPut, fmt.Sprintf("/1.0/interventions/%d/close", acc.InterventionID), nil, nil); st != http.StatusOK {
			t.Fatalf("close = %d", st)
		}
		h.flush()
		waitFor(t, "handover.returned", func() bool { return len(rec.types()) == 3 })
		if ev := rec.last(); ev.Type != handover.EventReturned || ev.Reason != handover.ReasonAgentResolved || ev.Data["actor"] != "alice" {
			t.Errorf("returned event = %+v", ev)
		}
		if v, _ := h.thread(psid); v.History[len(v.History)-1].Reason != handover.ReasonAgentResolved {
			t.Errorf("hand-back transition = %+v, want reason agent_resolved", v.History[len(v.History)-1])
		}
		if logs := h.logs.String(); bytes.Contains([]byte(logs), []byte(botHookSecret)) || bytes.Contains([]byte(logs), []byte("secret-in-query")) {
			t.Error("the bot webhook's secret reached the logs")
		}
	})
}

// TestOfferConcurrentAccepts: two agents accept one offer at once, on two
// handoverd processes sharing the database: one wins, the other gets
// 409, and handoverd makes one Graph call.
func TestOfferConcurrentAccepts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		h.withBotHook(t)
		other := h.replica()
		const psid = "8102"
		h.customerSays(psid, "help")
		status, off, body := h.handoff(map[string]any{"identity_foreign_id": psid, "to": "agent", "mode": "offer"})
		if status != http.StatusCreated {
			t.Fatalf("offer = %d %s", status, body)
		}
		h.sim.ResetCalls()
		h.graphDelay.Store(50) // keep the winner's Graph call in flight while the other accept lands
		path := fmt.Sprintf("/1.0/handovers/%d/accept", off.ID)
		statuses := make([]int, 2)
		var wg sync.WaitGroup
		for i, c := range []struct{ base, token string }{{h.url, agentToken}, {other, bobToken}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest(http.MethodPost, c.base+path, nil)
				req.Header.Set("Authorization", "Bearer "+c.token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			}()
		}
		wg.Wait()
		h.graphDelay.Store(0)
		wins, conflicts := 0, 0
		for _, s := range statuses {
			switch s {
			case http.StatusOK:
				wins++
			case http.StatusConflict:
				conflicts++
			}
		}
		if wins != 1 || conflicts != 1 {
			t.Fatalf("accept statuses = %v, want one 200 and one 409", statuses)
		}
		h.flush()
		if n := graphOps(h, "request_thread_control"); n != 1 {
			t.Errorf("request_thread_control calls = %d, want 1 (%v)", n, h.calls())
		}
		if n := h.count(`SELECT count(*) FROM interventions WHERE psid = $1`, psid); n != 1 {
			t.Errorf("interventions = %d, want 1", n)
		}
	})
}

// TestOfferExpires: an offer nobody accepts within handover.offer_timeout
// expires: the bot gets handover.expired, the conversation goes back to
// pending, and an accept after that is a 409. A new offer replaces an open
// one, and a decline tells the bot too.
func TestOfferExpires(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		rec := h.withBotHook(t)
		const psid = "8103"
		h.customerSays(psid, "hello?")
		if st, _ := h.conversationOffer(psid); st != "pending" {
			t.Fatalf("conversation before the offer = %s, want pending", st)
		}
		_, first, _ := h.handoff(map[string]any{"identity_foreign_id": psid, "to": "agent", "mode": "offer", "reason": "bot_failed"})
		status, off, body := h.handoff(map[string]any{"identity_foreign_id": psid, "to": "agent", "mode": "offer", "reason": "bot_failed"})
		if status != http.StatusCreated || off.ID == first.ID {
			t.Fatalf("second offer = %d %s", status, body)
		}
		var old handover.HandoffView
		if st := h.agentJSON(http.MethodGet, fmt.Sprintf("/1.0/handovers/%d", first.ID), nil, &old); st != 200 || old.Status != handover.HandoffReplaced {
			t.Errorf("first offer = %d %+v, want replaced", st, old)
		}
		if st, offer := h.conversationOffer(psid); st != "open" || offer != float64(off.ID) {
			t.Errorf("conversation while offered = %s, %v", st, offer)
		}

		h.clock.Advance(10*time.Minute + time.Second)
		waitFor(t, "the offer to expire", func() bool {
			var v handover.HandoffView
			h.agentJSON(http.MethodGet, fmt.Sprintf("/1.0/handovers/%d", off.ID), nil, &v)
			return v.Status == handover.HandoffExpired
		})
		waitFor(t, "handover.expired", func() bool { return len(rec.types()) == 3 })
		if diff := cmp.Diff([]string{handover.EventOffered, handover.EventOffered, handover.EventExpired}, rec.types()); diff != "" {
			t.Errorf("bot events (-want +got):\n%s", diff)
		}
		if ev := rec.last(); ev.Reason != handover.ReasonOfferExpired || ev.Handover.ID != off.ID {
			t.Errorf("expired event = %+v", ev)
		}
		if st, offer := h.conversationOffer(psid); st != "pending" || offer != nil {
			t.Errorf("conversation after expiry = %s, offer_id %v; want pending, null", st, offer)
		}
		if st, b := h.do(http.MethodPost, fmt.Sprintf("/1.0/handovers/%d/accept", off.ID), agentToken, nil); st != http.StatusConflict {
			t.Errorf("accept after expiry = %d %s, want 409", st, b)
		}
		if v, _ := h.thread(psid); v.Owner != handover.OwnerBot {
			t.Errorf("owner = %s, want bot", v.Owner)
		}

		// Offered again, and declined.
		_, again, _ := h.handoff(map[string]any{"identity_foreign_id": psid, "to": "agent", "mode": "offer"})
		var dec handover.HandoffView
		if st := h.agentJSON(http.MethodPost, fmt.Sprintf("/1.0/handovers/%d/decline", again.ID), nil, &dec); st != 200 || dec.Status != handover.HandoffDeclined {
			t.Errorf("decline = %d %+v", st, dec)
		}
		waitFor(t, "handover.declined", func() bool { return len(rec.types()) == 5 })
		if got := rec.types()[4]; got != handover.EventDeclined {
			t.Errorf("last event = %s, want handover.declined", got)
		}
		if st, _ := h.conversationOffer(psid); st != "pending" {
			t.Errorf("conversation after decline = %s, want pending", st)
		}

		// Offered once more, and an agent takes it over without accepting:
		// the offer is hers, and the queue no longer shows it offered.
		_, third, _ := h.handoff(map[string]any{"identity_foreign_id": psid, "to": "agent", "mode": "offer"})
		if st := h.agentJSON(http.MethodPost, "/1.0/interventions", map[string]string{"identity_foreign_id": psid}, nil); st != http.StatusCreated {
			t.Fatalf("take over = %d", st)
		}
		var took handover.HandoffView
		h.agentJSON(http.MethodGet, fmt.Sprintf("/1.0/handovers/%d", third.ID), nil, &took)
		if took.Status != handover.HandoffAccepted || took.DecidedBy != "alice" || took.InterventionID == 0 {
			t.Errorf("offer after a take-over = %+v, want accepted by alice", took)
		}
		if _, offer := h.conversationOffer(psid); offer != nil {
			t.Errorf("offer_id after a take-over = %v, want null", offer)
		}
		waitFor(t, "handover.accepted", func() bool { return len(rec.types()) == 7 })
		if got := rec.types()[5:]; !cmp.Equal(got, []string{handover.EventOffered, handover.EventAccepted}) {
			t.Errorf("last events = %v", got)
		}
	})
}

// TestHandoverPassRefused: a bot's pass (POST /1.0/handovers mode pass)
// that Graph refuses answers 502 with Graph's code and tells the bot
// handover.failed with the code, as does a request the bot never grants
// within handover.control_timeout; the Engage API's offer mode answers in
// Engage's shape; bad input is a 400 naming the field and changes nothing.
func TestHandoverPassRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		rec := h.withBotHook(t)
		const psid = "8104"
		h.customerSays(psid, "agent please")
		h.sim.InjectFault(simulator.Fault{Op: "request_thread_control", AppID: ourApp, Times: 1, HTTPStatus: 400, Code: 10,
			Subcode: 2018300, Message: "(#10) This message is sent outside of allowed window."})
		status, _, body := h.handoff(map[string]any{"identity_foreign_id": psid, "to": "agent", "reason": "customer_asked"})
		if status != http.StatusBadGateway || !bytes.Contains(body, []byte("code 10")) {
			t.Fatalf("refused pass = %d %s, want 502 with Graph's code", status, body)
		}
		waitFor(t, "handover.failed", func() bool { return len(rec.types()) == 1 })
		ev := rec.last()
		if ev.Type != handover.EventFailed || ev.Data["graph_code"] != float64(10) || ev.Handover.Status != handover.HandoffFailed ||
			ev.Reason != handover.ReasonCustomerAsked {
			t.Errorf("failed event = %+v", ev)
		}

		// A pass Graph accepts but the bot never grants: past
		// handover.control_timeout the bot hears handover.failed.
		const silent = "8105"
		h.customerSays(silent, "agent please")
		h.botPasses.Store(false)
		status, pending, body := h.handoff(map[string]any{"identity_foreign_id": silent, "to": "agent"})
		if status != http.StatusCreated || pending.Status != handover.HandoffPending || !pending.ControlPending {
			t.Fatalf("pass = %d %s, want 201 pending", status, body)
		}
		h.clock.Advance(2*time.Minute + time.Second)
		waitFor(t, "handover.failed after the control timeout", func() bool { return len(rec.types()) == 2 })
		if ev := rec.last(); ev.Type != handover.EventFailed || ev.Handover.ID != pending.ID || ev.Data["graph_code"] != float64(0) ||
			ev.Data["error"] != "thread control did not come within 2m0s" {
			t.Errorf("timed-out event = %+v", ev)
		}
		h.botPasses.Store(true)

		// Bad input: 400 naming the field, nothing stored.
		before := h.count(`SELECT count(*) FROM handovers`)
		for _, c := range []struct {
			in    map[string]any
			field string
		}{
			{map[string]any{"identity_foreign_id": psid, "to": "agent", "mode": "maybe"}, "mode"},
			{map[string]any{"identity_foreign_id": psid, "to": "bot"}, "to"},
			{map[string]any{"identity_foreign_id": psid, "to": "agent", "reason": "because"}, "reason"},
			{map[string]any{"identity_foreign_id": psid, "to": "agent", "metadata": map[string]any{"nested": map[string]any{"a": 1}}}, "metadata"},
			{map[string]any{"identity_foreign_id": psid, "to": "agent", "metadata": map[string]any{"big": string(bytes.Repeat([]byte("x"), 5000))}}, "metadata"},
			{map[string]any{"to": "agent"}, "identity_foreign_id"},
		} {
			st, _, body := h.handoff(c.in)
			var e struct {
				Error struct{ Field string } `json:"error"`
			}
			_ = json.Unmarshal(body, &e)
			if st != http.StatusBadRequest || e.Error.Field != c.field {
				t.Errorf("%v = %d %s, want 400 naming %s", c.in, st, body, c.field)
			}
		}
		if n := h.count(`SELECT count(*) FROM handovers`); n != before {
			t.Errorf("bad input stored handovers: %d → %d", before, n)
		}

		// The Engage API offers too, in Engage's answer shape.
		if st, body := h.engage(botAPIKey, psid, "bot", "agent", "&mode=offer&reason=customer_asked"); st != 200 || body != success {
			t.Errorf("engage offer = %d %s", st, body)
		}
		if st, body := h.engage(botAPIKey, psid, "bot", "agent", "&mode=sometimes"); st != 400 || !bytes.Contains([]byte(body), []byte("mode")) {
			t.Errorf("engage bad mode = %d %s", st, body)
		}
		if st, offer := h.conversationOffer(psid); st != "open" || offer == nil {
			t.Errorf("conversation after the Engage offer = %s, %v", st, offer)
		}
	})
}

// checkHandoversAPI drives the handover resource API for
// TestOpenAPIResponsesMatchDocument: offers, passes, accepts, declines and
// their errors, each checked against openapi.yaml.
func checkHandoversAPI(t *testing.T, h *harness, o *openapiChecker) {
	t.Helper()
	const offered, passed = "7150", "7151"
	h.customerSays(offered, "a human, please")
	h.customerSays(passed, "a human, please")
	post := func(path, bearer string, body any, status int, invalid bool) []byte {
		t.Helper()
		var raw []byte
		if body != nil {
			raw, _ = json.Marshal(body)
		}
		return o.call(openapiCall{method: http.MethodPost, path: path, bearer: bearer, body: raw, status: status, invalid: invalid})
	}
	var off handover.HandoffView
	if err := json.Unmarshal(post("/1.0/handovers", botAPIKey, map[string]any{"page_id": pageID, "identity_foreign_id": offered, "to": "agent",
		"mode": "offer", "reason": "customer_asked", "metadata": map[string]any{"topic": "billing", "score": 0.4}}, 201, false), &off); err != nil || off.ID == 0 {
		t.Fatalf("offer: %v %+v", err, off)
	}
	post("/1.0/handovers", botAPIKey, map[string]any{"identity_foreign_id": passed, "to": "agent", "reason": "bot_failed"}, 201, false)
	h.flush()
	post("/1.0/handovers", botAPIKey, map[string]any{"identity_foreign_id": passed, "to": "agent", "mode": "offer"}, 409, false)
	post("/1.0/handovers", botAPIKey, map[string]any{"identity_foreign_id": "404", "to": "agent", "mode": "offer"}, 404, false)
	post("/1.0/handovers", botAPIKey, map[string]any{"identity_foreign_id": offered, "to": "agent", "mode": "maybe"}, 400, true)
	post("/1.0/handovers", botAPIKey, map[string]any{"identity_foreign_id": offered, "to": "agent", "metadata": map[string]any{"nested": map[string]any{"a": 1}}}, 400, true)
	post("/1.0/handovers", "", map[string]any{"identity_foreign_id": offered, "to": "agent"}, 401, true)
	post("/1.0/handovers", "other-client-token-0123", map[string]any{"page_id": pageID, "identity_foreign_id": offered, "to": "agent"}, 403, false)

	path := fmt.Sprintf("/1.0/handovers/%d", off.ID)
	o.call(openapiCall{method: http.MethodGet, path: path, bearer: botAPIKey, status: 200})
	o.call(openapiCall{method: http.MethodGet, path: "/1.0/handovers/999999", bearer: agentToken, status: 404})
	post(path+"/accept", botAPIKey, nil, 403, false)
	post(path+"/accept", agentToken, nil, 200, false)
	post(path+"/accept", agentToken, nil, 409, false)
	post(path+"/decline", agentToken, nil, 409, false)
	post("/1.0/handovers/999999/decline", agentToken, nil, 404, false)
	h.flush()

	// An offer declined (on a thread back with the bot).
	const declined = "7152"
	h.customerSays(declined, "hm")
	var again handover.HandoffView
	_ = json.Unmarshal(post("/1.0/handovers", botAPIKey, map[string]any{"identity_foreign_id": declined, "to": "agent", "mode": "offer"}, 201, false), &again)
	post(fmt.Sprintf("/1.0/handovers/%d/decline", again.ID), agentToken, nil, 200, false)
	post(fmt.Sprintf("/1.0/handovers/%d/accept", again.ID), agentToken, nil, 409, false)

	// The Engage API's offer mode and its reason and metadata parameters.
	o.call(openapiCall{method: http.MethodPost, status: 200,
		path: "/1.0/bots/handover?access_token=" + botAPIKey + "&identity_foreign_id=" + declined + "&from=bot&to=agent&mode=offer&reason=customer_asked&metadata=%7B%22topic%22%3A%22billing%22%7D"})
}

// TestOfferAcceptRefused: an accepted offer whose request for control
// Graph refuses answers 502, fails the handover with Graph's code, sends the
// conversation back to pending, and tells the bot (accepted, then failed).
func TestOfferAcceptRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		rec := h.withBotHook(t)
		const psid = "8106"
		h.customerSays(psid, "someone?")
		_, off, _ := h.handoff(map[string]any{"identity_foreign_id": psid, "to": "agent", "mode": "offer"})
		h.sim.InjectFault(simulator.Fault{Op: "request_thread_control", AppID: ourApp, Times: 1, HTTPStatus: 403, Code: 200,
			Message: "(#200) Requires pages_messaging permission"})
		st, body := h.do(http.MethodPost, fmt.Sprintf("/1.0/handovers/%d/accept", off.ID), agentToken, nil)
		if st != http.StatusBadGateway || !bytes.Contains(body, []byte("code 200")) {
			t.Fatalf("refused accept = %d %s, want 502 with Graph's code", st, body)
		}
		var v handover.HandoffView
		h.agentJSON(http.MethodGet, fmt.Sprintf("/1.0/handovers/%d", off.ID), nil, &v)
		if v.Status != handover.HandoffFailed || v.GraphCode != 200 || v.DecidedBy != "alice" {
			t.Errorf("handover = %+v, want failed with code 200", v)
		}
		if st, offer := h.conversationOffer(psid); st != "pending" || offer != nil {
			t.Errorf("conversation = %s, offer_id %v; want pending, null", st, offer)
		}
		waitFor(t, "handover.failed", func() bool { return len(rec.types()) == 3 })
		if diff := cmp.Diff([]string{handover.EventOffered, handover.EventAccepted, handover.EventFailed}, rec.types()); diff != "" {
			t.Errorf("bot events (-want +got):\n%s", diff)
		}
		if ev := rec.last(); ev.Data["graph_code"] != float64(200) {
			t.Errorf("failed event = %+v", ev)
		}
	})
}
