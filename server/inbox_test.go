package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/inbox"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store/storetest"
)

// api calls the account API with the agent's api_access_token.
func (h *harness) api(method, path string, body any) (int, map[string]any) {
	h.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		raw, _ = json.Marshal(b)
	}
	req, _ := http.NewRequest(method, h.url+"/api/v1/accounts/1"+path, strings.NewReader(string(raw)))
	req.Header.Set("api_access_token", agentToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, &out); err != nil {
			h.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode, out
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func hasKeys(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("%s lacks %q (has %v)", what, k, keys(m))
		}
	}
}

// TestSeedAPIChannelFlow runs the seed's three steps with the seed's request
// bodies and checks the seed's response fields.
func TestSeedAPIChannelFlow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		st, ib := h.api(http.MethodPost, "/inboxes", map[string]any{"name": "Website", "channel": map[string]any{"type": "api", "webhook_url": ""}})
		if st != 200 {
			t.Fatalf("create inbox = %d %v", st, ib)
		}
		inboxID := int(ib["id"].(float64))

		// 1. Create a contact (the seed's body, with a real inbox id).
		st, contact := h.api(http.MethodPost, "/contacts", fmt.Sprintf(`{
"inbox_id": %d,
"name": "string",
"email": "string@example.com",
"phone_number": "string",
"avatar": null,
"avatar_url": "string",
"identifier": "string",
"custom_attributes": {}
}`, inboxID))
		if st != 200 {
			t.Fatalf("create contact = %d %v", st, contact)
		}
		hasKeys(t, "contact", contact, "email", "name", "phone_number", "thumbnail", "additional_attributes", "contact_inboxes", "id", "availability_status")
		cis := contact["contact_inboxes"].([]any)
		ci := cis[0].(map[string]any)
		hasKeys(t, "contact_inbox", ci, "source_id", "inbox")
		hasKeys(t, "contact_inbox.inbox", ci["inbox"].(map[string]any), "id", "name", "website_url", "channel_type", "avatar_url", "widget_color",
			"website_token", "enable_auto_assignment", "web_widget_script", "welcome_title", "welcome_tagline", "greeting_enabled", "greeting_message")
		source := ci["source_id"].(string)

		// 2. Create a conversation from that source_id (the seed's body).
		st, conv := h.api(http.MethodPost, "/conversations", fmt.Sprintf(`{
"source_id": %q,
"inbox_id": "%d",
"contact_id": "%d",
"additional_attributes": {},
"custom_attributes": {"attribute_key": "attribute_value", "priority_conversation_number": 3},
"status": "open",
"assignee_id": "",
"team_id": ""
}`, source, inboxID, int(contact["id"].(float64))))
		if st != 200 || conv["id"] == nil {
			t.Fatalf("create conversation = %d %v", st, conv)
		}
		convID := int(conv["id"].(float64))

		// 3. Create messages (the seed's body).
		st, msg := h.api(http.MethodPost, fmt.Sprintf("/conversations/%d/messages", convID), `{
"content": "This is a incoming message from API Channel",
"message_type": "incoming",
"private": false,
"content_type": "text",
"content_attributes": {}
}`)
		if st != 200 {
			t.Fatalf("create message = %d %v", st, msg)
		}
		hasKeys(t, "message", msg, "id", "content", "inbox_id", "conversation_id", "message_type", "content_type", "content_attributes", "created_at", "private", "sender")
		sender := msg["sender"].(map[string]any)
		if diff := cmp.Diff(map[string]any{"id": contact["id"], "name": "string", "type": "contact"}, sender); diff != "" {
			t.Errorf("sender (-want +got):\n%s", diff)
		}
		if msg["message_type"] != float64(0) || msg["content"] != "This is a incoming message from API Channel" {
			t.Errorf("message = %v", msg)
		}
		st, note := h.api(http.MethodPost, fmt.Sprintf("/conversations/%d/messages", convID), `{"content":"internal","message_type":"outgoing","private":true,"content_type":"cards","content_attributes":{}}`)
		if st != 200 || note["private"] != true || note["message_type"] != float64(1) || note["sender"].(map[string]any)["type"] != "agent" {
			t.Errorf("private note = %d %v", st, note)
		}
		st, list := h.api(http.MethodGet, fmt.Sprintf("/conversations/%d/messages", convID), nil)
		if st != 200 || len(list["payload"].([]any)) != 2 {
			t.Errorf("messages = %d %v", st, list)
		}
	})
}

