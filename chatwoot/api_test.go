package chatwoot_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/inbox"
)

// part is one part of a multipart body: a form field, or a file when
// filename is set.
type part struct {
	name, filename, contentType string
	data                        []byte
}

// multipartBody encodes parts and returns the body and its Content-Type.
func multipartBody(parts ...part) ([]byte, string) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		disp := `form-data; name="` + p.name + `"`
		if p.filename != "" {
			disp += `; filename="` + p.filename + `"`
		}
		h.Set("Content-Disposition", disp)
		if p.contentType != "" {
			h.Set("Content-Type", p.contentType)
		}
		w, _ := mw.CreatePart(h)
		_, _ = w.Write(p.data)
	}
	_ = mw.Close()
	return body.Bytes(), mw.FormDataContentType()
}

// TestRefusals: input the adapter reads (credentials, the path, the query,
// JSON and multipart bodies) that is bad is refused with the status of the
// one table and a JSON body naming the field, and changes nothing.
func TestRefusals(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		_, conv := e.apiConversation("Ada")
		e.customer(otherPage, "psid-2", "hello")
		var other struct {
			Payload []inbox.InboxView `json:"payload"`
		}
		e.must("GET", path("2/inboxes"), adminToken, nil, &other)
		msgs := path("1/conversations/%d/messages", conv)
		file := func(name string, data []byte) part {
			return part{name: name, filename: "a.txt", contentType: "text/plain", data: data}
		}
		tooMany := []part{}
		for range inbox.MaxAttachments + 1 {
			tooMany = append(tooMany, file("attachments[]", []byte("x")))
		}
		mp := func(parts ...part) request {
			body, ct := multipartBody(parts...)
			return request{method: "POST", path: msgs, token: aliceToken, body: body, contentType: ct}
		}
		get := func(p, token string) request { return request{method: "GET", path: p, token: token} }
		post := func(p string, body any) request {
			return request{method: "POST", path: p, token: aliceToken, body: body}
		}
		before := e.state()
		for _, tc := range []struct {
			name string
			req  request
			want errorBody
		}{
			{"no token", get(path("1/conversations"), ""), errorBody{401, "unauthorized", ""}},
			{"unknown token", get(path("1/conversations"), "not-a-token-0123456789"), errorBody{401, "unauthorized", ""}},
			{"bot token", get(path("1/conversations"), botToken), errorBody{403, "forbidden", ""}},
			{"profile without a token", get("/api/v1/profile", ""), errorBody{401, "unauthorized", ""}},
			{"other account", get(path("2/conversations"), aliceToken), errorBody{403, "forbidden", ""}},
			{"account not a number", get(path("x/conversations"), aliceToken), errorBody{404, "not_found", ""}},
			{"id not a number", get(path("1/conversations/first"), aliceToken), errorBody{404, "not_found", ""}},
			{"another account's inbox", get(path("1/inboxes/%d", other.Payload[0].ID), adminToken), errorBody{404, "not_found", ""}},
			{"inbox_id", get(path("1/conversations?inbox_id=one"), aliceToken), errorBody{400, "invalid", "inbox_id"}},
			{"assignee_id", get(path("1/conversations/meta?assignee_id=me"), aliceToken), errorBody{400, "invalid", "assignee_id"}},
			{"team_id", get(path("1/conversations?team_id=t"), aliceToken), errorBody{400, "invalid", "team_id"}},
			{"page zero", get(path("1/contacts?page=0"), aliceToken), errorBody{400, "invalid", "page"}},
			{"page not a number", get(path("1/contacts/search?q=a&page=two"), aliceToken), errorBody{400, "invalid", "page"}},
			{"messages before", get(path("1/conversations/%d/messages?before=last", conv), aliceToken), errorBody{400, "invalid", "before"}},
			{"malformed JSON", post(path("1/contacts"), `{"name":`), errorBody{400, "invalid", "body"}},
			{"JSON of the wrong type", post(path("1/contacts"), `{"name":5}`), errorBody{400, "invalid", "name"}},
			{"two JSON values", post(path("1/inboxes"), `{"name":"a"}{}`), errorBody{400, "invalid", "body"}},
			{"NUL in a string", post(path("1/inboxes"), `{"name":"a\u0000"}`), errorBody{400, "invalid", "name"}},
			{"body over 256 KiB", post(path("1/contacts"), `{"name":"`+strings.Repeat("x", 256<<10)+`"}`), errorBody{413, "too_large", ""}},
			{"inbox channel", post(path("1/inboxes"), map[string]any{"name": "x", "channel": map[string]any{"type": "email"}}), errorBody{400, "invalid", "channel.type"}},
			{"contact inbox_id not an id", post(path("1/contacts/1/contact_inboxes"), map[string]any{"inbox_id": "first"}), errorBody{400, "invalid", "inbox_id"}},
			{"empty contact filter", post(path("1/contacts/filter"), map[string]any{"payload": []any{}}), errorBody{400, "invalid", "payload"}},
			{"empty conversation filter", post(path("1/conversations/filter"), map[string]any{"payload": []any{}}), errorBody{400, "invalid", "payload"}},
			{"filter page", post(path("1/conversations/filter?page=-1"), map[string]any{"payload": []any{}}), errorBody{400, "invalid", "page"}},
			{"assignee not an id", post(path("1/conversations/%d/assignments", conv), map[string]any{"assignee_id": "alice"}), errorBody{400, "invalid", "assignee_id"}},
			{"team not an id", post(path("1/conversations/%d/assignments", conv), map[string]any{"team_id": "support"}), errorBody{400, "invalid", "team_id"}},
			{"labels missing", post(path("1/conversations/%d/labels", conv), map[string]any{}), errorBody{400, "invalid", "labels"}},
			{"toggle_status body", post(path("1/conversations/%d/toggle_status", conv), `{"status":`), errorBody{400, "invalid", "body"}},
			{"multipart without a boundary", request{method: "POST", path: msgs, token: aliceToken, body: "x", contentType: "multipart/form-data"}, errorBody{400, "invalid", "body"}},
			{"multipart file in another field", mp(part{name: "content", data: []byte("hi")}, file("document", []byte("x"))), errorBody{400, "invalid", "document"}},
			{"multipart, too many files", mp(tooMany...), errorBody{400, "invalid", "attachments"}},
			{"multipart, an empty file", mp(part{name: "content", data: []byte("hi")}, file("attachments[]", nil)), errorBody{400, "invalid", "attachments[0]"}},
			{"multipart, a file over the limit", mp(file("attachments[]", []byte("x")), file("attachments[]", bytes.Repeat([]byte{'x'}, inbox.MaxAttachmentBytes+1))), errorBody{400, "invalid", "attachments[1]"}},
			{"multipart private", mp(part{name: "content", data: []byte("hi")}, part{name: "private", data: []byte("maybe")}), errorBody{400, "invalid", "private"}},
			{"multipart field over 64 KB", mp(part{name: "content", data: bytes.Repeat([]byte{'x'}, 64<<10+1)}), errorBody{400, "invalid", "content"}},
			{"live updates since", get(path("1/events?since=soon"), aliceToken), errorBody{400, "invalid", "Last-Event-ID"}},
			{"live updates since, negative", get(path("1/events?since=-1"), aliceToken), errorBody{400, "invalid", "Last-Event-ID"}},
			{"live updates without a token", get(path("1/events"), ""), errorBody{401, "unauthorized", ""}},
			{"unknown attachment", get(inbox.AttachmentPath+"/00000000-0000-0000-0000-000000000000/x.txt", ""), errorBody{404, "not_found", ""}},
			{"attachment token of the wrong length", get(inbox.AttachmentPath+"/abc/x.txt", ""), errorBody{404, "not_found", ""}},
		} {
			st, raw := e.call(tc.req, nil)
			if d := cmp.Diff(tc.want, failure(t, st, raw)); d != "" {
				t.Errorf("%s: %s (-want +got):\n%s", tc.name, raw, d)
			}
			after := e.state()
			if d := cmp.Diff(before, after); d != "" {
				t.Errorf("%s changed the inbox (-before +after):\n%s", tc.name, d)
			}
			before = after
		}
	})
}

