package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/inbox"

	"github.com/handoverd/handoverd/store/storetest"
)

// convID returns the id of the only conversation listed with status.
func (h *harness) onlyConversation(status string) int {
	h.t.Helper()
	st, list := h.api(http.MethodGet, "/conversations?status="+status, nil)
	convs, _ := list["data"].(map[string]any)["payload"].([]any)
	if st != 200 || len(convs) != 1 {
		h.t.Fatalf("%s conversations = %d %v, want one", status, st, list)
	}
	return int(convs[0].(map[string]any)["id"].(float64))
}

// TestResolveWithoutInterventionGivesThreadBack: the bot passes the thread
// to the agents, nobody replies, an agent resolves the conversation: the
// thread goes back (to the bot when it is the Page's default app, else it
// is released), and the customer's next message is the bot's again.
func TestResolveWithoutInterventionGivesThreadBack(t *testing.T) {
	for _, tt := range []struct {
		defaultApp, wantOwner, nextStatus string
	}{
		{"bot", botApp, "pending"},
		{"agent", "", "open"}, // the agents are the default app: released
	} {
		t.Run(tt.defaultApp, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, b storetest.Backend) {
				h := newHarness(t, b, tt.defaultApp)
				const psid = "6201"
				h.customerSays(psid, "I want a human")
				if tt.defaultApp == "bot" {
					if err := h.bot.PassThreadControl(context.Background(), h.botPage(), psid, ourApp, "to the agents"); err != nil {
						t.Fatal(err)
					}
					h.flush()
				}
				convID := h.onlyConversation("open")
				if th, _ := h.thread(psid); th.Owner != "agent" {
					t.Fatalf("owner before resolve = %q, want agent", th.Owner)
				}
				st, res := h.api(http.MethodPost, fmt.Sprintf("/conversations/%d/toggle_status", convID), map[string]string{"status": "resolved"})
				if st != 200 || res["payload"].(map[string]any)["current_status"] != "resolved" {
					t.Fatalf("resolve = %d %v", st, res)
				}
				h.flush()
				if got := h.sim.Thread(pageID, psid).OwnerAppID; got != tt.wantOwner {
					t.Errorf("Messenger owner after resolve = %q, want %q", got, tt.wantOwner)
				}
				if th, _ := h.thread(psid); th.Owner == "agent" {
					t.Errorf("handoverd owner after resolve = %q, want the thread given back", th.Owner)
				}
				h.customerSays(psid, "one more thing")
				if n := h.onlyConversation(tt.nextStatus); n == convID {
					t.Errorf("the next message reopened conversation %d", convID)
				}
			})
		})
	}
}

