package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store/storetest"
)

// TestCustomerIDsAreEncoded: a PSID with JSON's special characters is
// stored as data in the contact's attributes, never as JSON syntax.
func TestCustomerIDsAreEncoded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		for _, psid := range []string{`x"},"injected":{"a":"1`, `back\slash`, "tab\there", `quote"d`} {
			h.customerSays(psid, "hi")
			var raw string
			if err := h.srv.DB().Reader().QueryRow(`SELECT additional_attributes FROM contacts WHERE identifier = $1`, psid).Scan(&raw); err != nil {
				t.Fatalf("contact of %q: %v", psid, err)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(raw), &got); err != nil {
				t.Fatalf("attributes of %q are not JSON: %v: %s", psid, err, raw)
			}
			want := map[string]any{"social_profiles": map[string]any{"facebook": psid}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("attributes of %q (-want +got):\n%s", psid, diff)
			}
			if n := h.count(`SELECT count(*) FROM conversations WHERE psid = $1`, psid); n != 1 {
				t.Errorf("conversations of %q = %d, want 1", psid, n)
			}
		}
		if st, _ := h.api(http.MethodGet, "/conversations", nil); st != 200 {
			t.Errorf("list conversations = %d", st)
		}
	})
}

// TestBadWebhookItemsAreDropped: items with absurd times or with what a
// store cannot hold (NUL, invalid UTF-8, a 500 KB mid) are acknowledged,
// dropped and counted; the valid message beside them is stored, on every
// delivery, on both stores.
func TestBadWebhookItemsAreDropped(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		item := func(psid, ts, message string) string {
			return `{"sender":{"id":"` + psid + `"},"recipient":{"id":"1001"},"timestamp":` + ts + `,"message":` + message + `}`
		}
		bad := []string{
			item("7301", "253402300801000", `{"mid":"m_y10k","text":"x"}`),
			item("7301", "1e16", `{"mid":"m_1e16","text":"x"}`),
			item("7301", `"NaN"`, `{"mid":"m_nan","text":"x"}`),
			item("7301", "1e30", `{"mid":"m_1e30","text":"x"}`),
			item("7301", "1700000000000", `{"mid":"m_nul","text":"a\u0000b"}`),
			item("73\\u000001", "1700000000000", `{"mid":"m_nulpsid","text":"x"}`),
			item("7301", "1700000000000", "{\"mid\":\"m_utf8\",\"text\":\"\xff\xfe\"}"),
			item("7301", "1700000000000", `{"mid":"`+strings.Repeat("m", 500<<10)+`","text":"x"}`),
		}
		good := item("7302", "1700000000000", `{"mid":"m_good","text":"fine"}`)
		body := []byte(`{"object":"page","entry":[{"id":"1001","time":1e30,"messaging":[` + strings.Join(bad, ",") + `,` + good + `]}]}`)
		for delivery := 1; delivery <= 2; delivery++ {
			status, resp := h.postWebhook(body, messenger.SignatureHeader(ourSecret, body))
			if status != 200 {
				t.Fatalf("delivery %d = %d %s, want 200", delivery, status, resp)
			}
		}
		if n := h.count(`SELECT count(*) FROM webhook_events`); n != 1 {
			t.Errorf("stored events = %d, want the good message only", n)
		}
		if n := h.count(`SELECT count(*) FROM threads WHERE psid = '7302'`); n != 1 {
			t.Errorf("the good message's thread was not stored")
		}
		if n := h.count(`SELECT count(*) FROM threads WHERE psid <> '7302'`); n != 0 {
			t.Errorf("%d threads stored from dropped items", n)
		}
		if n := testutil.ToFloat64(h.srv.Metrics().WebhookEvents.WithLabelValues("unknown", "malformed")); n != float64(2*len(bad)) {
			t.Errorf("malformed items counted = %v, want %d", n, 2*len(bad))
		}
	})
}