func TestInboxValidation(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t), "bot")
	_, ib := h.api(http.MethodPost, "/inboxes", map[string]any{"name": "API", "channel": map[string]any{"type": "api"}})
	inboxID := ib["id"]
	tests := []struct {
		name, method, path string
		body               any
		status             int
		field              string
	}{
		{"contact without inbox", http.MethodPost, "/contacts", `{"name":"x"}`, 400, "inbox_id"},
		{"contact in unknown inbox", http.MethodPost, "/contacts", `{"inbox_id": 999}`, 400, "inbox_id"},
		{"contact bad email", http.MethodPost, "/contacts", map[string]any{"inbox_id": inboxID, "email": "nope"}, 400, "email"},
		{"contact bad attributes", http.MethodPost, "/contacts", map[string]any{"inbox_id": inboxID, "custom_attributes": []int{1}}, 400, "custom_attributes"},
		{"malformed JSON", http.MethodPost, "/contacts", `{"inbox_id":`, 400, "body"},
		{"conversation unknown source", http.MethodPost, "/conversations", `{"source_id":"nope"}`, 400, "source_id"},
		{"conversation bad status", http.MethodPost, "/conversations", `{"source_id":"x","status":"closed"}`, 400, "status"},
		{"message bad type", http.MethodPost, "/conversations/1/messages", `{"content":"x","message_type":"sideways"}`, 400, "message_type"},
		{"unknown conversation", http.MethodGet, "/conversations/4242", nil, 404, ""},
		{"list bad status", http.MethodGet, "/conversations?status=closed", nil, 400, "status"},
		{"inbox of another kind", http.MethodPost, "/inboxes", `{"name":"x","channel":{"type":"email"}}`, 400, "channel.type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body := h.api(tt.method, tt.path, tt.body)
			if st != tt.status {
				t.Fatalf("status = %d, want %d: %v", st, tt.status, body)
			}
			if tt.field != "" {
				if e, _ := body["error"].(map[string]any); e == nil || e["field"] != tt.field {
					t.Errorf("error = %v, want field %q", body, tt.field)
				}
			}
		})
	}
	// Another account's path: 403; no token: 401.
	req, _ := http.NewRequest(http.MethodGet, h.url+"/api/v1/accounts/2/conversations", nil)
	req.Header.Set("api_access_token", agentToken)
	if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != 403 {
		t.Errorf("other account = %d, want 403", resp.StatusCode)
	}
	if resp, _ := http.Get(h.url + "/api/v1/accounts/1/conversations"); resp.StatusCode != 401 {
		t.Errorf("no token = %d, want 401", resp.StatusCode)
	}
}