// checkChatwootRoutes drives the Chatwoot-only routes through the OpenAPI
// checker (from checkInboxAPI, on its API inbox, contact and conversation).
func checkChatwootRoutes(t *testing.T, o *openapiChecker, call func(method, path, body string, status int, invalid bool) map[string]any,
	apiInbox, messengerInbox, contactID int, convPath string) {
	t.Helper()
	token := http.Header{}
	token.Set("api_access_token", agentToken)
	o.call(openapiCall{method: http.MethodGet, path: "/api", status: 200})
	o.call(openapiCall{method: http.MethodGet, path: "/api/v1/profile", header: token, status: 200})
	o.call(openapiCall{method: http.MethodGet, path: "/api/v1/profile", status: 401, invalid: true})
	o.call(openapiCall{method: http.MethodGet, path: "/api/v1/profile", bearer: botAPIKey, status: 403})
	call(http.MethodGet, fmt.Sprintf("/inboxes/%d", apiInbox), "", 200, false)
	call(http.MethodGet, "/inboxes/999999", "", 404, false)
	call(http.MethodGet, "/agents", "", 200, false)
	call(http.MethodGet, "/teams", "", 200, false)
	call(http.MethodGet, "/teams/1", "", 200, false)
	call(http.MethodGet, "/teams/999", "", 404, false)

	call(http.MethodGet, "/contacts?sort=-name&page=1", "", 200, false)
	call(http.MethodGet, "/contacts?sort=colour", "", 400, true)
	if l := call(http.MethodGet, "/contacts/search?q=JANE", "", 200, false); len(l["payload"].([]any)) != 1 {
		t.Errorf("search = %v, want Jane", l)
	}
	call(http.MethodPost, "/contacts/filter", `{"payload":[{"attribute_key":"email","filter_operator":"equal_to","values":["jane@example.com"],"query_operator":null}]}`, 200, false)
	call(http.MethodPost, "/contacts/filter", `{"payload":[{"attribute_key":"colour","filter_operator":"equal_to","values":["red"]}]}`, 400, false)
	call(http.MethodGet, fmt.Sprintf("/contacts/%d/conversations", contactID), "", 200, false)
	call(http.MethodGet, "/contacts/999999/conversations", "", 404, false)
	call(http.MethodGet, fmt.Sprintf("/contacts/%d/contact_inboxes", contactID), "", 200, false)
	if l := call(http.MethodGet, fmt.Sprintf("/contacts/%d/contactable_inboxes", contactID), "", 200, false); len(l["payload"].([]any)) != 1 {
		t.Errorf("contactable inboxes = %v, want the API inbox", l)
	}
	call(http.MethodGet, "/contacts/999999/contactable_inboxes", "", 404, false)
	call(http.MethodPost, fmt.Sprintf("/contacts/%d/contact_inboxes", contactID), fmt.Sprintf(`{"inbox_id":%d,"source_id":"crm-session-42"}`, apiInbox), 200, false)
	call(http.MethodPost, fmt.Sprintf("/contacts/%d/contact_inboxes", contactID), fmt.Sprintf(`{"inbox_id":%d}`, messengerInbox), 422, false)
	call(http.MethodPost, fmt.Sprintf("/contacts/%d/contact_inboxes", contactID), `{}`, 400, true)

	call(http.MethodPost, convPath+"/labels", `{"labels":["vip","billing"]}`, 200, false)
	call(http.MethodPost, convPath+"/labels", `{"labels":["no spaces"]}`, 400, true)
	call(http.MethodGet, convPath+"/labels", "", 200, false)
	call(http.MethodGet, "/conversations/999999/labels", "", 404, false)
	call(http.MethodGet, "/conversations?status=all&labels[]=vip&q=incoming&team_id=1", "", 200, false)
	call(http.MethodGet, "/conversations/meta?status=open&labels=vip", "", 200, false)
	call(http.MethodPost, "/conversations/filter", `{"payload":[{"attribute_key":"labels","filter_operator":"equal_to","values":["vip"],"query_operator":"and"},
		{"attribute_key":"status","filter_operator":"not_equal_to","values":["resolved"],"query_operator":null}]}`, 200, false)
	call(http.MethodPost, "/conversations/filter", `{"payload":[{"attribute_key":"status","filter_operator":"sounds_like","values":["open"]}]}`, 400, true)
	call(http.MethodPost, convPath+"/update_last_seen", "", 200, false)
	if team := call(http.MethodPost, convPath+"/assignments", `{"team_id":1}`, 200, false); team["name"] != "support" {
		t.Errorf("team assignment = %v", team)
	}
	call(http.MethodPost, convPath+"/assignments", `{"team_id":999}`, 400, false)

	// A multipart message with an attachment, then the attachment itself.
	body, ctype := multipartMessage(t, map[string]string{"content": "here is your receipt", "message_type": "outgoing", "private": "false"},
		"receipt.png", pngPixel)
	h := http.Header{}
	h.Set("api_access_token", agentToken)
	h.Set("Content-Type", ctype)
	var m struct {
		Attachments []struct {
			DataURL string `json:"data_url"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(o.call(openapiCall{method: http.MethodPost, path: "/api/v1/accounts/1" + convPath + "/messages", header: h, body: body, status: 200}), &m); err != nil || len(m.Attachments) != 1 {
		t.Fatalf("multipart message: %v %+v", err, m)
	}
	u, err := url.Parse(m.Attachments[0].DataURL)
	if err != nil {
		t.Fatal(err)
	}
	if got := o.call(openapiCall{method: http.MethodGet, path: u.Path, status: 200}); !bytes.Equal(got, pngPixel) {
		t.Errorf("attachment served = %q, want the file sent", got)
	}
	o.call(openapiCall{method: http.MethodGet, path: "/attachments/000000000000000000000000000000000000/receipt.png", status: 404})
}

// pngPixel is a 1×1 PNG.
var pngPixel, _ = base64.StdEncoding.DecodeString("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")

// multipartMessage is a multipart/form-data message body with fields and
// one file as attachments[].
func multipartMessage(t *testing.T, fields map[string]string, filename string, data []byte) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	hdr := textproto.MIMEHeader{}
	hdr.Set("Content-Disposition", fmt.Sprintf(`form-data; name="attachments[]"; filename=%q`, filename))
	hdr.Set("Content-Type", "image/png")
	part, err := w.CreatePart(hdr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = part.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w.FormDataContentType()
}

// postMultipart posts a multipart message to a conversation as the agent.
func (h *harness) postMultipart(convID int, fields map[string]string, filename string, data []byte) (int, map[string]any) {
	h.t.Helper()
	var body []byte
	var ctype string
	if filename != "" {
		body, ctype = multipartMessage(h.t.(*testing.T), fields, filename, data)
	} else {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		for k, v := range fields {
			_ = w.WriteField(k, v)
		}
		_ = w.Close()
		body, ctype = buf.Bytes(), w.FormDataContentType()
	}
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/api/v1/accounts/1/conversations/%d/messages", h.url, convID), bytes.NewReader(body))
	req.Header.Set("api_access_token", agentToken)
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestAgentAttachmentReachesMessenger: an agent's multipart reply with a
// file goes to Messenger as the text, then an image attachment whose URL
// serves the file; the echoes of both parts leave one message.
func TestAgentAttachmentReachesMessenger(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "agent")
		const psid = "6301"
		h.customerSays(psid, "can I have the receipt?")
		convID := h.onlyConversation("open")
		st, msg := h.postMultipart(convID, map[string]string{"content": "here it is", "message_type": "outgoing"}, "receipt.png", pngPixel)
		if st != 200 {
			t.Fatalf("multipart reply = %d %v", st, msg)
		}
		atts, _ := msg["attachments"].([]any)
		if len(atts) != 1 {
			t.Fatalf("attachments = %v", msg["attachments"])
		}
		att := atts[0].(map[string]any)
		dataURL, _ := att["data_url"].(string)
		waitFor(t, "both parts to reach the customer", func() bool { return len(h.sim.Inbox(pageID, psid)) == 2 })
		sent := h.sim.Inbox(pageID, psid)
		if sent[0].Text != "here it is" || len(sent[1].Attachments) != 1 || sent[1].Attachments[0].Type != "image" || sent[1].Attachments[0].URL != dataURL {
			t.Errorf("sent to Messenger = %+v, want the text then the image at %s", sent, dataURL)
		}
		resp, err := http.Get(dataURL)
		if err != nil {
			t.Fatal(err)
		}
		served, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || !bytes.Equal(served, pngPixel) {
			t.Errorf("GET %s = %d %s %q, want the PNG", dataURL, resp.StatusCode, resp.Header.Get("Content-Type"), served)
		}
		h.flush()
		waitFor(t, "the reply to be marked sent (or delivered)", func() bool {
			_, l := h.api(http.MethodGet, fmt.Sprintf("/conversations/%d/messages", convID), nil)
			for _, m := range l["payload"].([]any) {
				if m := m.(map[string]any); m["id"] == msg["id"] {
					return m["status"] == "sent" || m["status"] == "delivered" || m["status"] == "read"
				}
			}
			return false
		})
		if n := h.count(`SELECT count(*) FROM inbox_messages WHERE conversation_id = $1 AND message_type = 'outgoing'`, convID); n != 1 {
			t.Errorf("%d outgoing messages, want 1 (the echo of the attachment must not add one)", n)
		}
	})
}

// TestChatwootInputErrors: bad input to the Chatwoot routes is a 400
// naming the field, and changes nothing.
func TestChatwootInputErrors(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t), "bot")
	_, ib := h.api(http.MethodPost, "/inboxes", map[string]any{"name": "API", "channel": map[string]any{"type": "api"}})
	_, c := h.api(http.MethodPost, "/contacts", map[string]any{"inbox_id": ib["id"], "name": "Jo"})
	src := c["payload"].(map[string]any)["contact_inbox"].(map[string]any)["source_id"]
	_, conv := h.api(http.MethodPost, "/conversations", map[string]any{"source_id": src})
	convID := int(conv["id"].(float64))
	cp := fmt.Sprintf("/conversations/%d", convID)
	if st, _ := h.api(http.MethodPost, cp+"/labels", map[string]any{"labels": []string{"keep"}}); st != 200 {
		t.Fatalf("labels = %d", st)
	}
	tests := []struct {
		name, method, path string
		body               any
		field              string
	}{
		{"filter unknown attribute", http.MethodPost, "/conversations/filter", `{"payload":[{"attribute_key":"colour","filter_operator":"equal_to","values":["red"]}]}`, "payload[0].attribute_key"},
		{"filter unknown operator", http.MethodPost, "/conversations/filter", `{"payload":[{"attribute_key":"status","filter_operator":"near","values":["open"]}]}`, "payload[0].filter_operator"},
		{"filter bad join", http.MethodPost, "/conversations/filter", `{"payload":[{"attribute_key":"status","filter_operator":"equal_to","values":["open"],"query_operator":"xor"},{"attribute_key":"status","filter_operator":"equal_to","values":["open"]}]}`, "payload[0].query_operator"},
		{"filter id not a number", http.MethodPost, "/conversations/filter", `{"payload":[{"attribute_key":"assignee_id","filter_operator":"equal_to","values":["alice"]}]}`, "payload[0].values[0]"},
		{"filter without rules", http.MethodPost, "/conversations/filter", `{"payload":[]}`, "payload"},
		{"filter without values", http.MethodPost, "/contacts/filter", `{"payload":[{"attribute_key":"name","filter_operator":"contains","values":[]}]}`, "payload[0].values"},
		{"bad label", http.MethodPost, cp + "/labels", `{"labels":["ok","not ok"]}`, "labels[1]"},
		{"labels missing", http.MethodPost, cp + "/labels", `{}`, "labels"},
		{"unknown team", http.MethodPost, cp + "/assignments", `{"team_id":99}`, "team_id"},
		{"team not an id", http.MethodPost, cp + "/assignments", `{"team_id":"sales"}`, "team_id"},
		{"conversation in unknown team", http.MethodPost, "/conversations", map[string]any{"source_id": src, "team_id": 99}, "team_id"},
		{"bad contact sort", http.MethodGet, "/contacts?sort=colour", nil, "sort"},
		{"bad page", http.MethodGet, "/contacts/search?q=x&page=0", nil, "page"},
		{"contact inbox without inbox", http.MethodPost, fmt.Sprintf("/contacts/%v/contact_inboxes", c["id"]), `{}`, "inbox_id"},
		{"list team not a number", http.MethodGet, "/conversations?team_id=sales", nil, "team_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body := h.api(tt.method, tt.path, tt.body)
			if e, _ := body["error"].(map[string]any); st != 400 || e == nil || e["field"] != tt.field {
				t.Errorf("= %d %v, want 400 naming %q", st, body, tt.field)
			}
		})
	}
	for _, tt := range []struct {
		name   string
		fields map[string]string
		file   string
		field  string
	}{
		{"private not a boolean", map[string]string{"content": "x", "private": "maybe"}, "", "private"},
		{"bad message type", map[string]string{"content": "x", "message_type": "sideways"}, "", "message_type"},
		{"empty text", map[string]string{"content": " "}, "", "content"},
		{"bad content attributes", map[string]string{"content": "x", "content_attributes": "[1]"}, "", "content_attributes"},
	} {
		t.Run("multipart "+tt.name, func(t *testing.T) {
			st, body := h.postMultipart(convID, tt.fields, tt.file, nil)
			if e, _ := body["error"].(map[string]any); st != 400 || e == nil || e["field"] != tt.field {
				t.Errorf("= %d %v, want 400 naming %q", st, body, tt.field)
			}
		})
	}
	for _, tt := range []struct {
		name  string
		data  []byte
		field string
	}{
		{"empty file", []byte{}, "attachments[0]"},
		{"file over the limit", bytes.Repeat([]byte{'x'}, inbox.MaxAttachmentBytes+1), "attachments[0]"},
	} {
		t.Run("multipart "+tt.name, func(t *testing.T) {
			st, body := h.postMultipart(convID, map[string]string{"content": "x"}, "big.bin", tt.data)
			if e, _ := body["error"].(map[string]any); st != 400 || e == nil || e["field"] != tt.field {
				t.Errorf("= %d %v, want 400 naming %q", st, body, tt.field)
			}
		})
	}
	// Nothing changed: the labels, the team, the messages.
	_, labels := h.api(http.MethodGet, cp+"/labels", nil)
	if diff := cmp.Diff([]any{"keep"}, labels["payload"]); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	_, got := h.api(http.MethodGet, cp, nil)
	if got["team_id"] != nil || h.count(`SELECT count(*) FROM inbox_messages`) != 0 || h.count(`SELECT count(*) FROM inbox_attachments`) != 0 ||
		h.count(`SELECT count(*) FROM conversations`) != 1 {
		t.Errorf("a refused request changed something: %v", got)
	}
}

// TestChatwootRoutesTakeTrailingSlashes: every route answers with a
// trailing slash too; unknown paths stay 404.
func TestChatwootRoutesTakeTrailingSlashes(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t), "bot")
	for _, tt := range []struct {
		method, path string
		body         any
		status       int
	}{
		{http.MethodPost, "/inboxes/", map[string]any{"name": "API", "channel": map[string]any{"type": "api"}}, 200},
		{http.MethodGet, "/inboxes/", nil, 200},
		{http.MethodGet, "/conversations/", nil, 200},
		{http.MethodGet, "/conversations/meta/", nil, 200},
		{http.MethodGet, "/agents/", nil, 200},
		{http.MethodGet, "/nothing-here/", nil, 404},
	} {
		if st, body := h.api(tt.method, tt.path, tt.body); st != tt.status {
			t.Errorf("%s %s = %d %v, want %d", tt.method, tt.path, st, body, tt.status)
		}
	}
	if st, _ := h.do(http.MethodGet, "/api/", "", nil); st != 200 {
		t.Errorf("GET /api/ = %d", st)
	}
}

// TestWebhookPayloadAsChatwootSendsIt: a webhook's message_created names
// the message type and carries event, account, inbox, conversation and
// sender; REST answers (and the live stream) keep Chatwoot's numbers.
func TestWebhookPayloadAsChatwootSendsIt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		var mu sync.Mutex
		var bodies []map[string]any
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var m map[string]any
			_ = json.NewDecoder(r.Body).Decode(&m)
			mu.Lock()
			bodies = append(bodies, m)
			mu.Unlock()
		}))
		defer recv.Close()
		_, ib := h.api(http.MethodPost, "/inboxes", map[string]any{"name": "Website", "channel": map[string]any{"type": "api", "webhook_url": recv.URL}})
		_, c := h.api(http.MethodPost, "/contacts", map[string]any{"inbox_id": ib["id"], "name": "Jo"})
		_, conv := h.api(http.MethodPost, "/conversations", map[string]any{"source_id": c["payload"].(map[string]any)["contact_inbox"].(map[string]any)["source_id"]})
		_, msg := h.api(http.MethodPost, fmt.Sprintf("/conversations/%v/messages", conv["id"]), map[string]any{"content": "hi", "message_type": "incoming"})
		if msg["message_type"] != float64(0) {
			t.Errorf("REST message_type = %v, want 0", msg["message_type"])
		}
		for h.count(`SELECT count(*) FROM outbox WHERE status = 'pending'`) > 0 {
			if _, err := h.srv.Inbox().DeliverDue(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		var got map[string]any
		for _, m := range bodies {
			if m["event"] == "message_created" {
				got = m
			}
		}
		if got == nil {
			t.Fatalf("no message_created delivered: %v", bodies)
		}
		want := map[string]any{
			"event": "message_created", "message_type": "incoming", "content": "hi",
			"account": map[string]any{"id": float64(1), "name": "Account 1"},
			"inbox":   map[string]any{"id": ib["id"], "name": "Website"},
			"sender":  map[string]any{"id": c["id"], "name": "Jo", "type": "contact"},
		}
		for k, v := range want {
			if diff := cmp.Diff(v, got[k]); diff != "" {
				t.Errorf("%s (-want +got):\n%s", k, diff)
			}
		}
		if cv, _ := got["conversation"].(map[string]any); cv == nil || cv["id"] != conv["id"] || cv["uuid"] == nil {
			t.Errorf("conversation = %v", got["conversation"])
		}
		var live string
		_ = h.srv.DB().Reader().QueryRow(`SELECT payload FROM inbox_events WHERE event = 'message_created'`).Scan(&live)
		if !strings.Contains(live, `"message_type":0`) {
			t.Errorf("the live stream's payload lost Chatwoot's number: %s", live)
		}
	})
}
