package inbox_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/inbox"
)

// TestAccountResources: the profile, inboxes, agents and teams an account
// shows, each to its own users.
func TestAccountResources(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		var info map[string]string
		e.must("GET", "/api", "", nil, &info)
		if d := cmp.Diff([]string{"handoverd", "ok", "2026-11-02T08:00:00Z"}, []string{info["version"], info["data_services"], info["timestamp"]}); d != "" {
			t.Errorf("GET /api (-want +got):\n%s", d)
		}
		var prof inbox.ProfileView
		e.must("GET", "/api/v1/profile", aliceToken, nil, &prof)
		if d := cmp.Diff([]inbox.ProfileAccount{{ID: 1, Name: "Account 1", Role: "agent", Status: "active"}}, prof.Accounts); d != "" {
			t.Errorf("alice's accounts (-want +got):\n%s", d)
		}
		if st, _ := e.call("GET", "/api/v1/profile", botToken, nil, nil); st != http.StatusForbidden {
			t.Errorf("a bot's profile: %d, want 403", st)
		}

		var inboxes struct{ Payload []inbox.InboxView }
		e.must("GET", path("1/inboxes"), aliceToken, nil, &inboxes)
		var names []string
		for _, iv := range inboxes.Payload {
			names = append(names, iv.Name+" "+iv.ChannelType+" "+iv.PageID)
		}
		if d := cmp.Diff([]string{"Messenger " + pageID + " Channel::FacebookPage " + pageID}, names); d != "" {
			t.Errorf("account 1 inboxes (-want +got):\n%s", d)
		}
		st, raw := e.call("GET", path("1/inboxes/%d", e.inboxOf(otherPage)), aliceToken, nil, nil)
		if d := cmp.Diff(errorBody{404, "not_found", ""}, failure(t, st, raw)); d != "" {
			t.Errorf("another account's inbox (-want +got):\n%s", d)
		}

		var teams []inbox.TeamView
		e.must("GET", path("1/teams"), aliceToken, nil, &teams)
		var got []string
		for _, tv := range teams {
			m := ""
			if tv.IsMember {
				m = " (member)"
			}
			got = append(got, tv.Name+m)
		}
		if d := cmp.Diff([]string{"support (member)", "billing"}, got); d != "" {
			t.Errorf("account 1 teams (-want +got):\n%s", d)
		}
		var team inbox.TeamView
		e.must("GET", path("1/teams/2"), aliceToken, nil, &team)
		if team.Name != "billing" {
			t.Errorf("team 2 = %+v", team)
		}
		st, raw = e.call("GET", path("1/teams/3"), aliceToken, nil, nil)
		if d := cmp.Diff(errorBody{404, "not_found", ""}, failure(t, st, raw)); d != "" {
			t.Errorf("another account's team (-want +got):\n%s", d)
		}
	})
}

// TestContactInboxes: a contact's sessions are opened in API inboxes,
// listed, and a source_id belongs to one contact per inbox.
func TestContactInboxes(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		inboxID, ada, _ := e.apiContact("Ada", "")
		var c inbox.ContactCreated
		e.must("POST", path("1/contacts"), aliceToken, map[string]any{"inbox_id": inboxID, "name": "Grace"}, &c)
		var ci inbox.ContactInboxCreated
		e.must("POST", path("1/contacts/%d/contact_inboxes", ada), aliceToken, map[string]any{"inbox_id": inboxID, "source_id": "ada-2"}, &ci)
		if d := cmp.Diff([]any{"ada-2", ada, inboxID}, []any{ci.SourceID, ci.ContactID, ci.InboxID}); d != "" {
			t.Errorf("created (-want +got):\n%s", d)
		}
		// Again: already there, same answer.
		e.must("POST", path("1/contacts/%d/contact_inboxes", ada), aliceToken, map[string]any{"inbox_id": inboxID, "source_id": "ada-2"}, &ci)
		var list struct{ Payload []inbox.ContactInboxView }
		e.must("GET", path("1/contacts/%d/contact_inboxes", ada), aliceToken, nil, &list)
		if len(list.Payload) != 2 {
			t.Errorf("ada has %d sessions, want 2", len(list.Payload))
		}
		for _, tc := range []struct {
			name string
			body map[string]any
			want errorBody
		}{
			{"another contact's source_id", map[string]any{"inbox_id": inboxID, "source_id": "ada-2"}, errorBody{409, "conflict", "source_id"}},
			{"no inbox", map[string]any{"source_id": "x"}, errorBody{400, "invalid", "inbox_id"}},
			{"Messenger inbox", map[string]any{"inbox_id": e.inboxOf(pageID)}, errorBody{422, "unprocessable", "inbox_id"}},
			{"another account's inbox", map[string]any{"inbox_id": e.inboxOf(otherPage)}, errorBody{400, "invalid", "inbox_id"}},
		} {
			st, raw := e.call("POST", path("1/contacts/%d/contact_inboxes", c.ID), aliceToken, tc.body, nil)
			if d := cmp.Diff(tc.want, failure(t, st, raw)); d != "" {
				t.Errorf("%s (-want +got):\n%s", tc.name, d)
			}
		}
		var convs struct{ Payload []inbox.ConversationView }
		e.must("POST", path("1/conversations"), aliceToken, map[string]any{"source_id": "ada-2"}, nil)
		e.must("GET", path("1/contacts/%d/conversations", ada), aliceToken, nil, &convs)
		if len(convs.Payload) != 1 {
			t.Errorf("ada's conversations: %d, want 1", len(convs.Payload))
		}
		var contactable struct{ Payload []inbox.ContactInboxView }
		e.must("GET", path("1/contacts/%d/contactable_inboxes", ada), aliceToken, nil, &contactable)
		if len(contactable.Payload) == 0 || contactable.Payload[0].Inbox.ID != inboxID {
			t.Errorf("contactable inboxes: %+v", contactable.Payload)
		}
	})
}

