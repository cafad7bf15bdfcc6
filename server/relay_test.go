package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/messenger/simulator"
	"github.com/handoverd/handoverd/store/storetest"
	"github.com/handoverd/handoverd/userlike"
)

const sampleBotToken = "d8facdb0-7510-495c-9d6e-8c22b9260e7a" // the seed's OUTBOUND_AUTH_TOKEN

// sampleBot is the seed's Python sample bot, ported line for line: it asks
// for the contact's name, then the email, updates the contact, and forwards
// to a human. down makes it answer 503.
type sampleBot struct {
	down  atomic.Bool
	calls atomic.Int32
}

func event(cid string, context any, name string, payload any) map[string]any {
	return map[string]any{"info": map[string]any{"cid": cid, "context": context}, "packet": map[string]any{"name": name, "payload": payload}}
}

func (b *sampleBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.calls.Add(1)
	if b.down.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if r.Header.Get("API-SECURITY-TOKEN") != sampleBotToken {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var msg struct {
		Info struct {
			CID     string         `json:"cid"`
			Context map[string]any `json:"context"`
			Contact struct {
				Name  *string `json:"name"`
				Email *string `json:"email"`
			} `json:"contact"`
		} `json:"info"`
		Packet struct {
			Name    string `json:"name"`
			Payload struct {
				Body string `json:"body"`
			} `json:"payload"`
		} `json:"packet"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	cid, state := msg.Info.CID, msg.Info.Context["state"]
	var out any
	switch {
	case msg.Packet.Name == "start" && (msg.Info.Contact.Name != nil || msg.Info.Contact.Email != nil):
		out = event(cid, map[string]any{}, "forward_any", map[string]any{})
	case msg.Packet.Name == "start":
		out = event(cid, map[string]any{"state": "name"}, "message", map[string]any{"body": "Welcome! I am a Bot. What is your name?"})
	case msg.Packet.Name == "message" && state == "name":
		name := msg.Packet.Payload.Body
		out = []any{
			event(cid, map[string]any{}, "contact_update", map[string]any{"name": name}),
			event(cid, map[string]any{"state": "email"}, "message", map[string]any{"body": fmt.Sprintf("Hello %s! Could you tell me your email as well?", name)}),
		}
	case msg.Packet.Name == "message" && state == "email":
		out = []any{
			event(cid, map[string]any{}, "contact_update", map[string]any{"email": msg.Packet.Payload.Body}),
			event(cid, map[string]any{}, "message", map[string]any{"body": "Thanks! I'll forward you to a human now..."}),
			event(cid, map[string]any{}, "forward_any", map[string]any{}),
		}
	}
	_ = json.NewEncoder(w).Encode(out)
}

func relayHarness(t *testing.T, b storetest.Backend) (*harness, *sampleBot) {
	h := newHarness(t, b, "agent")
	bot := &sampleBot{}
	srv := httptest.NewServer(bot)
	t.Cleanup(srv.Close)
	h.cfg.RelayBots = []userlike.Bot{{
		Name: "sample", Pages: []string{pageID}, WebhookURL: srv.URL,
		WebhookHeaders: map[string]userlike.Secret{"API-SECURITY-TOKEN": sampleBotToken},
		APIToken:       "relay-bot-api-token-0123456789", Mode: userlike.ModeFirewall,
	}}
	if err := h.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h.restart()
	return h, bot
}

func (h *harness) customerInbox(psid string) []string {
	var out []string
	for _, m := range h.sim.Inbox(pageID, psid) {
		out = append(out, m.Text)
	}
	return out
}

// TestSeedSampleBotFlow runs the seed's Python sample bot flow end to end:
// a real HTTP bot, the simulator as Messenger, and the inbox receiving the
// forwarded conversation with the contact's name and email.
func TestSeedSampleBotFlow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h, _ := relayHarness(t, b)
		const psid = "4401"
		say := func(text string, wantReplies int) {
			t.Helper()
			h.clock.Advance(time.Second)
			h.customerSays(psid, text)
			waitFor(t, fmt.Sprintf("%d bot replies", wantReplies), func() bool { return len(h.customerInbox(psid)) >= wantReplies })
		}
		say("hi", 1)
		if st := h.conversationStatus(psid); st != "pending" {
			t.Errorf("while the bot handles it the conversation is %q, want pending", st)
		}
		say("Ada Lovelace", 2)
		say("ada@example.com", 3)
		want := []string{"Welcome! I am a Bot. What is your name?", "Hello Ada Lovelace! Could you tell me your email as well?",
			"Thanks! I'll forward you to a human now..."}
		if diff := cmp.Diff(want, h.customerInbox(psid)); diff != "" {
			t.Errorf("customer received (-want +got):\n%s", diff)
		}
		waitFor(t, "the forward", func() bool { return h.conversationStatus(psid) == "open" })
		_, list := h.api(http.MethodGet, "/conversations?status=open", nil)
		conv := list["data"].(map[string]any)["payload"].([]any)[0].(map[string]any)
		sender := conv["meta"].(map[string]any)["sender"].(map[string]any)
		if sender["name"] != "Ada Lovelace" || sender["email"] != "ada@example.com" {
			t.Errorf("contact = %v, want the name and email the bot collected", sender)
		}
		bots := func() int {
			_, msgs := h.api(http.MethodGet, fmt.Sprintf("/conversations/%d/messages", int(conv["id"].(float64))), nil)
			n := 0
			for _, m := range msgs["payload"].([]any) {
				if s, ok := m.(map[string]any)["sender"].(map[string]any); ok && s["type"] == "bot" && s["name"] == "sample" {
					n++
				}
			}
			return n
		}
		waitFor(t, "the bot's three messages in the conversation (their echoes)", func() bool { return bots() == 3 })
		// A returning contact (name known) is forwarded at once by the sample bot.
		h.api(http.MethodPost, fmt.Sprintf("/conversations/%d/toggle_status", int(conv["id"].(float64))), map[string]string{"status": "resolved"})
		h.clock.Advance(time.Minute)
		h.customerSays(psid, "back again")
		waitFor(t, "the returning contact's forward", func() bool { return h.conversationStatus(psid) == "open" })
		if n := len(h.customerInbox(psid)); n != 3 {
			t.Errorf("the returning contact got %d bot messages, want none more", n-3)
		}
	})
}

// TestRelayBotDownFallsBack: the bot stops answering mid-conversation; the
// configured fallback forwards to the agents, says so, and loses no message.
func TestRelayBotDownFallsBack(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h, bot := relayHarness(t, b)
		const psid = "4402"
		h.customerSays(psid, "hi")
		waitFor(t, "the welcome", func() bool { return len(h.customerInbox(psid)) == 1 })
		bot.down.Store(true)
		h.customerSays(psid, "Grace")
		// Retries back off (1 s, 2 s, 4 s, 8 s): move the clock past each and
		// attempt what is due, until the bot counts as down. The background
		// worker may hold an attempt's lease at any moment, so keep going
		// rather than count attempts.
		waitFor(t, "the fallback", func() bool {
			h.clock.Advance(20 * time.Second)
			if _, err := h.srv.Relay().DeliverDue(t.Context()); err != nil {
				t.Fatal(err)
			}
			return h.conversationStatus(psid) == "open"
		})
		_, list := h.api(http.MethodGet, "/conversations?status=open", nil)
		conv := list["data"].(map[string]any)["payload"].([]any)[0].(map[string]any)
		_, msgs := h.api(http.MethodGet, fmt.Sprintf("/conversations/%d/messages", int(conv["id"].(float64))), nil)
		var saw []string
		for _, m := range msgs["payload"].([]any) {
			saw = append(saw, m.(map[string]any)["content"].(string))
		}
		joined := strings.Join(saw, "|")
		if !strings.Contains(joined, "Grace") || !strings.Contains(joined, "did not answer") {
			t.Errorf("conversation = %v, want the customer's message and the fallback note", saw)
		}
	})
}

func TestRelayEventsAPI(t *testing.T) {
	h, _ := relayHarness(t, storetest.SQLite(t))
	h.customerSays("4403", "hi")
	waitFor(t, "the welcome", func() bool { return len(h.customerInbox("4403")) == 1 })
	var cid string
	_ = h.srv.DB().Reader().QueryRow(`SELECT cid FROM relay_sessions WHERE psid = '4403'`).Scan(&cid)
	post := func(token, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, h.url+"/api/chatbot/v1/events", strings.NewReader(body))
		req.Header.Set("SECURITY-TOKEN", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	good := "relay-bot-api-token-0123456789"
	tests := []struct {
		name, token, body string
		status            int
		want              string
	}{
		{"message", good, fmt.Sprintf(`{"info":{"cid":%q},"packet":{"name":"message","payload":{"body":"pushed"}}}`, cid), 200, "ok"},
		{"bad token", "nope", `{}`, 401, "SECURITY-TOKEN"},
		{"unknown event", good, fmt.Sprintf(`{"info":{"cid":%q},"packet":{"name":"teleport","payload":{}}}`, cid), 400, "teleport"},
		{"too long", good, fmt.Sprintf(`{"info":{"cid":%q},"packet":{"name":"message","payload":{"body":%q}}}`, cid, strings.Repeat("x", 5001)), 400, "5000"},
		{"unknown cid", good, `{"info":{"cid":"chatbot::nope"},"packet":{"name":"message","payload":{"body":"x"}}}`, 400, "cid"},
		{"context too big", good, fmt.Sprintf(`{"info":{"cid":%q,"context":{"k":%q}},"packet":{"name":"message","payload":{"body":"x"}}}`, cid, strings.Repeat("y", 11000)), 400, "10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body := post(tt.token, tt.body)
			if st != tt.status || !strings.Contains(body, tt.want) {
				t.Errorf("= %d %s, want %d containing %q", st, body, tt.status, tt.want)
			}
		})
	}
	waitFor(t, "the pushed message", func() bool { return len(h.customerInbox("4403")) == 2 })
	// 20 requests a minute per cid.
	var last int
	for i := 0; i < 21; i++ {
		last, _ = post(good, fmt.Sprintf(`{"info":{"cid":%q},"packet":{"name":"conversation_update","payload":{"subject":"billing"}}}`, cid))
	}
	if last != 429 {
		t.Errorf("21st request in a minute = %d, want 429", last)
	}
}

func TestRelayConversationTimeout(t *testing.T) {
	h, _ := relayHarness(t, storetest.SQLite(t))
	h.cfg.RelayBots[0].ConversationTimeout, h.cfg.RelayBots[0].TimeoutAction = 10*time.Minute, userlike.TimeoutForward
	h.restart()
	h.customerSays("4404", "hi")
	waitFor(t, "the welcome", func() bool { return len(h.customerInbox("4404")) == 1 })
	h.clock.Advance(5 * time.Minute)
	if n, _ := h.srv.Relay().TimeOutIdle(t.Context()); n != 0 {
		t.Fatalf("timed out %d sessions after 5 minutes", n)
	}
	h.clock.Advance(6 * time.Minute)
	// The test's call and the background worker race; either closes it once.
	if _, err := h.srv.Relay().TimeOutIdle(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the timeout's forward", func() bool { return h.conversationStatus("4404") == "open" })
	var reason string
	_ = h.srv.DB().Reader().QueryRow(`SELECT end_reason FROM relay_sessions WHERE psid = '4404'`).Scan(&reason)
	if reason != "timeout" {
		t.Errorf("end reason = %q, want timeout", reason)
	}
}

// scriptedBot answers each call with the next scripted body and records
// the packets it received.
type scriptedBot struct {
	mu      sync.Mutex
	script  []string
	packets []string
}

func (b *scriptedBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var call struct {
		Info   struct{ CID string } `json:"info"`
		Packet struct {
			Name    string          `json:"name"`
			Payload json.RawMessage `json:"payload"`
		} `json:"packet"`
	}
	_ = json.NewDecoder(r.Body).Decode(&call)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.packets = append(b.packets, call.Packet.Name+" "+string(call.Packet.Payload))
	if len(b.script) == 0 {
		w.WriteHeader(http.StatusOK)
		return
	}
	body := strings.ReplaceAll(b.script[0], "CID", call.Info.CID)
	b.script = b.script[1:]
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, body)
}

func (b *scriptedBot) received() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.packets...)
}

// TestRelayChoicesOnMessenger: a choice of ≤ 3 options becomes a button
// template, ≤ 13 short options quick replies, more the numbered fallback; a
// tap, or an immediate valid number, comes back to the bot as a click, and
// anything else as a message.
func TestRelayChoicesOnMessenger(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t), "agent")
	bubbles := func(text, opts string) string {
		return `{"info":{"cid":"CID"},"packet":{"name":"bubbles","payload":{"body":"` + text + `","fallback":"` + text + `","options":[` + opts + `]}}}`
	}
	bot := &scriptedBot{script: []string{
		bubbles("Pick a size", `{"label":"Small","value":"s"},{"label":"Large","value":"l"}`),
		bubbles("Pick a colour", options(5, "Colour")),
		bubbles("Pick a city", options(15, "City")),
	}}
	srv := httptest.NewServer(bot)
	defer srv.Close()
	h.cfg.RelayBots = []userlike.Bot{{Name: "chooser", Pages: []string{pageID}, WebhookURL: srv.URL, Mode: userlike.ModeFirewall}}
	h.restart()
	const psid = "4501"
	lastSent := func() map[string]any {
		var m map[string]any
		for _, c := range h.sim.Calls() {
			if c.Op == "send" && c.AppID == ourApp {
				m = nil
				_ = json.Unmarshal([]byte(c.Params["message"]), &m)
			}
		}
		return m
	}
	h.customerSays(psid, "hello")
	waitFor(t, "the button template", func() bool { return len(h.sim.Inbox(pageID, psid)) == 1 })
	tpl := lastSent()["attachment"].(map[string]any)["payload"].(map[string]any)
	buttons := tpl["buttons"].([]any)
	if tpl["template_type"] != "button" || len(buttons) != 2 {
		t.Fatalf("2 options = %v, want a button template", tpl)
	}
	large := buttons[1].(map[string]any)
	h.clock.Advance(time.Second)
	if _, err := h.sim.CustomerPostback(pageID, psid, large["title"].(string), large["payload"].(string)); err != nil {
		t.Fatal(err)
	}
	h.flush()
	waitFor(t, "the quick replies", func() bool { return len(h.sim.Inbox(pageID, psid)) == 2 })
	qrs := lastSent()["quick_replies"].([]any)
	if len(qrs) != 5 {
		t.Fatalf("5 options = %v, want 5 quick replies", lastSent())
	}
	third := qrs[2].(map[string]any)
	h.clock.Advance(time.Second)
	if _, err := h.sim.CustomerSends(pageID, psid, simulatorReply(third["title"].(string), third["payload"].(string))); err != nil {
		t.Fatal(err)
	}
	h.flush()
	waitFor(t, "the numbered choice", func() bool { return len(h.sim.Inbox(pageID, psid)) == 3 })
	if txt := h.sim.Inbox(pageID, psid)[2].Text; !strings.Contains(txt, "1. City 1") || !strings.Contains(txt, "15. City 15") {
		t.Errorf("fallback text = %q", txt)
	}
	h.clock.Advance(time.Second)
	h.customerSays(psid, "3")
	h.clock.Advance(time.Second)
	h.customerSays(psid, "3")
	waitFor(t, "five calls", func() bool { return len(bot.received()) == 5 })
	got := bot.received()
	want := []struct{ prefix, has string }{{"start ", "hello"}, {"click ", `"l"`}, {"click ", `"c3"`}, {"click ", `"c3"`}, {"message ", `"3"`}}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w.prefix) || !strings.Contains(got[i], w.has) {
			t.Errorf("call %d = %q, want %s… with %s", i, got[i], w.prefix, w.has)
		}
	}
}

func options(n int, label string) string {
	var parts []string
	for i := 1; i <= n; i++ {
		parts = append(parts, fmt.Sprintf(`{"label":"%s %d","value":"%c%d"}`, label, i, label[0]+'a'-'A', i))
	}
	return strings.Join(parts, ",")
}

func simulatorReply(text, payload string) simulator.CustomerMessage {
	return simulator.CustomerMessage{Text: text, QuickReplyPayload: payload}
}

// TestRelayBotStopsWhenAnAgentTakesOver: once an agent replies, the relay
// bot's session ends and the customer's next message no longer reaches it.
func TestRelayBotStopsWhenAnAgentTakesOver(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h, _ := relayHarness(t, b)
		const psid = "4405"
		h.customerSays(psid, "hi")
		waitFor(t, "the welcome", func() bool { return len(h.customerInbox(psid)) == 1 })
		_, list := h.api(http.MethodGet, "/conversations?status=pending", nil)
		convID := int(list["data"].(map[string]any)["payload"].([]any)[0].(map[string]any)["id"].(float64))
		if st, body := h.api(http.MethodPost, fmt.Sprintf("/conversations/%d/messages", convID), map[string]any{"content": "Alice here", "message_type": "outgoing"}); st != 200 {
			t.Fatalf("agent reply = %d %v", st, body)
		}
		waitFor(t, "the agent's reply", func() bool { return len(h.customerInbox(psid)) == 2 })
		var status, reason string
		waitFor(t, "the session to end", func() bool {
			_ = h.srv.DB().Reader().QueryRow(`SELECT status, end_reason FROM relay_sessions WHERE psid = $1`, psid).Scan(&status, &reason)
			return status == "forwarded"
		})
		if reason != "agent" {
			t.Errorf("end reason = %q, want agent", reason)
		}
		var before, after int
		_ = h.srv.DB().Reader().QueryRow(`SELECT count(*) FROM relay_calls`).Scan(&before)
		h.clock.Advance(time.Second)
		h.customerSays(psid, "Ada") // committed once customerSays returns
		_ = h.srv.DB().Reader().QueryRow(`SELECT count(*) FROM relay_calls`).Scan(&after)
		if after != before {
			t.Errorf("%d calls to the bot queued after the agent took over", after-before)
		}
		if n := len(h.customerInbox(psid)); n != 2 {
			t.Errorf("the customer got %d messages, want 2 (no bot answer)", n)
		}
	})
}

// TestRelayAgentsClaimAndLetGo: an agent opening a conversation the bot
// has — on another handoverd process — stops the bot there and then (the
// inbox tells thread control, which tells the bots; nobody asks the
// inbox); while the agents hold it the customer's messages are theirs;
// once they resolve it the bot takes the customer's next message.
func TestRelayAgentsClaimAndLetGo(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h, bot := relayHarness(t, b)
		const psid = "4406"
		h.customerSays(psid, "hi")
		waitFor(t, "the welcome", func() bool { return len(h.customerInbox(psid)) == 1 })
		convID := h.onlyConversation("pending")
		// The agent works on a second process sharing the database; the
		// customer's messages keep reaching the first.
		primary := h.url
		h.url = h.replica()
		if st, res := h.api(http.MethodPost, fmt.Sprintf("/conversations/%d/toggle_status", convID), map[string]string{"status": "open"}); st != 200 {
			t.Fatalf("open = %d %v", st, res)
		}
		h.url = primary
		// Synchronous: the session ended in the toggle's own transaction.
		sessions := func() []string {
			rows, err := h.srv.DB().Reader().Query(`SELECT status, end_reason FROM relay_sessions WHERE psid = $1 ORDER BY id`, psid)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			out := []string{}
			for rows.Next() {
				var st, reason string
				_ = rows.Scan(&st, &reason)
				out = append(out, st+":"+reason)
			}
			return out
		}
		if diff := cmp.Diff([]string{"forwarded:agent"}, sessions()); diff != "" {
			t.Errorf("sessions after the agent opened the conversation (-want +got):\n%s", diff)
		}
		_, msgs := h.api(http.MethodGet, fmt.Sprintf("/conversations/%d/messages", convID), nil)
		said := false
		for _, m := range msgs["payload"].([]any) {
			if m.(map[string]any)["content"] == "The agents took over from the bot sample" {
				said = true
			}
		}
		if !said {
			t.Errorf("the conversation does not say the agents took over: %v", msgs["payload"])
		}
		calls := bot.calls.Load()
		h.clock.Advance(time.Second)
		h.customerSays(psid, "Ada") // committed once customerSays returns
		if n := h.count(`SELECT count(*) FROM relay_calls c JOIN relay_sessions s ON s.id = c.session_id WHERE s.psid = $1 AND c.status = 'pending'`, psid); n != 0 {
			t.Errorf("%d calls to the bot queued while the agents hold the conversation", n)
		}
		if st := h.conversationStatus(psid); st != "open" {
			t.Errorf("while the agents hold it the conversation is %q, want open", st)
		}
		if st, res := h.api(http.MethodPost, fmt.Sprintf("/conversations/%d/toggle_status", convID), map[string]string{"status": "resolved"}); st != 200 {
			t.Fatalf("resolve = %d %v", st, res)
		}
		h.clock.Advance(time.Minute)
		h.customerSays(psid, "back again")
		waitFor(t, "the bot's welcome to the returning customer", func() bool { return len(h.customerInbox(psid)) == 2 })
		if diff := cmp.Diff([]string{"forwarded:agent", "active:"}, sessions()); diff != "" {
			t.Errorf("sessions after the agents let go (-want +got):\n%s", diff)
		}
		if bot.calls.Load() <= calls {
			t.Error("the bot was not called for the returning customer")
		}
		if st := h.conversationStatus(psid); st != "pending" {
			t.Errorf("with the bot again the conversation is %q, want pending", st)
		}
	})
}

// TestRelayEventsAtWork runs the events that change more than the chat —
// a note for the agents, a delay that holds back what follows, a
// conversation update, the end of the conversation — and the chat-slot
// limit that sends the next customer to the agents.
func TestRelayEventsAtWork(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t), "agent")
	bot := &scriptedBot{script: []string{`[
		{"info":{"cid":"CID"},"packet":{"name":"note_create","payload":{"body":"VIP customer"}}},
		{"info":{"cid":"CID"},"packet":{"name":"conversation_update","payload":{"subject":"billing"}}},
		{"info":{"cid":"CID"},"packet":{"name":"delay","payload":{"duration":30,"typing_indicator":true}}},
		{"info":{"cid":"CID"},"packet":{"name":"message","payload":{"body":"Thanks for waiting."}}},
		{"info":{"cid":"CID"},"packet":{"name":"end","payload":{}}}]`}}
	srv := httptest.NewServer(bot)
	defer srv.Close()
	h.cfg.RelayBots = []userlike.Bot{{Name: "busy", Pages: []string{pageID}, WebhookURL: srv.URL, Mode: userlike.ModeHuman, ChatSlots: 1}}
	h.restart()
	h.customerSays("4601", "hi")
	waitFor(t, "the note", func() bool { return h.message("VIP customer") != nil })
	if m := h.message("VIP customer"); m["private"] != true {
		t.Errorf("note = %v, want a private note", m)
	}
	// The slot is taken: the next customer goes straight to the agents.
	h.customerSays("4602", "hello?")
	if st := h.conversationStatus("4602"); st != "open" {
		t.Errorf("second customer's conversation = %q, want open (no free chat slot)", st)
	}
	// The delay holds the message back 30 s (of the fake clock).
	if n := len(h.customerInbox("4601")); n != 0 {
		t.Fatalf("the customer got %d messages before the delay ended", n)
	}
	h.clock.Advance(31 * time.Second)
	waitFor(t, "the delayed message", func() bool { return len(h.customerInbox("4601")) == 1 })
	waitFor(t, "the end", func() bool {
		_, list := h.api(http.MethodGet, "/conversations?status=resolved", nil)
		return len(list["data"].(map[string]any)["payload"].([]any)) == 1
	})
	var conv string
	_ = h.srv.DB().Reader().QueryRow(`SELECT conversation FROM relay_sessions WHERE psid = '4601'`).Scan(&conv)
	if !strings.Contains(conv, `"subject":"billing"`) {
		t.Errorf("session conversation = %s, want the subject", conv)
	}
	var typing bool
	for _, c := range h.sim.Calls() {
		typing = typing || c.Params["sender_action"] == "typing_on"
	}
	if !typing {
		t.Error("no typing indicator during the delay")
	}
}

// asyncBot is the seed's asynchronous pattern: it answers every webhook call
// with an empty 200, having first pushed its reply — and its new context —
// through POST /api/chatbot/v1/events while the call is still in flight.
type asyncBot struct {
	h        *harness
	contexts chan map[string]any // the context each call carried
}

func (b *asyncBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		Info struct {
			CID     string         `json:"cid"`
			Context map[string]any `json:"context"`
		} `json:"info"`
		Packet struct {
			Name string `json:"name"`
		} `json:"packet"`
	}
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &msg); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	b.contexts <- msg.Info.Context
	step := fmt.Sprint(len(b.contexts))
	push, _ := json.Marshal(event(msg.Info.CID, map[string]any{"state": "pushed-" + step}, "message", map[string]any{"body": "async reply " + step}))
	req, _ := http.NewRequest(http.MethodPost, b.h.url+"/api/chatbot/v1/events", strings.NewReader(string(push)))
	req.Header.Set("SECURITY-TOKEN", "relay-bot-api-token-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.h.t.Errorf("push events: %v", err)
	} else {
		if resp.StatusCode != 200 {
			b.h.t.Errorf("push events = %d", resp.StatusCode)
		}
		resp.Body.Close()
	}
	w.WriteHeader(http.StatusOK) // empty answer: everything went through the events API
}

// TestRelayContextSetDuringACallWins: a context the bot sets through the
// events API while handoverd's webhook call to it is in flight survives
// that call finishing with an empty 200 — the next call carries it.
func TestRelayContextSetDuringACallWins(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "agent")
		bot := &asyncBot{h: h, contexts: make(chan map[string]any, 10)}
		srv := httptest.NewServer(bot)
		t.Cleanup(srv.Close)
		h.cfg.RelayBots = []userlike.Bot{{
			Name: "async", Pages: []string{pageID}, WebhookURL: srv.URL,
			APIToken: "relay-bot-api-token-0123456789", Mode: userlike.ModeFirewall,
		}}
		if err := h.cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		h.restart()
		const psid = "4410"
		h.customerSays(psid, "hi")
		waitFor(t, "the first async reply", func() bool { return len(h.customerInbox(psid)) == 1 })
		waitFor(t, "the first call to finish", func() bool {
			return h.count(`SELECT count(*) FROM relay_calls WHERE status = 'delivered'`) == 1
		})
		var stored string
		if err := h.srv.DB().Reader().QueryRow(`SELECT context FROM relay_sessions WHERE psid = $1`, psid).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stored, `"pushed-1"`) {
			t.Errorf("session context after the call = %s, want the pushed state", stored)
		}
		h.customerSays(psid, "again")
		waitFor(t, "the second async reply", func() bool { return len(h.customerInbox(psid)) == 2 })
		var got []any
		for len(bot.contexts) > 0 {
			got = append(got, (<-bot.contexts)["state"])
		}
		if diff := cmp.Diff([]any{nil, "pushed-1"}, got); diff != "" {
			t.Errorf("contexts the calls carried (-want +got):\n%s", diff)
		}
	})
}