// TestBadInputIsRefusedAtTheEdge: trailing data, NUL, invalid UTF-8 and
// oversize values in paths, queries and bodies are a 400 naming the field,
// and change nothing, on both stores.
func TestBadInputIsRefusedAtTheEdge(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		h.customerSays("7401", "hi")
		long := strings.Repeat("9", 2048)
		type errBody struct {
			Error struct{ Code, Field, Message string }
		}
		check := func(name string, status int, body []byte, field string) {
			t.Helper()
			var e errBody
			if status != 400 || json.Unmarshal(body, &e) != nil || e.Error.Field != field {
				t.Errorf("%s = %d %s, want 400 naming %q", name, status, body, field)
			}
		}
		before := func() [4]int {
			return [4]int{h.count(`SELECT count(*) FROM webhook_events`), h.count(`SELECT count(*) FROM interventions`),
				h.count(`SELECT count(*) FROM inboxes`), h.count(`SELECT count(*) FROM contacts`)}
		}
		was := before()

		// Webhooks: a valid envelope followed by more bytes.
		for _, tail := range []string{`{"object":"page","entry":[]}`, `garbage`} {
			body := []byte(`{"object":"page","entry":[{"id":"1001","messaging":[{"sender":{"id":"7402"},"recipient":{"id":"1001"},"timestamp":1700000000000,"message":{"mid":"m_tail","text":"x"}}]}]}` + tail)
			st, resp := h.postWebhook(body, messenger.SignatureHeader(ourSecret, body))
			check("webhook + "+tail, st, resp, "body")
		}
		// Paths and queries.
		st, resp := h.do(http.MethodGet, "/1.0/threads/"+pageID+"/%00", agentToken, nil)
		check("thread %00", st, resp, "psid")
		st, resp = h.do(http.MethodGet, "/1.0/threads/"+pageID+"/%FF", agentToken, nil)
		check("thread %FF", st, resp, "psid")
		st, resp = h.do(http.MethodGet, "/1.0/threads/"+pageID+"/"+long, agentToken, nil)
		check("thread 2 KB psid", st, resp, "psid")
		st, resp = h.do(http.MethodGet, "/1.0/interventions?identity_foreign_id=%00", agentToken, nil)
		check("interventions ?identity_foreign_id=%00", st, resp, "identity_foreign_id")
		// Engage's refusals, the router's too, have Engage's body.
		st, resp = h.do(http.MethodPost, "/1.0/bots/handover?access_token="+botAPIKey+"&identity_foreign_id=74%0001&from=bot&to=agent&type=messenger", "", nil)
		if want := `{"status":400,"message":"identity_foreign_id contains a NUL character"}`; st != 400 || strings.TrimSpace(string(resp)) != want {
			t.Errorf("engage NUL identity = %d %s, want 400 %s", st, resp, want)
		}
		// Bodies.
		bodies := []struct {
			name, path, body, field string
		}{
			{"intervention NUL identity", "/1.0/interventions", `{"identity_foreign_id":"74\u000001"}`, "identity_foreign_id"},
			{"intervention trailing object", "/1.0/interventions", `{"identity_foreign_id":"7401"}{"x":1}`, "body"},
			{"intervention trailing garbage", "/1.0/interventions", `{"identity_foreign_id":"7401"} x`, "body"},
			{"inbox NUL name", "/api/v1/accounts/1/inboxes", `{"name":"a\u0000","channel":{"type":"api"}}`, "name"},
			{"inbox invalid UTF-8 name", "/api/v1/accounts/1/inboxes", "{\"name\":\"\xff\",\"channel\":{\"type\":\"api\"}}", "name"},
			{"inbox trailing data", "/api/v1/accounts/1/inboxes", `{"name":"API","channel":{"type":"api"}}{}`, "body"},
			{"contact long source id", "/api/v1/accounts/1/contacts", `{"inbox_id":1,"source_id":"` + long + `"}`, "source_id"},
		}
		for _, tt := range bodies {
			req, _ := http.NewRequest(http.MethodPost, h.url+tt.path, strings.NewReader(tt.body))
			req.Header.Set("Authorization", "Bearer "+agentToken)
			req.Header.Set("api_access_token", agentToken)
			req.Header.Set("Auth-Api-Token", botAPIKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			check(tt.name, resp.StatusCode, body, tt.field)
		}
		// The Lexer API keeps its seed's error shape {"error": message}.
		st, lx := h.lexer("claim", "1", botAPIKey, `{"object_id":"m\u0000","account_id":"1001"}`)
		if st != 400 || !strings.Contains(lx, "NUL") {
			t.Errorf("lexer NUL object id = %d %s, want 400", st, lx)
		}
		if now := before(); now != was {
			t.Errorf("rows (events, interventions, inboxes, contacts) %v → %v: refused input changed something", was, now)
		}
	})
}

// TestAssigneesBelongToTheAccount: a conversation can be assigned only to
// the account's own agents; another client's agent or a global admin
// answers exactly as an id that does not exist.
func TestAssigneesBelongToTheAccount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		h.cfg.Users = append(h.cfg.Users,
			config.User{Name: "agent2", Role: "agent", Token: "agent2-token-0123456789", ClientID: 2},
			config.User{Name: "root", Role: "admin", Token: "admin-token-0123456789"})
		if err := h.cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		h.restart()
		h.customerSays("7501", "hi")
		_, list := h.api(http.MethodGet, "/conversations?status=pending", nil)
		convs := list["data"].(map[string]any)["payload"].([]any)
		if len(convs) != 1 {
			t.Fatalf("conversations = %v", list)
		}
		convID := int(convs[0].(map[string]any)["id"].(float64))
		path := "/conversations/" + strconv.Itoa(convID) + "/assignments"
		var ids []int
		rows, err := h.srv.DB().Reader().Query(`SELECT id FROM agents WHERE name IN ('agent2', 'root') ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id int
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if len(ids) != 2 {
			t.Fatalf("agent ids of agent2 and root = %v", ids)
		}
		_, unknown := h.api(http.MethodPost, path, map[string]any{"assignee_id": 9999})
		for _, id := range ids {
			st, got := h.api(http.MethodPost, path, map[string]any{"assignee_id": id})
			if st != 400 {
				t.Errorf("assign another account's user %d = %d %v, want 400", id, st, got)
				continue
			}
			e, u := got["error"].(map[string]any), unknown["error"].(map[string]any)
			if e["field"] != "assignee_id" || strings.ReplaceAll(e["message"].(string), strconv.Itoa(id), "N") != strings.ReplaceAll(u["message"].(string), "9999", "N") {
				t.Errorf("assign user %d = %v; unknown id = %v: they must read the same", id, got, unknown)
			}
		}
		if st, got := h.api(http.MethodPost, path, map[string]any{"assignee_id": 1}); st != 200 || got["name"] != "alice" {
			t.Errorf("assign the account's agent = %d %v, want alice", st, got)
		}
		if n := h.count(`SELECT count(*) FROM conversations WHERE assignee_id IS NOT NULL AND assignee_id <> 1`); n != 0 {
			t.Errorf("%d conversations assigned outside the account", n)
		}
	})
}
