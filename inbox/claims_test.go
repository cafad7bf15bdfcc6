package inbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/inbox"
	"github.com/handoverd/handoverd/messenger"
)

// lexer posts a Lexer claim or echo body as token and returns the status
// and the decoded answer.
func (e *env) lexer(kind, client, token string, body any) (int, map[string]string) {
	e.t.Helper()
	var raw []byte
	if s, ok := body.(string); ok {
		raw = []byte(s)
	} else {
		raw, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest("POST", e.url+"/api/clients/"+client+"/bots/objects/"+kind, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Auth-Api-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]string{}
	if err := json.Unmarshal(b, &out); err != nil {
		e.t.Fatalf("Lexer answer is not a JSON object: %s", b)
	}
	return resp.StatusCode, out
}

func claim(mid string, at time.Time) map[string]any {
	return map[string]any{"object_id": mid, "published_at": at.Unix(), "source": "facebook", "state": "closed", "account_id": pageID}
}

// claimState is what a message shows of the bots' claims and echoes.
type claimState struct {
	Content   string
	ClaimedBy string
	State     string
	Automated bool
	Surfaced  bool
}

func (e *env) claimStates(conv int64) []claimState {
	e.t.Helper()
	var list inbox.MessageList
	e.must("GET", path("1/conversations/%d/messages", conv), aliceToken, nil, &list)
	out := []claimState{}
	for _, m := range list.Payload {
		if m.MessageType == 2 {
			continue
		}
		out = append(out, claimState{m.Content, m.ClaimedBy, m.State, m.Automated, m.Surfaced})
	}
	return out
}

// TestClaims: a bot claims (closes) the customer messages it handles,
// before or after they land, and echoes the ones it sent; once a Page's
// bot claims, an unclaimed message surfaces to the agents after the grace
// period and opens the conversation.
func TestClaims(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.ingest(e.customer(pageID, "psid-c", "m.1", "first"))
		conv := e.conversationOf(pageID, "psid-c")
		if st, body := e.lexer("claim", "1", botToken, claim("m.1", e.clock.Now())); st != http.StatusCreated || body["status"] != "ok" {
			t.Fatalf("claim: %d %v", st, body)
		}
		// A repeat changes nothing.
		if st, _ := e.lexer("claim", "1", botToken, claim("m.1", e.clock.Now())); st != http.StatusCreated {
			t.Fatalf("repeated claim: %d", st)
		}
		// A claim may come before its message.
		if st, _ := e.lexer("claim", "1", botToken, claim("m.3", e.clock.Now())); st != http.StatusCreated {
			t.Fatalf("early claim: %d", st)
		}
		e.ingest(e.customer(pageID, "psid-c", "m.2", "unclaimed"))
		e.ingest(e.customer(pageID, "psid-c", "m.3", "claimed early"))
		e.clock.Advance(time.Second)
		e.ingest(messenger.Event{Kind: messenger.KindEcho, Channel: messenger.ChannelStandby, PageID: pageID, PSID: "psid-c", Time: e.clock.Now(),
			Message: &messenger.Message{MID: "m.echo", Text: "bot reply", IsEcho: true, AppID: botApp}})
		body := map[string]any{"object_id": "m.echo", "published_at": e.clock.Now().Format(time.RFC3339), "source": "facebook", "account_id": pageID}
		if st, _ := e.lexer("echo", "1", botToken, body); st != http.StatusCreated {
			t.Fatalf("echo: %d", st)
		}

		// Within the grace period nothing surfaces.
		if n, err := e.in.SurfaceDue(ctx); err != nil || n != 0 {
			t.Fatalf("SurfaceDue within the grace: %d, %v", n, err)
		}
		e.clock.Advance(6 * time.Second)
		if n, err := e.in.SurfaceDue(ctx); err != nil || n != 1 {
			t.Fatalf("SurfaceDue after the grace: %d, %v", n, err)
		}
		want := []claimState{
			{Content: "first", ClaimedBy: "support-bot", State: "closed"},
			{Content: "unclaimed", Surfaced: true},
			{Content: "claimed early", ClaimedBy: "support-bot", State: "closed"},
			{Content: "bot reply", Automated: true},
		}
		if d := cmp.Diff(want, e.claimStates(conv)); d != "" {
			t.Errorf("messages (-want +got):\n%s", d)
		}
		var v inbox.ConversationView
		e.must("GET", path("1/conversations/%d", conv), aliceToken, nil, &v)
		if v.Status != inbox.StatusOpen {
			t.Errorf("status after surfacing = %q, want open", v.Status)
		}
		var list inbox.MessageList
		e.must("GET", path("1/conversations/%d/messages", conv), aliceToken, nil, &list)
		last := list.Payload[len(list.Payload)-1]
		if d := cmp.Diff("The bot did not claim the customer's message within 5s: in the agents' queue", last.Content); d != "" {
			t.Errorf("last activity (-want +got):\n%s", d)
		}
		if n, err := e.in.SurfaceDue(ctx); err != nil || n != 0 {
			t.Errorf("SurfaceDue again: %d, %v", n, err)
		}
	})
}