// TestMessengerConversationEndToEnd: customer message → the bot owns and
// answers → handover → an agent replies through the inbox API → the Send
// API call reaches the simulator only once our app holds the thread; the
// conversation shows the whole exchange with the right senders.
func TestMessengerConversationEndToEnd(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		const psid = "6001"
		h.customerSays(psid, "my order is late")
		// The bot answers (it owns the thread: default app).
		if _, err := h.bot.Send(context.Background(), h.botPage(), sendText(psid, "Let me check that for you.")); err != nil {
			t.Fatal(err)
		}
		h.flush()
		st, list := h.api(http.MethodGet, "/conversations?status=pending", nil)
		convs := list["data"].(map[string]any)["payload"].([]any)
		if st != 200 || len(convs) != 1 {
			t.Fatalf("pending conversations = %d %v", st, list)
		}
		convID := int(convs[0].(map[string]any)["id"].(float64))

		// The agent replies while the bot still owns the thread: handoverd
		// requests control, the (cooperative) bot passes, then the send goes.
		h.sim.ResetCalls()
		st, reply := h.api(http.MethodPost, fmt.Sprintf("/conversations/%d/messages", convID), map[string]any{"content": "Hi, I'm Alice from support.", "message_type": "outgoing"})
		if st != 200 {
			t.Fatalf("agent reply = %d %v", st, reply)
		}
		waitFor(t, "the reply to reach the customer", func() bool { return len(h.sim.Inbox(pageID, psid)) == 2 })
		calls := h.calls()
		if i, j := indexOf(calls, "222 pass_thread_control"), indexOf(calls, "111 send"); i < 0 || j < i {
			t.Errorf("the send did not wait for control: %v", calls)
		}
		h.customerSays(psid, "thanks!")
		h.flush()
		// The simulator acknowledges every send with a delivery receipt in
		// Meta's shape (no timestamp), so the reply ends up delivered.
		waitFor(t, "the reply's echo and status", func() bool {
			_, msgs := h.api(http.MethodGet, fmt.Sprintf("/conversations/%d/messages", convID), nil)
			for _, m := range msgs["payload"].([]any) {
				mm := m.(map[string]any)
				if mm["content"] == "Hi, I'm Alice from support." {
					return mm["status"] == "delivered" && mm["source_id"] != nil
				}
			}
			return false
		})
		_, msgs := h.api(http.MethodGet, fmt.Sprintf("/conversations/%d/messages", convID), nil)
		type line struct {
			Type   float64
			Sender string
			Text   string
		}
		var got []line
		for _, m := range msgs["payload"].([]any) {
			mm := m.(map[string]any)
			sender := ""
			if s, ok := mm["sender"].(map[string]any); ok {
				sender = s["type"].(string) + ":" + s["name"].(string)
			}
			text := mm["content"].(string)
			if mm["message_type"] == float64(2) {
				text = strings.SplitN(text, " (", 2)[0]
			}
			got = append(got, line{mm["message_type"].(float64), sender, text})
		}
		want := []line{
			{0, "contact:Messenger user 6001", "my order is late"},
			{2, "", "Thread control: idle → bot"},
			{1, "bot:bot", "Let me check that for you."},
			{1, "agent:alice", "Hi, I'm Alice from support."},
			{2, "", "Thread control: bot → agents"},
			{0, "contact:Messenger user 6001", "thanks!"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("conversation (-want +got):\n%s", diff)
		}
		_, conv := h.api(http.MethodGet, fmt.Sprintf("/conversations/%d", convID), nil)
		if conv["status"] != "open" || conv["thread_owner"] != "agent" {
			t.Errorf("conversation = %v", conv)
		}

		// Resolving closes the intervention: the thread goes back to the bot.
		st, res := h.api(http.MethodPost, fmt.Sprintf("/conversations/%d/toggle_status", convID), map[string]string{"status": "resolved"})
		if st != 200 || res["payload"].(map[string]any)["current_status"] != "resolved" {
			t.Fatalf("resolve = %d %v", st, res)
		}
		if sim := h.sim.Thread(pageID, psid).OwnerAppID; sim != botApp {
			t.Errorf("owner after resolve = %q, want the bot", sim)
		}
		// The next customer message starts a new conversation, pending with the bot.
		h.customerSays(psid, "one more thing")
		_, list = h.api(http.MethodGet, "/conversations?status=pending", nil)
		if n := len(list["data"].(map[string]any)["payload"].([]any)); n != 1 {
			t.Errorf("pending conversations after resolve = %d, want 1 (new)", n)
		}
	})
}

