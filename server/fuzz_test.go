package server_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store/storetest"
)

// bothStores starts a handoverd on SQLite and one on PostgreSQL.
func bothStores(f *testing.F) []*harness {
	return []*harness{newHarness(f, storetest.SQLite(f), "bot"), newHarness(f, storetest.Postgres(f), "bot")}
}

// useT makes the harnesses' helpers report on t (the input being tried,
// or f again once it is done).
func useT(_ *testing.F, t testing.TB, hs []*harness) {
	for _, h := range hs {
		h.t = t
	}
}

// FuzzWebhookBothStores: any signed webhook body gets the same answer
// from both stores, never a 5xx; every message it accepts for the Page is
// stored, with its PSID byte for byte, in both.
func FuzzWebhookBothStores(f *testing.F) {
	files, err := filepath.Glob("../messenger/testdata/*.json")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"object":"page","entry":[{"id":"1001","messaging":[{"sender":{"id":"8001"},"recipient":{"id":"1001"},"timestamp":1e16,"message":{"mid":"m_f1","text":"x"}},{"sender":{"id":"8002"},"recipient":{"id":"1001"},"timestamp":1700000000000,"message":{"mid":"m_f2","text":"a\u0000"}}]}]}`))
	hs := bothStores(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		useT(f, t, hs)
		defer useT(f, f, hs)
		var statuses []int
		for _, h := range hs {
			st, resp := h.postWebhook(body, messenger.SignatureHeader(ourSecret, body))
			if st >= 500 {
				t.Fatalf("%s: %d %s", h.backend.Name, st, resp)
			}
			statuses = append(statuses, st)
		}
		if statuses[0] != statuses[1] {
			t.Fatalf("SQLite answered %d, PostgreSQL %d", statuses[0], statuses[1])
		}
		if statuses[0] != 200 {
			return
		}
		b, err := messenger.ParseWebhook(body)
		if err != nil {
			t.Fatalf("accepted a body ParseWebhook refuses: %v", err)
		}
		for _, ev := range b.Events {
			if ev.PageID != pageID || ev.Kind != messenger.KindMessage || b.Object != "page" {
				continue
			}
			for _, h := range hs {
				if n := h.count(`SELECT count(*) FROM threads WHERE page_id = $1 AND psid = $2`, pageID, ev.PSID); n != 1 {
					t.Fatalf("%s: the accepted message's thread %q is not stored (%d)", h.backend.Name, ev.PSID, n)
				}
			}
		}
	})
}

// FuzzAPIBothStores: any body on the JSON APIs is never a 5xx on either
// store; where the answer cannot depend on generated ids, both stores give
// the same one.
func FuzzAPIBothStores(f *testing.F) {
	routes := []struct {
		path string
		same bool // the answer does not depend on ids the stores generate
	}{
		{"/api/v1/accounts/1/inboxes", true},
		{"/api/v1/accounts/1/contacts", false},
		{"/api/v1/accounts/1/conversations", false},
		{"/api/v1/accounts/1/conversations/1/messages", false},
		{"/api/v1/accounts/1/conversations/1/assignments", false},
		{"/api/v1/accounts/1/conversations/1/toggle_status", false},
		{"/1.0/interventions", true},
		{"/api/clients/1/bots/objects/claim", true},
		{"/api/clients/1/bots/objects/echo", true},
		{"/1.0/handovers", true},
	}
	seeds := []string{
		`{"name":"API","channel":{"type":"api"}}`,
		`{"inbox_id":2,"name":"Ann","email":"a@b.c"}`,
		`{"source_id":"x","status":"open"}`,
		`{"content":"hi","message_type":"outgoing"}`,
		`{"assignee_id":1}`,
		`{"status":"resolved"}`,
		`{"identity_foreign_id":"nobody"}`,
		`{"object_id":"m_1","published_at":"2017-08-01t05:29:44Z","source":"facebook","state":"closed","account_id":"1001"}`,
		`{"object_id":"m_1","published_at":1e30,"source":"facebook","account_id":"1001"}`,
		`{"identity_foreign_id":"nobody","to":"agent","mode":"offer","reason":"customer_asked","metadata":{"a":1,"b":"\u0000"}}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
		f.Add(uint8(i), []byte(s+`{}`))
	}
	hs := bothStores(f)
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		useT(f, t, hs)
		defer useT(f, f, hs)
		r := routes[int(which)%len(routes)]
		var statuses []int
		for _, h := range hs {
			req, err := http.NewRequest(http.MethodPost, h.url+r.path, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("api_access_token", agentToken)
			if strings.HasPrefix(r.path, "/api/clients/") {
				req.Header.Set("Auth-Api-Token", botAPIKey)
			} else {
				req.Header.Set("Authorization", "Bearer "+agentToken)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				t.Fatalf("%s: POST %s %q = %d", h.backend.Name, r.path, body, resp.StatusCode)
			}
			statuses = append(statuses, resp.StatusCode)
		}
		// The Lexer's rate limit runs on the wall clock: 429 may differ.
		if r.same && statuses[0] != statuses[1] && statuses[0] != 429 && statuses[1] != 429 {
			t.Fatalf("POST %s %q: SQLite answered %d, PostgreSQL %d", r.path, body, statuses[0], statuses[1])
		}
	})
}
