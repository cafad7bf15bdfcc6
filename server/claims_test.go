package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store/storetest"
)

// lexer posts to the Chatbot User API as the bot.
func (h *harness) lexer(action, client, token, body string) (int, string) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.url+"/api/clients/"+client+"/bots/objects/"+action, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Auth-Api-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, strings.TrimSpace(b.String())
}

func claimBody(mid string) string {
	return fmt.Sprintf(`{"object_id":%q,"published_at":"2017-08-01t05:29:44Z","source":"facebook","state":"closed","account_id":%q}`, mid, pageID)
}

func echoBody(mid string) string {
	return fmt.Sprintf(`{"object_id":%q,"published_at":1458692752478,"source":"facebook","account_id":%q}`, mid, pageID)
}

// TestLexerResponseCodes: each row of the seed's response-code table, with
// the seed's bodies (422 and 400 where the seed says 500).
func TestLexerResponseCodes(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t), "bot")
	mid := h.customerSays("5501", "hello, world!")
	tests := []struct {
		name, action, client, token, body string
		status                            int
		want                              string
	}{
		{"201 claim", "claim", "1", botAPIKey, claimBody(mid), 201, `{"status":"ok"}`},
		{"201 echo", "echo", "1", botAPIKey, echoBody("m_unknown_yet"), 201, `{"status":"ok"}`},
		{"400 invalid account", "claim", "1", botAPIKey, strings.Replace(claimBody(mid), pageID, "12345", 1), 400,
			`{"status":"400 Invalid Account","error":"Cannot find an integrated account: 12345"}`},
		{"invalid JSON is JSON", "claim", "1", botAPIKey, `{"object_id":`, 400, `"error":`},
		{"object_id is missing", "claim", "1", botAPIKey, `{"published_at":1458692752478,"source":"facebook","state":"closed","account_id":"1001"}`, 422,
			`{"error":"object_id is missing"}`},
		{"published_at is missing", "echo", "1", botAPIKey, `{"object_id":"m","source":"facebook","account_id":"1001"}`, 422,
			`{"error":"published_at is missing"}`},
		{"state is missing", "claim", "1", botAPIKey, `{"object_id":"m","published_at":1,"source":"facebook","account_id":"1001"}`, 422,
			`{"error":"state is missing"}`},
		{"source not valid", "claim", "1", botAPIKey, strings.Replace(claimBody(mid), `"facebook"`, `"twitter"`, 1), 422,
			`{"error":"source does not have a valid value"}`},
		{"state not valid", "claim", "1", botAPIKey, strings.Replace(claimBody(mid), `"closed"`, `"open"`, 1), 422,
			`{"error":"state does not have a valid value"}`},
		{"published_at not valid", "claim", "1", botAPIKey, strings.Replace(claimBody(mid), `"2017-08-01t05:29:44Z"`, `"yesterday"`, 1), 422,
			`{"error":"published_at does not have a valid value"}`},
		{"no token", "claim", "1", "", claimBody(mid), 401, `"error":`},
		{"unknown token", "claim", "1", "no-such-token-0123456789", claimBody(mid), 401, `"error":`},
		{"agent token", "claim", "1", agentToken, claimBody(mid), 403, `"error":`},
		{"another client's path", "claim", "2", botAPIKey, claimBody(mid), 403, `"error":`},
		{"another client's page", "claim", "2", "other-client-token-0123", claimBody(mid), 400, `Cannot find an integrated account: 1001`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := h.lexer(tt.action, tt.client, tt.token, tt.body)
			if status != tt.status || !strings.Contains(body, tt.want) {
				t.Errorf("= %d %s, want %d %s", status, body, tt.status, tt.want)
			}
		})
	}
}

func TestLexerRateLimit(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t), "bot")
	h.cfg.Claims.RatePerSecond, h.cfg.Claims.Burst = 1, 2
	h.restart()
	var last int
	var retry string
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest(http.MethodPost, h.url+"/api/clients/1/bots/objects/echo", strings.NewReader(echoBody(fmt.Sprint("m", i))))
		req.Header.Set("Auth-Api-Token", botAPIKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		last, retry = resp.StatusCode, resp.Header.Get("Retry-After")
	}
	if last != 429 || retry == "" {
		t.Errorf("third call in a burst of 2 = %d (Retry-After %q), want 429 with Retry-After", last, retry)
	}
}

// message finds a conversation message by content via the inbox API.
func (h *harness) message(content string) map[string]any {
	h.t.Helper()
	for _, status := range []string{"all"} {
		_, list := h.api(http.MethodGet, "/conversations?status="+status, nil)
		for _, c := range list["data"].(map[string]any)["payload"].([]any) {
			id := int(c.(map[string]any)["id"].(float64))
			_, msgs := h.api(http.MethodGet, fmt.Sprintf("/conversations/%d/messages", id), nil)
			for _, m := range msgs["payload"].([]any) {
				if mm := m.(map[string]any); mm["content"] == content {
					return mm
				}
			}
		}
	}
	return nil
}

func (h *harness) conversationStatus(psid string) string {
	h.t.Helper()
	_, list := h.api(http.MethodGet, "/conversations?status=all", nil)
	for _, c := range list["data"].(map[string]any)["payload"].([]any) {
		if cm := c.(map[string]any); cm["psid"] == psid {
			return cm["status"].(string)
		}
	}
	return ""
}

