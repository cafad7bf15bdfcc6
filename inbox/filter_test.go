package inbox_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/inbox"
)

type rule = map[string]any

func or() *string { s := "or"; return &s }

// TestFilters: Chatwoot filter payloads select contacts and conversations
// by each operator, joined by and/or; a bad rule is refused naming it.
func TestFilters(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		var iv inbox.InboxView
		e.must("POST", path("1/inboxes"), aliceToken, map[string]any{"name": "site", "channel": map[string]any{"type": "api"}}, &iv)
		sources := map[string]string{}
		for _, c := range []map[string]any{
			{"name": "Ada", "email": "ada@example.com", "identifier": "100%_off"},
			{"name": "Grace", "email": "grace@navy.mil"},
			{"name": "Linus"},
		} {
			c["inbox_id"] = iv.ID
			var out inbox.ContactCreated
			e.must("POST", path("1/contacts"), aliceToken, c, &out)
			sources[c["name"].(string)] = out.Payload.ContactInbox.SourceID
		}
		conv := map[string]int64{}
		for _, n := range []string{"Ada", "Grace", "Linus"} {
			var v inbox.ConversationView
			e.must("POST", path("1/conversations"), aliceToken, map[string]any{"source_id": sources[n]}, &v)
			conv[n] = v.ID
		}
		e.must("POST", path("1/conversations/%d/labels", conv["Ada"]), aliceToken, map[string]any{"labels": []string{"vip"}}, nil)
		e.must("POST", path("1/conversations/%d/labels", conv["Grace"]), aliceToken, map[string]any{"labels": []string{"billing"}}, nil)
		e.must("POST", path("1/conversations/%d/assignments", conv["Grace"]), aliceToken, map[string]any{"assignee_id": e.agentID(1, "alice")}, nil)
		e.must("POST", path("1/conversations/%d/toggle_status", conv["Linus"]), aliceToken, map[string]string{"status": "resolved"}, nil)

		contacts := func(rules []rule) []string {
			var l inbox.ContactList
			e.must("POST", path("1/contacts/filter"), aliceToken, map[string]any{"payload": rules}, &l)
			out := []string{}
			for _, c := range l.Payload {
				out = append(out, c.Name)
			}
			return out
		}
		for _, tc := range []struct {
			name  string
			rules []rule
			want  []string
		}{
			{"equal_to ignores case", []rule{{"attribute_key": "name", "filter_operator": "equal_to", "values": []string{"ADA"}}}, []string{"Ada"}},
			{"not_equal_to", []rule{{"attribute_key": "name", "filter_operator": "not_equal_to", "values": []string{"ada"}}}, []string{"Grace", "Linus"}},
			{"contains takes % and _ literally", []rule{{"attribute_key": "identifier", "filter_operator": "contains", "values": []string{"0%_"}}}, []string{"Ada"}},
			{"contains no wildcard", []rule{{"attribute_key": "identifier", "filter_operator": "contains", "values": []string{"0_%"}}}, []string{}},
			{"does_not_contain", []rule{{"attribute_key": "email", "filter_operator": "does_not_contain", "values": []string{"example"}}}, []string{"Grace", "Linus"}},
			{"is_present", []rule{{"attribute_key": "email", "filter_operator": "is_present"}}, []string{"Ada", "Grace"}},
			{"is_not_present", []rule{{"attribute_key": "email", "filter_operator": "is_not_present"}}, []string{"Linus"}},
			{"and", []rule{
				{"attribute_key": "email", "filter_operator": "is_present"},
				{"attribute_key": "name", "filter_operator": "contains", "values": []string{"a"}},
			}, []string{"Ada", "Grace"}},
			{"or", []rule{
				{"attribute_key": "name", "filter_operator": "equal_to", "values": []string{"linus"}, "query_operator": or()},
				{"attribute_key": "email", "filter_operator": "contains", "values": []string{"navy"}},
			}, []string{"Grace", "Linus"}},
		} {
			got := contacts(tc.rules)
			if d := cmp.Diff(tc.want, sortedNames(got)); d != "" {
				t.Errorf("contacts, %s (-want +got):\n%s", tc.name, d)
			}
		}

		conversations := func(rules []rule) []string {
			var l struct {
				Payload []inbox.ConversationView `json:"payload"`
			}
			e.must("POST", path("1/conversations/filter"), aliceToken, map[string]any{"payload": rules}, &l)
			out := []string{}
			for _, c := range l.Payload {
				out = append(out, c.Meta.Sender.Name)
			}
			return sortedNames(out)
		}
		for _, tc := range []struct {
			name  string
			rules []rule
			want  []string
		}{
			{"status", []rule{{"attribute_key": "status", "filter_operator": "equal_to", "values": []string{"resolved"}}}, []string{"Linus"}},
			{"label", []rule{{"attribute_key": "labels", "filter_operator": "equal_to", "values": []string{"vip", "billing"}}}, []string{"Ada", "Grace"}},
			{"without a label", []rule{{"attribute_key": "labels", "filter_operator": "not_equal_to", "values": []string{"vip"}}}, []string{"Grace", "Linus"}},
			{"any label", []rule{{"attribute_key": "labels", "filter_operator": "is_present"}}, []string{"Ada", "Grace"}},
			{"no label", []rule{{"attribute_key": "labels", "filter_operator": "is_not_present"}}, []string{"Linus"}},
			{"assignee as Chatwoot's dashboard sends it", []rule{{"attribute_key": "assignee_id", "filter_operator": "equal_to",
				"values": []map[string]any{{"id": e.agentID(1, "alice"), "name": "alice"}}}}, []string{"Grace"}},
			{"unassigned", []rule{{"attribute_key": "assignee_id", "filter_operator": "is_not_present"}}, []string{"Ada", "Linus"}},
			{"not this conversation", []rule{{"attribute_key": "display_id", "filter_operator": "not_equal_to", "values": []int64{conv["Ada"]}}}, []string{"Grace", "Linus"}},
		} {
			if d := cmp.Diff(tc.want, conversations(tc.rules)); d != "" {
				t.Errorf("conversations, %s (-want +got):\n%s", tc.name, d)
			}
		}

		for _, tc := range []struct {
			name, path string
			rules      []rule
			field      string
		}{
			{"unknown attribute", "1/contacts/filter", []rule{{"attribute_key": "age", "filter_operator": "equal_to", "values": []int{3}}}, "payload[0].attribute_key"},
			{"unknown operator", "1/contacts/filter", []rule{{"attribute_key": "name", "filter_operator": "starts_with", "values": []string{"A"}}}, "payload[0].filter_operator"},
			{"no values", "1/contacts/filter", []rule{{"attribute_key": "name", "filter_operator": "equal_to"}}, "payload[0].values"},
			{"id not a number", "1/conversations/filter", []rule{{"attribute_key": "inbox_id", "filter_operator": "equal_to", "values": []string{"one"}}}, "payload[0].values[0]"},
			{"contains on an id", "1/conversations/filter", []rule{{"attribute_key": "team_id", "filter_operator": "contains", "values": []int{1}}}, "payload[0].filter_operator"},
			{"labels greater than", "1/conversations/filter", []rule{{"attribute_key": "labels", "filter_operator": "is_greater_than", "values": []int{1}}}, "payload[0].filter_operator"},
			{"query_operator", "1/conversations/filter", []rule{
				{"attribute_key": "status", "filter_operator": "is_present", "query_operator": "xor"},
				{"attribute_key": "status", "filter_operator": "is_present"},
			}, "payload[0].query_operator"},
		} {
			st, raw := e.call("POST", path("%s", tc.path), aliceToken, map[string]any{"payload": tc.rules}, nil)
			if d := cmp.Diff(errorBody{400, "invalid", tc.field}, failure(t, st, raw)); d != "" {
				t.Errorf("%s: %s (-want +got):\n%s", tc.name, raw, d)
			}
		}
	})
}

func sortedNames(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	if out == nil {
		out = []string{}
	}
	return out
}
