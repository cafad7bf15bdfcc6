package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store/storetest"
)

type hstep struct {
	From, To handover.Owner
	Cause    handover.Cause
}

func hsteps(v handover.ThreadView) []hstep {
	var out []hstep
	for _, h := range v.History {
		out = append(out, hstep{h.From, h.To, h.Cause})
	}
	return out
}

// TestThreadLifecycle is the backbone's acceptance path, against the
// simulator over real HTTP with signed webhooks, on SQLite and PostgreSQL.
func TestThreadLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		const psid = "9001"

		// A customer writes to a Page whose default app is the bot: we see it on standby.
		h.customerSays(psid, "hello?")
		v, status := h.thread(psid)
		if status != http.StatusOK || v.Owner != handover.OwnerBot || v.OwnerAppID != botApp {
			t.Fatalf("after first message: status %d owner %q app %q, want bot %s", status, v.Owner, v.OwnerAppID, botApp)
		}

		// The bot passes control to our app.
		if err := h.bot.PassThreadControl(context.Background(), h.botPage(), psid, ourApp, "to agents"); err != nil {
			t.Fatalf("bot pass: %v", err)
		}
		h.flush()
		v, _ = h.thread(psid)
		if v.Owner != handover.OwnerAgent || v.OwnerAppID != ourApp {
			t.Fatalf("after pass: owner %q app %q, want agent", v.Owner, v.OwnerAppID)
		}
		if v.ExpiresAt == nil || !v.ExpiresAt.Equal(start.Add(24*time.Hour)) {
			t.Errorf("expires_at = %v, want %v", v.ExpiresAt, start.Add(24*time.Hour))
		}

		// The customer writes again: now on messaging, to us; nothing changes.
		h.clock.Advance(time.Minute)
		h.customerSays(psid, "still there?")

		// 24 h of inactivity → idle.
		h.clock.Advance(24 * time.Hour)
		if n, err := h.srv.Handover().ExpireIdle(context.Background()); err != nil || n != 1 {
			t.Fatalf("ExpireIdle = %d, %v; want 1", n, err)
		}
		v, _ = h.thread(psid)
		want := []hstep{
			{handover.OwnerIdle, handover.OwnerBot, handover.CauseCustomerMessage},
			{handover.OwnerBot, handover.OwnerAgent, handover.CausePass},
			{handover.OwnerAgent, handover.OwnerIdle, handover.CauseExpired},
		}
		if diff := cmp.Diff(want, hsteps(v)); diff != "" {
			t.Fatalf("history (-want +got):\n%s", diff)
		}
		if v.Owner != handover.OwnerIdle || v.ExpiresAt != nil {
			t.Errorf("owner %q expires %v, want idle, null", v.Owner, v.ExpiresAt)
		}
		if got := v.History[2].At; !got.Equal(start.Add(time.Minute + 24*time.Hour)) {
			t.Errorf("expired at %v, want 24 h after the last customer message", got)
		}

		// Restart handoverd: state and history are intact.
		before := v
		h.restart()
		after, _ := h.thread(psid)
		if diff := cmp.Diff(before, after); diff != "" {
			t.Errorf("thread changed across restart (-before +after):\n%s", diff)
		}
		if n := h.count(`SELECT count(*) FROM messages WHERE psid = $1`, psid); n != 2 {
			t.Errorf("messages stored = %d, want 2", n)
		}
	})
}