func TestClaimsAndEchoes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		const psid = "5601"
		// Claim after the webhook.
		mid := h.customerSays(psid, "first")
		if st, body := h.lexer("claim", "1", botAPIKey, claimBody(mid)); st != 201 {
			t.Fatalf("claim = %d %s", st, body)
		}
		if m := h.message("first"); m["claimed_by"] != "support-bot" || m["state"] != "closed" {
			t.Errorf("claimed message = %v", m)
		}
		// Repeated claims answer 201 and change nothing more.
		for i := 0; i < 2; i++ {
			if st, _ := h.lexer("claim", "1", botAPIKey, claimBody(mid)); st != 201 {
				t.Errorf("repeat claim = %d", st)
			}
		}
		var objects, applied int
		_ = h.srv.DB().Reader().QueryRow(`SELECT count(*), count(applied_at) FROM bot_objects WHERE object_id = $1`, mid).Scan(&objects, &applied)
		if objects != 1 || applied != 1 {
			t.Errorf("repeated claims stored %d claims (%d applied), want 1", objects, applied)
		}
		if n := testutil.ToFloat64(h.srv.Metrics().Claims.WithLabelValues("claim", "applied")); n != 1 {
			t.Errorf("claims applied = %v, want 1", n)
		}

		// Echo before Meta's echo webhook: the bot says it will send "m_next".
		res, err := h.bot.Send(context.Background(), h.botPage(), sendText(psid, "automated answer"))
		if err != nil {
			t.Fatal(err)
		}
		// The echo call races the webhook: send it before flushing the webhook queue.
		if st, body := h.lexer("echo", "1", botAPIKey, echoBody(res.MessageID)); st != 201 {
			t.Fatalf("echo = %d %s", st, body)
		}
		h.flush()
		// Echo after the webhook.
		res2, err := h.bot.Send(context.Background(), h.botPage(), sendText(psid, "second automated answer"))
		if err != nil {
			t.Fatal(err)
		}
		h.flush()
		if st, _ := h.lexer("echo", "1", botAPIKey, echoBody(res2.MessageID)); st != 201 {
			t.Fatal("echo after webhook failed")
		}
		for _, text := range []string{"automated answer", "second automated answer"} {
			m := h.message(text)
			if m == nil || m["automated"] != true || m["sender"].(map[string]any)["type"] != "bot" {
				t.Errorf("%q = %v, want one automated bot message", text, m)
			}
		}
		var n int
		_ = h.srv.DB().Reader().QueryRow(`SELECT count(*) FROM inbox_messages WHERE message_type = 'outgoing'`).Scan(&n)
		if n != 2 {
			t.Errorf("outgoing messages = %d, want 2 (one per mid)", n)
		}
	})
}

// TestClaimBeforeWebhook: the bot claims a message before Meta's webhook
// for it arrives; the claim is kept and applied when the message lands.
func TestClaimBeforeWebhook(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		h.customerSays("5701", "setup") // the bot claims on this Page
		h.lexer("claim", "1", botAPIKey, claimBody(h.message("setup")["source_id"].(string)))
		// The bot claims a message whose webhook has not reached handoverd yet.
		const mid = "m_claimed_early"
		if st, _ := h.lexer("claim", "1", botAPIKey, claimBody(mid)); st != 201 {
			t.Fatal("early claim refused")
		}
		ts := h.clock.Now().UnixMilli()
		body := []byte(fmt.Sprintf(`{"object":"page","entry":[{"id":%q,"time":%d,"standby":[{"sender":{"id":"5701"},"recipient":{"id":%q},"timestamp":%d,"message":{"mid":%q,"text":"claimed before it landed"}}]}]}`,
			pageID, ts, pageID, ts, mid))
		if st, resp := h.postWebhook(body, messenger.SignatureHeader(ourSecret, body)); st != 200 {
			t.Fatalf("webhook = %d %s", st, resp)
		}
		m := h.message("claimed before it landed")
		if m == nil || m["claimed_by"] != "support-bot" {
			t.Fatalf("message = %v, want claimed", m)
		}
		h.clock.Advance(time.Minute)
		if n, err := h.srv.Inbox().SurfaceDue(context.Background()); err != nil || n != 0 {
			t.Errorf("surfaced %d (%v), want 0: the claim keeps it out", n, err)
		}
	})
}

// TestSilentBotSurfacesAfterGrace: when the bot stops claiming, the next
// customer message surfaces to the agents after the grace period; a claim
// within the grace keeps a message out for good.
func TestSilentBotSurfacesAfterGrace(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		const psid = "5801"
		h.lexer("claim", "1", botAPIKey, claimBody(h.customerSays(psid, "one")))
		// Claimed within the grace period: never surfaces.
		mid := h.customerSays(psid, "two")
		h.clock.Advance(2 * time.Second)
		h.lexer("claim", "1", botAPIKey, claimBody(mid))
		h.clock.Advance(time.Minute)
		if n, _ := h.srv.Inbox().SurfaceDue(context.Background()); n != 0 {
			t.Fatalf("surfaced %d messages, want 0", n)
		}
		if st := h.conversationStatus(psid); st != "pending" {
			t.Fatalf("status = %s, want pending (with the bot)", st)
		}
		// The bot goes silent: "three" waits the grace period, then surfaces.
		h.customerSays(psid, "three")
		h.clock.Advance(4 * time.Second)
		if n, _ := h.srv.Inbox().SurfaceDue(context.Background()); n != 0 {
			t.Fatalf("surfaced before the grace period ended")
		}
		h.clock.Advance(2 * time.Second)
		// The test's call and the background worker race; either surfaces it.
		if _, err := h.srv.Inbox().SurfaceDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the agents' queue", func() bool { return h.conversationStatus(psid) == "open" })
		if m := h.message("three"); m["surfaced"] != true {
			t.Errorf("message = %v, want surfaced", m)
		}
		// A late claim cannot pull it back out silently, but it is recorded.
		if st, _ := h.lexer("claim", "1", botAPIKey, claimBody(h.message("three")["source_id"].(string))); st != 201 {
			t.Error("late claim refused")
		}
	})
}