func sendText(psid, text string) messenger.SendRequest {
	return messenger.SendRequest{PSID: psid, Message: map[string]any{"text": text}}
}

func TestReplyOutsideWindowRefused(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t), "agent")
	h.customerSays("6002", "hello")
	_, list := h.api(http.MethodGet, "/conversations", nil)
	convID := int(list["data"].(map[string]any)["payload"].([]any)[0].(map[string]any)["id"].(float64))
	h.clock.Advance(8 * 24 * time.Hour)
	st, body := h.api(http.MethodPost, fmt.Sprintf("/conversations/%d/messages", convID), map[string]any{"content": "sorry for the wait", "message_type": "outgoing"})
	if st != 422 || !strings.Contains(fmt.Sprint(body), "7-day") {
		t.Errorf("reply after 8 days = %d %v, want 422 naming the window", st, body)
	}
	if len(h.sim.Inbox(pageID, "6002")) != 0 {
		t.Error("the reply was sent")
	}
}

// webhookReceiver records signed deliveries and fails while down is set.
type webhookReceiver struct {
	mu         sync.Mutex
	down       atomic.Bool
	deliveries map[string]int
	order      []string // conversation id + event per accepted delivery, in arrival order
	bad        int
	secret     string
}

func (wr *webhookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if wr.down.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	ts, _ := strconv.ParseInt(r.Header.Get(inbox.HeaderTimestamp), 10, 64)
	wr.mu.Lock()
	defer wr.mu.Unlock()
	if wr.secret != "" && inbox.SignWebhook(wr.secret, ts, body) != r.Header.Get(inbox.HeaderSignature) {
		wr.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id := r.Header.Get(inbox.HeaderDelivery)
	wr.deliveries[id]++
	var ev struct {
		Event          string `json:"event"`
		ID             int64  `json:"id"`
		ConversationID int64  `json:"conversation_id"`
	}
	_ = json.Unmarshal(body, &ev)
	conv := ev.ConversationID
	if strings.HasPrefix(ev.Event, "conversation") {
		conv = ev.ID
	}
	wr.order = append(wr.order, fmt.Sprintf("%d:%s:%s", conv, ev.Event, id))
	w.WriteHeader(http.StatusOK)
}

// TestOutboundWebhooksSurviveOutageAndRestart: a receiver that fails for a
// while then recovers gets every event once per delivery id, in order per
// conversation, across a handoverd restart; signatures verify.
func TestOutboundWebhooksSurviveOutageAndRestart(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		wr := &webhookReceiver{deliveries: map[string]int{}}
		recv := httptest.NewServer(wr)
		defer recv.Close()
		_, ib := h.api(http.MethodPost, "/inboxes", map[string]any{"name": "API", "channel": map[string]any{"type": "api", "webhook_url": recv.URL + "/hook"}})
		wr.secret = ib["webhook_secret"].(string)
		wr.down.Store(true)
		var convs []int
		for i := 0; i < 2; i++ {
			_, c := h.api(http.MethodPost, "/contacts", map[string]any{"inbox_id": ib["id"], "name": fmt.Sprint("c", i)})
			src := c["contact_inboxes"].([]any)[0].(map[string]any)["source_id"]
			_, conv := h.api(http.MethodPost, "/conversations", map[string]any{"source_id": src})
			convs = append(convs, int(conv["id"].(float64)))
		}
		for i := 0; i < 3; i++ {
			for _, c := range convs {
				h.api(http.MethodPost, fmt.Sprintf("/conversations/%d/messages", c), map[string]any{"content": fmt.Sprint("m", i), "message_type": "incoming"})
			}
		}
		h.api(http.MethodPost, fmt.Sprintf("/conversations/%d/toggle_status", convs[0]), map[string]string{"status": "resolved"})
		// Down for a while: attempts fail and are rescheduled.
		for i := 0; i < 3; i++ {
			h.clock.Advance(time.Minute)
			if _, err := h.srv.Inbox().DeliverDue(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		h.restart()
		wr.down.Store(false)
		deadline := time.Now().Add(10 * time.Second)
		for {
			h.clock.Advance(5 * time.Minute)
			if _, err := h.srv.Inbox().DeliverDue(context.Background()); err != nil {
				t.Fatal(err)
			}
			var pending int
			_ = h.srv.DB().Reader().QueryRow(`SELECT count(*) FROM outbox WHERE status <> 'delivered'`).Scan(&pending)
			if pending == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d deliveries still pending", pending)
			}
		}
		wr.mu.Lock()
		defer wr.mu.Unlock()
		// 2 conversation_created + 6 message_created + 1 status change.
		if len(wr.deliveries) != 9 || wr.bad != 0 {
			t.Errorf("deliveries = %d distinct (bad signatures %d), want 9", len(wr.deliveries), wr.bad)
		}
		for id, n := range wr.deliveries {
			if n != 1 {
				t.Errorf("delivery %s received %d times", id, n)
			}
		}
		// In order per conversation: the event log order restricted to each conversation.
		var want []string
		rows, err := h.srv.DB().Reader().Query(`SELECT e.conversation_id, e.event, o.delivery_id FROM outbox o JOIN inbox_events e ON e.id = o.event_id ORDER BY e.seq`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var c int64
			var ev, id string
			_ = rows.Scan(&c, &ev, &id)
			want = append(want, fmt.Sprintf("%d:%s:%s", c, ev, id))
		}
		rows.Close()
		for _, c := range convs {
			if diff := cmp.Diff(filterConv(want, c), filterConv(wr.order, c)); diff != "" {
				t.Errorf("conversation %d order (-event log +received):\n%s", c, diff)
			}
		}
	})
}