// TestRedeliveredWebhook delivers the same signed webhook twice: one
// message, one transition.
func TestRedeliveredWebhook(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		const psid = "9002"
		h.customerSays(psid, "hi")
		if err := h.bot.PassThreadControl(context.Background(), h.botPage(), psid, ourApp, ""); err != nil {
			t.Fatal(err)
		}
		h.flush()
		delivered := h.sim.Deliveries(ourApp)
		if len(delivered) != 2 {
			t.Fatalf("deliveries to our app = %d, want 2 (standby message, pass)", len(delivered))
		}
		for _, d := range delivered {
			h.sim.Deliver(ourApp, d.Body) // Meta redelivers
		}
		h.flush()
		v, _ := h.thread(psid)
		if len(v.History) != 2 {
			t.Errorf("history has %d transitions, want 2: %+v", len(v.History), v.History)
		}
		if n := h.count(`SELECT count(*) FROM messages WHERE psid = $1`, psid); n != 1 {
			t.Errorf("messages = %d, want 1", n)
		}
		m := h.srv.Metrics().WebhookEvents
		if got := testutil.ToFloat64(m.WithLabelValues("message", "duplicate")) + testutil.ToFloat64(m.WithLabelValues("pass_thread_control", "duplicate")); got != 2 {
			t.Errorf("duplicates counted = %v, want 2", got)
		}
	})
}

// TestBatchedWebhook: a webhook of 2 entries × 3 events applies all 6.
func TestBatchedWebhook(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		h.clock.Set(time.UnixMilli(1700000000000).Add(time.Minute)) // the recording's time
		body, err := os.ReadFile("../messenger/testdata/batch_2x3.json")
		if err != nil {
			t.Fatal(err)
		}
		status, resp := h.postWebhook(body, messenger.SignatureHeader(ourSecret, body))
		if status != http.StatusOK {
			t.Fatalf("status %d: %s", status, resp)
		}
		if n := h.count(`SELECT count(*) FROM messages`); n != 6 {
			t.Errorf("messages = %d, want 6", n)
		}
		owners := map[string]handover.Owner{}
		for _, psid := range []string{"5001", "5002", "5003", "5004", "5005", "5006"} {
			v, _ := h.thread(psid)
			owners[psid] = v.Owner
		}
		want := map[string]handover.Owner{"5001": "agent", "5002": "agent", "5003": "agent", "5004": "bot", "5005": "bot", "5006": "bot"}
		if diff := cmp.Diff(want, owners); diff != "" {
			t.Errorf("owners (-want +got):\n%s", diff)
		}
	})
}

func TestWebhookEdge(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t), "bot")
	valid := []byte(`{"object":"page","entry":[{"id":"1001","time":1,"messaging":[{"sender":{"id":"77"},"recipient":{"id":"1001"},"timestamp":1700000000000,"message":{"mid":"m_edge","text":"x"}}]}]}`)
	unknownPage := []byte(`{"object":"page","entry":[{"id":"4242","time":1,"messaging":[{"sender":{"id":"77"},"recipient":{"id":"4242"},"timestamp":1700000000000,"message":{"mid":"m_other","text":"x"}}]}]}`)
	unknownKind := []byte(`{"object":"page","entry":[{"id":"1001","time":1,"messaging":[{"sender":{"id":"77"},"recipient":{"id":"1001"},"timestamp":1700000000000,"reaction":{"mid":"m_edge","action":"react"}}]}]}`)
	big := []byte(`{"object":"page","entry":[],"pad":"` + strings.Repeat("x", messenger.MaxWebhookBytes) + `"}`)
	malformed := []byte(`{"object":"page","entry":[{"id":"1001","messaging":[{"sender":{"id":"77"},"timestamp":1,"message":{"text":"no mid"}}]}]}`)
	tests := []struct {
		name      string
		body      []byte
		signature string
		status    int
		field     string
	}{
		{"missing signature", valid, "", 401, "X-Hub-Signature-256"},
		{"wrong signature", valid, messenger.SignatureHeader("not-the-secret", valid), 401, "X-Hub-Signature-256"},
		{"over 1 MiB", big, messenger.SignatureHeader(ourSecret, big), 413, ""},
		{"malformed JSON", []byte(`{"object":`), messenger.SignatureHeader(ourSecret, []byte(`{"object":`)), 400, "body"},
		{"unreadable item acknowledged", malformed, messenger.SignatureHeader(ourSecret, malformed), 200, ""},
		{"unknown page acknowledged", unknownPage, messenger.SignatureHeader(ourSecret, unknownPage), 200, ""},
		{"unknown kind acknowledged", unknownKind, messenger.SignatureHeader(ourSecret, unknownKind), 200, ""},
		{"valid", valid, messenger.SignatureHeader(ourSecret, valid), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.count(`SELECT count(*) FROM webhook_events`)
			status, body := h.postWebhook(tt.body, tt.signature)
			if status != tt.status {
				t.Fatalf("status = %d, want %d: %s", status, tt.status, body)
			}
			after := h.count(`SELECT count(*) FROM webhook_events`)
			if tt.status != 200 || tt.name != "valid" {
				if after != before {
					t.Errorf("refused or ignored webhook stored %d events", after-before)
				}
			} else if after != before+1 {
				t.Errorf("valid webhook stored %d events, want 1", after-before)
			}
			if tt.status >= 400 {
				var e struct {
					Error struct{ Code, Field, Message string }
				}
				if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" {
					t.Fatalf("error body is not the JSON error shape: %s", body)
				}
				if e.Error.Field != tt.field {
					t.Errorf("error field = %q, want %q", e.Error.Field, tt.field)
				}
			}
		})
	}
	m := h.srv.Metrics()
	if n := testutil.ToFloat64(m.WebhookSignatureFailures); n != 2 {
		t.Errorf("signature failures = %v, want 2", n)
	}
	if n := testutil.ToFloat64(m.WebhookEvents.WithLabelValues("message", "unknown_page")); n != 1 {
		t.Errorf("unknown_page events = %v, want 1", n)
	}
	if n := testutil.ToFloat64(m.WebhookEvents.WithLabelValues("unknown", "ignored")); n != 1 {
		t.Errorf("unknown kind events = %v, want 1", n)
	}
}