// TestClaimRefusals: the Lexer API answers Lexer's bodies; bad calls
// record nothing.
func TestClaimRefusals(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		now := e.clock.Now()
		without := func(field string) map[string]any {
			b := claim("m.x", now)
			delete(b, field)
			return b
		}
		with := func(field string, v any) map[string]any {
			b := claim("m.x", now)
			b[field] = v
			return b
		}
		type answer struct {
			Status int
			Body   map[string]string
		}
		for _, tc := range []struct {
			name, kind, client, token string
			body                      any
			want                      answer
		}{
			{"no token", "claim", "1", "", claim("m.x", now), answer{401, map[string]string{"error": "missing API token"}}},
			{"agent token", "claim", "1", aliceToken, claim("m.x", now), answer{403, nil}},
			{"other client", "claim", "2", botToken, claim("m.x", now), answer{403, map[string]string{"error": "this token may not act for client 2"}}},
			{"malformed", "claim", "1", botToken, `{"object_id":`, answer{400, nil}},
			{"object_id missing", "claim", "1", botToken, without("object_id"), answer{422, map[string]string{"error": "object_id is missing"}}},
			{"state missing", "claim", "1", botToken, without("state"), answer{422, map[string]string{"error": "state is missing"}}},
			{"state open", "claim", "1", botToken, with("state", "open"), answer{422, map[string]string{"error": "state does not have a valid value"}}},
			{"source", "claim", "1", botToken, with("source", "telegram"), answer{422, map[string]string{"error": "source does not have a valid value"}}},
			{"published_at", "claim", "1", botToken, with("published_at", "yesterday"), answer{422, map[string]string{"error": "published_at does not have a valid value"}}},
			{"object_id not a string", "claim", "1", botToken, with("object_id", true), answer{422, map[string]string{"error": "object_id does not have a valid value"}}},
			{"unknown page", "claim", "1", botToken, with("account_id", "9999"), answer{400, map[string]string{"status": "400 Invalid Account", "error": "Cannot find an integrated account: 9999"}}},
			{"other client's page", "echo", "1", botToken, with("account_id", otherPage), answer{400, map[string]string{"status": "400 Invalid Account", "error": "Cannot find an integrated account: " + otherPage}}},
		} {
			st, body := e.lexer(tc.kind, tc.client, tc.token, tc.body)
			got := answer{st, body}
			if tc.want.Body == nil { // only the status is specified
				got.Body = nil
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("%s (-want +got):\n%s", tc.name, d)
			}
		}
		var n int
		if err := e.db.Reader().QueryRowContext(context.Background(), `SELECT count(*) FROM bot_objects`).Scan(&n); err != nil || n != 0 {
			t.Errorf("refused calls stored %d bot objects (%v)", n, err)
		}
	})
}
