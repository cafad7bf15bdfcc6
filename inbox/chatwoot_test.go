package inbox_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/inbox"
)

// apiContact creates an API inbox and a contact in it, returning the
// inbox id, the contact id and its session's source_id.
func (e *env) apiContact(name, email string) (inboxID, contactID int64, source string) {
	e.t.Helper()
	var iv inbox.InboxView
	e.must("POST", path("1/inboxes"), aliceToken, map[string]any{"name": "site", "channel": map[string]any{"type": "api"}}, &iv)
	var c inbox.ContactCreated
	e.must("POST", path("1/contacts"), aliceToken, map[string]any{"inbox_id": iv.ID, "name": name, "email": email}, &c)
	return iv.ID, c.ID, c.Payload.ContactInbox.SourceID
}

// agentID returns the id of the named user in the account's agent list.
func (e *env) agentID(account int64, name string) int64 {
	e.t.Helper()
	var users []inbox.UserView
	e.must("GET", path("%d/agents", account), adminToken, nil, &users)
	for _, u := range users {
		if u.Name == name {
			return u.ID
		}
	}
	e.t.Fatalf("account %d has no agent %s: %+v", account, name, users)
	return 0
}

// TestAPIContacts: contacts created in an API inbox are listed, found by
// search and by filter rules, and shown only in their own account.
func TestAPIContacts(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		inboxID, ada, source := e.apiContact("Ada Lovelace", "ada@example.com")
		_, grace, _ := e.apiContact("Grace Hopper", "grace@example.com")
		if source == "" {
			t.Fatal("the created contact has no source_id")
		}
		names := func(l inbox.ContactList) []string {
			out := []string{}
			for _, c := range l.Payload {
				out = append(out, c.Name)
			}
			return out
		}
		for _, tc := range []struct {
			name, method, path string
			body               any
			want               []string
		}{
			{"list by name", "GET", path("1/contacts?sort=name"), nil, []string{"Ada Lovelace", "Grace Hopper"}},
			{"search", "GET", path("1/contacts/search?q=hopper"), nil, []string{"Grace Hopper"}},
			{"search by email", "GET", path("1/contacts/search?q=ada@"), nil, []string{"Ada Lovelace"}},
			{"filter", "POST", path("1/contacts/filter"), map[string]any{"payload": []map[string]any{
				{"attribute_key": "email", "filter_operator": "contains", "values": []string{"grace"}}}}, []string{"Grace Hopper"}},
		} {
			var l inbox.ContactList
			e.must(tc.method, tc.path, aliceToken, tc.body, &l)
			if d := cmp.Diff(tc.want, names(l)); d != "" {
				t.Errorf("%s (-want +got):\n%s", tc.name, d)
			}
		}

		var shown inbox.ContactShown
		e.must("GET", path("1/contacts/%d", ada), aliceToken, nil, &shown)
		got := []any{shown.Payload.Name, shown.Payload.Email, len(shown.Payload.ContactInboxes), shown.Payload.ContactInboxes[0].Inbox.ID}
		if d := cmp.Diff([]any{"Ada Lovelace", "ada@example.com", 1, inboxID}, got); d != "" {
			t.Errorf("contact (-want +got):\n%s", d)
		}
		// Account 2's agent cannot see account 1's contact, even through
		// its own account's path.
		st, raw := e.call("GET", path("2/contacts/%d", grace), bobToken, nil, nil)
		if d := cmp.Diff(errorBody{Status: 404, Code: "not_found"}, failure(t, st, raw)); d != "" {
			t.Errorf("other account's contact (-want +got):\n%s", d)
		}
	})
}