// TestAnswers: the adapter's own answers, around what the inbox returns:
// the API's health, Chatwoot's wrappers, a trailing slash, both token
// headers.
func TestAnswers(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		_, conv := e.apiConversation("Ada")
		var info map[string]string
		e.must("GET", "/api", "", nil, &info)
		if d := cmp.Diff(map[string]string{"version": "handoverd", "timestamp": "2026-11-02T08:00:00Z", "queue_services": "ok", "data_services": "ok"}, info); d != "" {
			t.Errorf("GET /api (-want +got):\n%s", d)
		}
		var labels struct {
			Payload []string `json:"payload"`
		}
		e.must("POST", path("1/conversations/%d/labels/", conv), aliceToken, map[string]any{"labels": []string{"vip"}}, &labels)
		if d := cmp.Diff([]string{"vip"}, labels.Payload); d != "" {
			t.Errorf("labels, with a trailing slash (-want +got):\n%s", d)
		}
		var toggled struct {
			Payload struct {
				Success        bool   `json:"success"`
				CurrentStatus  string `json:"current_status"`
				ConversationID int64  `json:"conversation_id"`
			} `json:"payload"`
		}
		e.must("POST", path("1/conversations/%d/toggle_status", conv), aliceToken, nil, &toggled)
		if d := cmp.Diff(struct {
			Success        bool
			CurrentStatus  string
			ConversationID int64
		}{true, inbox.StatusResolved, conv}, struct {
			Success        bool
			CurrentStatus  string
			ConversationID int64
		}(toggled.Payload)); d != "" {
			t.Errorf("toggle_status without a body (-want +got):\n%s", d)
		}
		for _, header := range []string{"api_access_token", "Authorization"} {
			r, _ := http.NewRequest("GET", e.url+"/api/v1/profile", nil)
			v := aliceToken
			if header == "Authorization" {
				v = "Bearer " + aliceToken
			}
			r.Header.Set(header, v)
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("profile with %s: %d", header, resp.StatusCode)
			}
		}
	})
}
