package userlike_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/httpapi"
	"github.com/handoverd/handoverd/internal/clocktest"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/metrics"
	"github.com/handoverd/handoverd/relaybot"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/store/storetest"
	"github.com/handoverd/handoverd/userlike"
)

const (
	apiPage    = "1001"
	otherPage  = "1002"
	apiToken   = "sample-bot-api-token-0123456789"
	otherToken = "other-bot-api-token-0123456789"
)

// bots is the events endpoint on loopback over the real relay runtime on
// a real database: two bots, one per Page, each a webhook receiver that
// answers every call with no events.
type bots struct {
	t     *testing.T
	db    *store.DB
	clock *clocktest.Fake
	hs    *handover.Service
	run   *relaybot.Service
	url   string
	mids  int
}

func newBots(t *testing.T, b storetest.Backend) *bots {
	t.Helper()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(hook.Close)
	f := &bots{t: t, db: b.Open(t), clock: clocktest.New(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))}
	pages := []config.Page{{ID: apiPage, AccessToken: "tok", DefaultApp: "agent", ClientID: 1}, {ID: otherPage, AccessToken: "tok2", DefaultApp: "agent", ClientID: 1}}
	m, log := metrics.New(), zerolog.Nop()
	f.hs = handover.New(handover.Options{DB: f.db, AppID: "111", Pages: pages, Clock: f.clock.Paced(), Metrics: m, Logger: log})
	f.run = relaybot.New(relaybot.Options{DB: f.db, Clock: f.clock.Paced(), Metrics: m, Logger: log, Handover: f.hs, Retry: time.Second, Attempts: 3,
		Bots: []userlike.Bot{
			{Name: "sample", Pages: []string{apiPage}, WebhookURL: hook.URL, APIToken: apiToken, Mode: userlike.ModeFirewall},
			{Name: "other", Pages: []string{otherPage}, WebhookURL: hook.URL, APIToken: otherToken, Mode: userlike.ModeFirewall},
		}})
	f.hs.SetConsumers(handover.Consumers{Bots: f.run})
	r := httpapi.NewRouter(log, m)
	(&userlike.API{Service: f.run}).Routes(r)
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

