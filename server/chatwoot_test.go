package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"testing"

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