// TestUnreadAndSeen: incoming messages count as unread until the agents
// mark the conversation seen; labels are listed as set.
func TestUnreadAndSeen(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.ingest(toUs(e.customer(pageID, "psid-u", "m.1", "one")))
		e.ingest(toUs(e.customer(pageID, "psid-u", "m.2", "two")))
		conv := e.conversationOf(pageID, "psid-u")
		var v inbox.ConversationView
		e.must("GET", path("1/conversations/%d", conv), aliceToken, nil, &v)
		if v.UnreadCount != 2 {
			t.Errorf("unread %d, want 2", v.UnreadCount)
		}
		e.clock.Advance(1)
		e.must("POST", path("1/conversations/%d/update_last_seen", conv), aliceToken, nil, &v)
		if v.UnreadCount != 0 || v.AgentLastSeenAt == 0 {
			t.Errorf("after update_last_seen: unread %d, last seen %d", v.UnreadCount, v.AgentLastSeenAt)
		}
		var meta struct{ Meta inbox.ConversationCounts }
		e.must("GET", path("1/conversations/meta?status=all"), aliceToken, nil, &meta)
		if d := cmp.Diff(inbox.ConversationCounts{UnassignedCount: 1, AllCount: 1}, meta.Meta); d != "" {
			t.Errorf("meta (-want +got):\n%s", d)
		}
		e.must("POST", path("1/conversations/%d/labels", conv), aliceToken, map[string]any{"labels": []string{"b", "a"}}, nil)
		var labels struct{ Payload []string }
		e.must("GET", path("1/conversations/%d/labels", conv), aliceToken, nil, &labels)
		if d := cmp.Diff([]string{"a", "b"}, labels.Payload); d != "" {
			t.Errorf("labels (-want +got):\n%s", d)
		}
	})
}