// session has the customer psid write to page and returns the cid of the
// session the bot got.
func (f *bots) session(page, psid string) string {
	f.t.Helper()
	f.mids++
	f.clock.Advance(time.Second)
	ev := messenger.Event{Kind: messenger.KindMessage, Channel: messenger.ChannelMessaging, PageID: page, PSID: psid, Time: f.clock.Now(),
		Message: &messenger.Message{MID: "m." + strconv.Itoa(f.mids), Text: "hi"}, Raw: json.RawMessage(`{}`)}
	if err := f.hs.Ingest(context.Background(), []messenger.Event{ev}); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.run.DeliverDue(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	var cid string
	if err := f.db.Reader().QueryRowContext(context.Background(), `SELECT cid FROM relay_sessions WHERE psid = $1 ORDER BY id DESC LIMIT 1`, psid).Scan(&cid); err != nil {
		f.t.Fatalf("session of %s: %v", psid, err)
	}
	return cid
}

// answer is what the endpoint answered.
type answer struct {
	Status     int
	Code       string
	Field      string
	RetryAfter string
	OK         string
}

// post sends body (a string as is, else as JSON) to path with token.
func (f *bots) post(path, token string, body any) answer {
	f.t.Helper()
	raw, ok := body.([]byte)
	if s, isString := body.(string); isString {
		raw, ok = []byte(s), true
	}
	if !ok {
		raw, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest(http.MethodPost, f.url+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("SECURITY-TOKEN", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Status string `json:"status"`
		Error  struct {
			Code  string `json:"code"`
			Field string `json:"field"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil {
		f.t.Fatalf("answer is not JSON: %v: %s", err, b)
	}
	return answer{Status: resp.StatusCode, Code: e.Error.Code, Field: e.Error.Field, RetryAfter: resp.Header.Get("Retry-After"), OK: e.Status}
}

// record is what the runtime keeps of the bots' sessions: every session's
// status and context, and the actions queued for each.
func (f *bots) record() []string {
	f.t.Helper()
	rows, err := f.db.Reader().QueryContext(context.Background(), `SELECT s.cid, s.status, s.context, count(a.id) FROM relay_sessions s
		LEFT JOIN relay_actions a ON a.session_id = s.id GROUP BY s.cid, s.status, s.context ORDER BY s.cid`)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var cid, status, ctx string
		var n int
		if err := rows.Scan(&cid, &status, &ctx, &n); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, strings.Join([]string{cid, status, ctx, strconv.Itoa(n)}, " "))
	}
	return out
}

func event(cid string, ctx any, name string, payload any) map[string]any {
	info := map[string]any{"cid": cid}
	if ctx != nil {
		info["context"] = ctx
	}
	return map[string]any{"info": info, "packet": map[string]any{"name": name, "payload": payload}}
}

// TestEventsRefused: a post the endpoint refuses gets the status its
// error kind has and a JSON body naming the offending input, and changes
// nothing the runtime keeps.
func TestEventsRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newBots(t, b)
		cid := f.session(apiPage, "5001")
		otherCID := f.session(otherPage, "5002")
		endedCID := f.session(apiPage, "5003")
		if a := f.post("/api/chatbot/v1/events", apiToken, event(endedCID, nil, "end", map[string]any{})); a.Status != http.StatusOK {
			t.Fatalf("end: %+v", a)
		}
		if _, err := f.run.RunDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		msg := func(cid string) map[string]any { return event(cid, nil, "message", map[string]any{"body": "x"}) }
		for _, tc := range []struct {
			name, path, token string
			body              any
			want              answer
		}{
			{"no token", "/api/chatbot/v1/events", "", msg(cid), answer{Status: 401, Code: "unauthorized", Field: "SECURITY-TOKEN"}},
			{"wrong token", "/api/chatbot/v1/events", "not-the-token-0123456789", msg(cid), answer{Status: 401, Code: "unauthorized", Field: "SECURITY-TOKEN"}},
			{"wrong token, unversioned path", "/api/chatbot/events", "not-the-token-0123456789", msg(cid), answer{Status: 401, Code: "unauthorized", Field: "SECURITY-TOKEN"}},
			{"another bot's session", "/api/chatbot/v1/events", otherToken, msg(cid), answer{Status: 400, Code: "invalid", Field: "cid"}},
			{"unknown cid", "/api/chatbot/v1/events", apiToken, msg("nobody"), answer{Status: 400, Code: "invalid", Field: "cid"}},
			{"not JSON", "/api/chatbot/v1/events", apiToken, `{"info":`, answer{Status: 400, Code: "invalid"}},
			{"unknown event", "/api/chatbot/v1/events", apiToken, event(cid, nil, "dance", map[string]any{}), answer{Status: 400, Code: "invalid", Field: "packet.name"}},
			{"message without body", "/api/chatbot/v1/events", apiToken, event(cid, nil, "message", map[string]any{}), answer{Status: 400, Code: "invalid", Field: "packet.payload.body"}},
			{"delay too long", "/api/chatbot/v1/events", apiToken, event(cid, nil, "delay", map[string]any{"duration": 3600}), answer{Status: 400, Code: "invalid", Field: "packet.payload.duration"}},
			{"a bad event after a good one", "/api/chatbot/v1/events", apiToken, []any{msg(cid), event(cid, nil, "message", map[string]any{})}, answer{Status: 400, Code: "invalid", Field: "events[1].packet.payload.body"}},
			{"two cids", "/api/chatbot/v1/events", apiToken, []any{msg(cid), msg(otherCID)}, answer{Status: 400, Code: "invalid", Field: "events[1].info.cid"}},
			{"ended session", "/api/chatbot/v1/events", apiToken, msg(endedCID), answer{Status: 409, Code: "conflict"}},
			{"over 256 KiB", "/api/chatbot/v1/events", apiToken, event(cid, nil, "message", map[string]any{"body": strings.Repeat("x", userlike.MaxEventsBody)}), answer{Status: 413, Code: "too_large"}},
		} {
			before := f.record()
			got := f.post(tc.path, tc.token, tc.body)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("%s (-want +got):\n%s", tc.name, d)
			}
			if d := cmp.Diff(before, f.record()); d != "" {
				t.Errorf("%s changed the sessions (-before +after):\n%s", tc.name, d)
			}
		}
	})
}

// TestEventsAccepted: a list of events for a session is stored whole (one
// action each, the context merged), on either path.
func TestEventsAccepted(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newBots(t, b)
		cid := f.session(apiPage, "5001")
		got := f.post("/api/chatbot/events", apiToken, []any{
			event(cid, map[string]any{"state": "asked"}, "message", map[string]any{"body": "one moment"}),
			event(cid, nil, "delay", map[string]any{"duration": 5}),
		})
		if d := cmp.Diff(answer{Status: 200, OK: "ok"}, got); d != "" {
			t.Errorf("answer (-want +got):\n%s", d)
		}
		if d := cmp.Diff([]string{cid + ` active {"state":"asked"} 2`}, f.record()); d != "" {
			t.Errorf("sessions (-want +got):\n%s", d)
		}
	})
}

// TestEventsRateLimited: a session may post 20 times a minute; the next post is refused with Retry-After and stores nothing,
// and a minute later posts are taken again.
func TestEventsRateLimited(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newBots(t, b)
		cid := f.session(apiPage, "5001")
		post := func() answer {
			return f.post("/api/chatbot/v1/events", apiToken, event(cid, nil, "message", map[string]any{"body": "x"}))
		}
		for i := 0; i < 20; i++ {
			if a := post(); a.Status != http.StatusOK {
				t.Fatalf("post %d: %+v", i+1, a)
			}
		}
		before := f.record()
		if d := cmp.Diff(answer{Status: 429, Code: "rate_limited", RetryAfter: "60"}, post()); d != "" {
			t.Errorf("one post too many (-want +got):\n%s", d)
		}
		if d := cmp.Diff(before, f.record()); d != "" {
			t.Errorf("the refused post changed the sessions (-before +after):\n%s", d)
		}
		f.clock.Advance(time.Minute)
		if a := post(); a.Status != http.StatusOK {
			t.Errorf("a minute later: %+v", a)
		}
	})
}