// TestAPIConversations: conversations on API sessions are created, listed
// by status and assignee, counted, filtered, labelled, assigned and
// toggled; each change is an event.
func TestAPIConversations(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		_, _, source := e.apiContact("Ada", "ada@example.com")
		create := func(status string) int64 {
			var v inbox.ConversationView
			e.must("POST", path("1/conversations"), aliceToken, map[string]any{"source_id": source, "status": status}, &v)
			e.clock.Advance(1)
			return v.ID
		}
		open1, open2, pending := create("open"), create("open"), create("pending")
		var assignee inbox.AgentView
		e.must("POST", path("1/conversations/%d/assignments", open2), aliceToken, map[string]any{"assignee_id": e.agentID(1, "alice")}, &assignee)
		if assignee.Name != "alice" {
			t.Errorf("assignment answered %+v", assignee)
		}

		ids := func(l inbox.ConversationList) []int64 {
			out := []int64{}
			for _, c := range l.Data.Payload {
				out = append(out, c.ID)
			}
			return out
		}
		for _, tc := range []struct {
			query  string
			want   []int64
			counts inbox.ConversationCounts
		}{
			{"", []int64{open2, open1}, inbox.ConversationCounts{MineCount: 1, UnassignedCount: 1, AssignedCount: 1, AllCount: 2}},
			{"?status=pending", []int64{pending}, inbox.ConversationCounts{UnassignedCount: 1, AllCount: 1}},
			{"?status=all", []int64{pending, open2, open1}, inbox.ConversationCounts{MineCount: 1, UnassignedCount: 2, AssignedCount: 1, AllCount: 3}},
			{"?assignee_type=me", []int64{open2}, inbox.ConversationCounts{MineCount: 1, UnassignedCount: 1, AssignedCount: 1, AllCount: 2}},
			{"?assignee_type=unassigned", []int64{open1}, inbox.ConversationCounts{MineCount: 1, UnassignedCount: 1, AssignedCount: 1, AllCount: 2}},
			{"?status=all&page=2", []int64{}, inbox.ConversationCounts{MineCount: 1, UnassignedCount: 2, AssignedCount: 1, AllCount: 3}},
		} {
			var l inbox.ConversationList
			e.must("GET", path("1/conversations%s", tc.query), aliceToken, nil, &l)
			if d := cmp.Diff(tc.want, ids(l)); d != "" {
				t.Errorf("list %q (-want +got):\n%s", tc.query, d)
			}
			if d := cmp.Diff(tc.counts, l.Data.Meta); d != "" {
				t.Errorf("counts %q (-want +got):\n%s", tc.query, d)
			}
		}

		var labels struct{ Payload []string }
		e.must("POST", path("1/conversations/%d/labels", open1), aliceToken, map[string]any{"labels": []string{"vip", "billing", "vip"}}, &labels)
		if d := cmp.Diff([]string{"billing", "vip"}, labels.Payload); d != "" {
			t.Errorf("labels (-want +got):\n%s", d)
		}
		var l inbox.ConversationList
		e.must("GET", path("1/conversations?labels[]=vip"), aliceToken, nil, &l)
		if d := cmp.Diff([]int64{open1}, ids(l)); d != "" {
			t.Errorf("by label (-want +got):\n%s", d)
		}
		var filtered struct {
			Payload []inbox.ConversationView `json:"payload"`
		}
		e.must("POST", path("1/conversations/filter"), aliceToken, map[string]any{"payload": []map[string]any{
			{"attribute_key": "status", "filter_operator": "equal_to", "values": []string{"pending"}}}}, &filtered)
		if len(filtered.Payload) != 1 || filtered.Payload[0].ID != pending {
			t.Errorf("filter status=pending: %+v", filtered.Payload)
		}

		var toggled struct {
			Payload struct {
				Success       bool   `json:"success"`
				CurrentStatus string `json:"current_status"`
			} `json:"payload"`
		}
		e.must("POST", path("1/conversations/%d/toggle_status", open1), aliceToken, nil, &toggled)
		first := toggled.Payload.CurrentStatus
		e.must("POST", path("1/conversations/%d/toggle_status", open1), aliceToken, nil, &toggled)
		if d := cmp.Diff([]string{"resolved", "open"}, []string{first, toggled.Payload.CurrentStatus}); d != "" {
			t.Errorf("toggle twice (-want +got):\n%s", d)
		}
		e.must("POST", path("1/conversations/%d/toggle_status", open1), aliceToken, map[string]string{"status": "snoozed"}, &toggled)
		var v inbox.ConversationView
		e.must("GET", path("1/conversations/%d", open1), aliceToken, nil, &v)
		if d := cmp.Diff([]any{"snoozed", []string{"billing", "vip"}}, []any{v.Status, v.Labels}); d != "" {
			t.Errorf("conversation (-want +got):\n%s", d)
		}

		want := []string{
			inbox.EventConversationCreated, inbox.EventConversationCreated, inbox.EventConversationCreated,
			inbox.EventConversationAssigned, inbox.EventConversationUpdated,
			inbox.EventConversationStatus, inbox.EventConversationStatus, inbox.EventConversationStatus,
		}
		if d := cmp.Diff(want, e.events(1)); d != "" {
			t.Errorf("events (-want +got):\n%s", d)
		}
	})
}