func filterConv(lines []string, conv int) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, strconv.Itoa(conv)+":") {
			out = append(out, l)
		}
	}
	return out
}

func TestWebhookNotRetriedOn4xx(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t), "bot")
	var hits atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1); w.WriteHeader(http.StatusBadRequest) }))
	defer recv.Close()
	_, ib := h.api(http.MethodPost, "/inboxes", map[string]any{"name": "API", "channel": map[string]any{"type": "api", "webhook_url": recv.URL}})
	_, c := h.api(http.MethodPost, "/contacts", map[string]any{"inbox_id": ib["id"]})
	src := c["contact_inboxes"].([]any)[0].(map[string]any)["source_id"]
	h.api(http.MethodPost, "/conversations", map[string]any{"source_id": src})
	for i := 0; i < 3; i++ {
		h.clock.Advance(10 * time.Minute)
		if _, err := h.srv.Inbox().DeliverDue(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("receiver hit %d times, want 1 (4xx is final)", n)
	}
}

// TestLiveUpdatesResume reads the SSE stream, disconnects, and resumes
// with Last-Event-ID without missing or repeating an event.
func TestLiveUpdatesResume(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t), "bot")
	read := func(lastID string, n int) []string {
		req, _ := http.NewRequest(http.MethodGet, h.url+"/api/v1/accounts/1/events", nil)
		req.Header.Set("api_access_token", agentToken)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("content type %q", ct)
		}
		var ids []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() && len(ids) < n {
			if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
				ids = append(ids, id)
			}
		}
		return ids
	}
	h.customerSays("6101", "one")
	h.customerSays("6102", "two")
	first := read("0", 4) // conversation_created + message_created, twice
	if len(first) != 4 {
		t.Fatalf("first read = %v", first)
	}
	h.customerSays("6103", "three")
	rest := read(first[1], 4)
	if diff := cmp.Diff(first[2:], rest[:2]); diff != "" {
		t.Errorf("resume (-want +got):\n%s", diff)
	}
	if len(rest) != 4 {
		t.Errorf("resumed read = %v", rest)
	}
}
