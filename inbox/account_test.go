package inbox_test

import (
	"net/http"
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