// TestAPIMessages: messages posted to an API conversation are listed
// oldest first, as the contact's (incoming) or the agent's (outgoing).
func TestAPIMessages(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		_, _, source := e.apiContact("Ada", "")
		var conv inbox.ConversationView
		e.must("POST", path("1/conversations"), aliceToken, map[string]any{"source_id": source}, &conv)
		for _, m := range []map[string]any{
			{"content": "I have a question", "message_type": "incoming"},
			{"content": "Ask away", "message_type": 1},
			{"content": "note to self", "private": true},
		} {
			e.clock.Advance(1)
			e.must("POST", path("1/conversations/%d/messages", conv.ID), aliceToken, m, nil)
		}
		want := []shownMessage{
			{Type: 0, Content: "I have a question", Sender: "contact:Ada"},
			{Type: 1, Content: "Ask away", Sender: "agent:alice"},
			{Type: 1, Content: "note to self", Sender: "agent:alice"},
		}
		if d := cmp.Diff(want, e.shownMessages(aliceToken, 1, conv.ID)); d != "" {
			t.Errorf("messages (-want +got):\n%s", d)
		}
	})
}

// TestAPIRefusals: input the inbox refuses (the adapter's own refusals
// are the chatwoot package's tests) gets the status of the one table and
// a body naming the field, and changes nothing; another account's objects
// answer as if they did not exist.
func TestAPIRefusals(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		apiInbox, _, source := e.apiContact("Ada", "")
		var conv inbox.ConversationView
		e.must("POST", path("1/conversations"), aliceToken, map[string]any{"source_id": source}, &conv)
		e.ingest(e.customer(pageID, "psid-r", "m.r", "hi"))
		fb := e.conversationOf(pageID, "psid-r")
		before := e.events(1)
		for _, tc := range []struct {
			name, method, path, token string
			body                      any
			want                      errorBody
		}{
			{"status", "GET", path("1/conversations?status=gone"), aliceToken, nil, errorBody{400, "invalid", "status"}},
			{"assignee_type", "GET", path("1/conversations?assignee_type=them"), aliceToken, nil, errorBody{400, "invalid", "assignee_type"}},
			{"unknown conversation", "GET", path("1/conversations/999999"), aliceToken, nil, errorBody{404, "not_found", ""}},
			{"other account's conversation", "GET", path("2/conversations/%d", conv.ID), bobToken, nil, errorBody{404, "not_found", ""}},
			{"contact without inbox", "POST", path("1/contacts"), aliceToken, map[string]any{"name": "x"}, errorBody{400, "invalid", "inbox_id"}},
			{"contact email", "POST", path("1/contacts"), aliceToken, map[string]any{"inbox_id": apiInbox, "email": "nope"}, errorBody{400, "invalid", "email"}},
			{"contact in Messenger inbox", "POST", path("1/contacts"), aliceToken, map[string]any{"inbox_id": e.inboxOf(pageID)}, errorBody{422, "unprocessable", "inbox_id"}},
			{"conversation source", "POST", path("1/conversations"), aliceToken, map[string]any{"source_id": "nobody"}, errorBody{400, "invalid", "source_id"}},
			{"conversation status", "POST", path("1/conversations"), aliceToken, map[string]any{"source_id": source, "status": "later"}, errorBody{400, "invalid", "status"}},
			{"Messenger conversation", "POST", path("1/conversations"), aliceToken, map[string]any{"source_id": "psid-r"}, errorBody{422, "unprocessable", "source_id"}},
			{"empty message", "POST", path("1/conversations/%d/messages", conv.ID), aliceToken, map[string]any{"content": " "}, errorBody{400, "invalid", "content"}},
			{"content_type", "POST", path("1/conversations/%d/messages", conv.ID), aliceToken, map[string]any{"content": "x", "content_type": "video"}, errorBody{400, "invalid", "content_type"}},
			{"incoming on Messenger", "POST", path("1/conversations/%d/messages", fb), aliceToken, map[string]any{"content": "x", "message_type": "incoming"}, errorBody{422, "unprocessable", "message_type"}},
			{"assign another account's agent", "POST", path("1/conversations/%d/assignments", conv.ID), aliceToken, map[string]any{"assignee_id": e.agentID(2, "bob")}, errorBody{400, "invalid", "assignee_id"}},
			{"another account's team", "POST", path("1/conversations/%d/assignments", conv.ID), aliceToken, map[string]any{"team_id": 3}, errorBody{400, "invalid", "team_id"}},
			{"label invalid", "POST", path("1/conversations/%d/labels", conv.ID), aliceToken, map[string]any{"labels": []string{"ok", "not ok"}}, errorBody{400, "invalid", "labels[1]"}},
			{"toggle status", "POST", path("1/conversations/%d/toggle_status", conv.ID), aliceToken, map[string]any{"status": "closed"}, errorBody{400, "invalid", "status"}},
		} {
			st, raw := e.call(tc.method, tc.path, tc.token, tc.body, nil)
			if d := cmp.Diff(tc.want, failure(t, st, raw)); d != "" {
				t.Errorf("%s: %s (-want +got):\n%s", tc.name, raw, d)
			}
		}
		if d := cmp.Diff(before, e.events(1)); d != "" {
			t.Errorf("refused calls emitted events (-want +got):\n%s", d)
		}
		var v inbox.ConversationView
		e.must("GET", path("1/conversations/%d", conv.ID), aliceToken, nil, &v)
		if v.AssigneeID != nil || len(v.Labels) != 0 || v.Status != inbox.StatusOpen || v.TeamID != nil {
			t.Errorf("refused calls changed the conversation: %+v", v)
		}
		var msgs inbox.MessageList
		e.must("GET", path("1/conversations/%d/messages", conv.ID), adminToken, nil, &msgs) // an admin reads every account
		if len(msgs.Payload) != 0 {
			t.Errorf("refused messages were stored: %+v", msgs.Payload)
		}
	})
}