// TestAttachments: a multipart message stores its files, which are served
// back by their token with a safe disposition.
func TestAttachments(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		_, _, source := e.apiContact("Ada", "")
		var conv inbox.ConversationView
		e.must("POST", path("1/conversations"), aliceToken, map[string]any{"source_id": source}, &conv)
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		_ = mw.WriteField("content", "see attached")
		_ = mw.WriteField("private", "true")
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="attachments[]"; filename="../notes.txt"`)
		h.Set("Content-Type", "text/plain")
		fw, _ := mw.CreatePart(h)
		_, _ = fw.Write([]byte("the notes"))
		_ = mw.Close()
		req, _ := http.NewRequest("POST", e.url+path("1/conversations/%d/messages", conv.ID), &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("api_access_token", aliceToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("multipart message: %d %s", resp.StatusCode, raw)
		}
		var m struct {
			Content     string                 `json:"content"`
			Private     bool                   `json:"private"`
			Attachments []inbox.AttachmentView `json:"attachments"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		if len(m.Attachments) != 1 {
			t.Fatalf("attachments: %s", raw)
		}
		a := m.Attachments[0]
		if d := cmp.Diff([]any{"see attached", true, "file", "notes.txt", int64(9)}, []any{m.Content, m.Private, a.FileType, a.Filename, a.FileSize}); d != "" {
			t.Errorf("message (-want +got):\n%s", d)
		}
		u, err := url.Parse(a.DataURL)
		if err != nil || !strings.HasPrefix(u.Path, inbox.AttachmentPath+"/") {
			t.Fatalf("data_url %q is not under %s", a.DataURL, inbox.AttachmentPath)
		}
		got, err := http.Get(e.url + u.Path)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(got.Body)
		got.Body.Close()
		if d := cmp.Diff([]string{"200", "the notes", "text/plain", `attachment; filename=notes.txt`},
			[]string{strconv.Itoa(got.StatusCode), string(data), got.Header.Get("Content-Type"), got.Header.Get("Content-Disposition")}); d != "" {
			t.Errorf("served attachment (-want +got):\n%s", d)
		}
		missing, _ := http.Get(e.url + inbox.AttachmentPath + "/00000000-0000-0000-0000-000000000000/x.txt")
		if missing.StatusCode != http.StatusNotFound {
			t.Errorf("unknown attachment: %d", missing.StatusCode)
		}
		missing.Body.Close()
	})
}

// TestLiveEvents: the Server-Sent Events stream sends the account's
// events from after Last-Event-ID, in order, and ends when the process
// drains.
func TestLiveEvents(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.ingest(e.customer(pageID, "psid-l", "m.1", "one"))
		e.ingest(e.customer(otherPage, "psid-x", "m.x", "another account"))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", e.url+path("1/events"), nil)
		req.Header.Set("api_access_token", aliceToken)
		req.Header.Set("Last-Event-ID", "1") // after the first event
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("Content-Type %q", ct)
		}
		lines := bufio.NewScanner(resp.Body)
		lines.Buffer(make([]byte, 1<<20), 1<<20)
		next := func() (id, event string) {
			for lines.Scan() {
				l := lines.Text()
				switch {
				case strings.HasPrefix(l, "id: "):
					id = l[4:]
				case strings.HasPrefix(l, "event: "):
					event = l[7:]
				case strings.HasPrefix(l, "data: "):
					var v map[string]any
					if err := json.Unmarshal([]byte(l[6:]), &v); err != nil {
						t.Errorf("event data is not JSON: %s", l)
					}
					return id, event
				}
			}
			return "", ""
		}
		var got []string
		last := int64(1)
		read := func() {
			id, ev := next()
			n, err := strconv.ParseInt(id, 10, 64)
			if err != nil || n <= last {
				t.Errorf("event id %q after %d", id, last)
			}
			last = n
			got = append(got, ev)
		}
		for range 3 {
			read()
		}
		// A message that arrives while the stream is open follows.
		e.ingest(e.customer(pageID, "psid-l", "m.2", "two"))
		read()
		want := []string{inbox.EventMessageCreated, inbox.EventMessageCreated, inbox.EventConversationOwner, inbox.EventMessageCreated}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("stream (-want +got):\n%s", d)
		}
		// A stream opened without Last-Event-ID starts from now.
		fresh, err := http.NewRequestWithContext(ctx, "GET", e.url+path("1/events"), nil)
		if err != nil {
			t.Fatal(err)
		}
		fresh.Header.Set("api_access_token", aliceToken)
		resp2, err := http.DefaultClient.Do(fresh)
		if err != nil {
			t.Fatal(err)
		}
		defer resp2.Body.Close()
		e.ingest(e.customer(pageID, "psid-l", "m.3", "three"))
		lines = bufio.NewScanner(resp2.Body)
		id, ev := next()
		if n, _ := strconv.ParseInt(id, 10, 64); ev != inbox.EventMessageCreated || n <= last {
			t.Errorf("a stream from now began with %s %s, want the message after event %d", id, ev, last)
		}
		e.in.Drain()
		for lines.Scan() {
		}
		st, raw := e.call("GET", path("1/events?since=soon"), aliceToken, nil, nil)
		if d := cmp.Diff(errorBody{400, "invalid", "Last-Event-ID"}, failure(t, st, raw)); d != "" {
			t.Errorf("bad since (-want +got):\n%s", d)
		}
	})
}