func TestWebhookVerification(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t), "bot")
	tests := []struct {
		name, query string
		status      int
		body        string
	}{
		{"valid", "hub.mode=subscribe&hub.verify_token=" + verify + "&hub.challenge=1158201444", 200, "1158201444"},
		{"wrong token", "hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1", 403, ""},
		{"wrong mode", "hub.mode=unsubscribe&hub.verify_token=" + verify + "&hub.challenge=1", 403, ""},
		{"nothing", "", 403, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := h.do(http.MethodGet, "/webhooks/messenger?"+tt.query, "", nil)
			if status != tt.status {
				t.Fatalf("status = %d, want %d", status, tt.status)
			}
			if tt.body != "" && string(body) != tt.body {
				t.Errorf("body = %q, want %q", body, tt.body)
			}
		})
	}
	if logs := h.logs.String(); strings.Contains(logs, verify) || strings.Contains(logs, "hub.verify_token") {
		t.Errorf("the verify token reached the logs:\n%s", logs)
	}
}

func TestThreadAPIAuth(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t), "bot")
	h.customerSays("9003", "hi")
	tests := []struct {
		name, path, token string
		status            int
	}{
		{"agent", "/1.0/threads/1001/9003", agentToken, 200},
		{"no token", "/1.0/threads/1001/9003", "", 401},
		{"unknown token", "/1.0/threads/1001/9003", "not-a-token-at-all", 401},
		{"bot role", "/1.0/threads/1001/9003", botAPIKey, 403},
		{"unknown psid", "/1.0/threads/1001/404404", agentToken, 404},
		{"unknown page", "/1.0/threads/777/9003", agentToken, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := h.do(http.MethodGet, tt.path, tt.token, nil)
			if status != tt.status {
				t.Errorf("status = %d, want %d: %s", status, tt.status, body)
			}
		})
	}
	for _, probe := range []string{"/healthz", "/readyz", "/metrics"} {
		if status, body := h.do(http.MethodGet, probe, "", nil); status != 200 {
			t.Errorf("%s = %d: %s", probe, status, body)
		}
	}
	if logs := h.logs.String(); strings.Contains(logs, agentToken) || strings.Contains(logs, ourToken) || strings.Contains(logs, ourSecret) {
		t.Errorf("a token or secret reached the logs")
	}
}