// TestAssignTeam: a conversation is assigned to a team of its account
// (answered with the team), listed by team, and cleared with null; the
// webhook payload names the change.
func TestAssignTeam(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		_, _, source := e.apiContact("Ada", "")
		var conv inbox.ConversationView
		e.must("POST", path("1/conversations"), aliceToken, map[string]any{"source_id": source}, &conv)
		var team inbox.TeamView
		e.must("POST", path("1/conversations/%d/assignments", conv.ID), aliceToken, map[string]any{"team_id": "1"}, &team)
		if d := cmp.Diff([]any{int64(1), "support", true}, []any{team.ID, team.Name, team.IsMember}); d != "" {
			t.Errorf("assigned team (-want +got):\n%s", d)
		}
		ids := func(query string) []int64 {
			var l inbox.ConversationList
			e.must("GET", path("1/conversations%s", query), aliceToken, nil, &l)
			out := []int64{}
			for _, c := range l.Data.Payload {
				out = append(out, c.ID)
			}
			return out
		}
		if d := cmp.Diff([]int64{conv.ID}, ids("?team_id=1")); d != "" {
			t.Errorf("team 1 (-want +got):\n%s", d)
		}
		if d := cmp.Diff([]int64{}, ids("?team_id=2")); d != "" {
			t.Errorf("team 2 (-want +got):\n%s", d)
		}
		if st, raw := e.call("POST", path("1/conversations/%d/assignments", conv.ID), aliceToken, map[string]any{"team_id": nil}, nil); st != http.StatusOK || string(raw) != "null\n" {
			t.Errorf("clearing the team: %d %s", st, raw)
		}
		if d := cmp.Diff([]int64{}, ids("?team_id=1")); d != "" {
			t.Errorf("team 1 after clearing (-want +got):\n%s", d)
		}
		e.deliverAll()
		var changes []string
		for _, r := range e.hook.requests() {
			var b struct {
				Event   string                       `json:"event"`
				Changed []map[string]json.RawMessage `json:"changed_attributes"`
			}
			if err := json.Unmarshal(r.body, &b); err != nil {
				t.Fatal(err)
			}
			if b.Event == inbox.EventConversationUpdated {
				changes = append(changes, string(b.Changed[0]["team_id"]))
			}
		}
		want := []string{`{"current_value":1,"previous_value":null}`, `{"current_value":null,"previous_value":1}`}
		if d := cmp.Diff(want, changes); d != "" {
			t.Errorf("conversation_updated team changes (-want +got):\n%s", d)
		}
	})
}
