package api_test

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

	"github.com/handoverd/handoverd/analytics"
	"github.com/handoverd/handoverd/api"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/httpapi"
	"github.com/handoverd/handoverd/internal/clocktest"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/messenger/simulator"
	"github.com/handoverd/handoverd/metrics"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/store/storetest"
)

const (
	ourApp     = "111"
	botApp     = "222"
	pageID     = "1001" // client 1's Page
	otherPage  = "2002" // client 2's Page
	pageToken  = "our-page-token"
	agentToken = "agent-token-0123456789ab" // agent, client 1
	botToken   = "bot-token-0123456789abc"  // bot, client 1
	adminToken = "admin-token-0123456789a"  // admin, every client
	psid       = "5001"
)

// env is handoverd's own API on loopback over real handover and analytics
// services on a new SQLite file, with a Messenger simulator as Facebook
// and the agent message sender running.
type env struct {
	t     *testing.T
	db    *store.DB
	hs    *handover.Service
	sim   *simulator.Sim
	clock *clocktest.Fake
	url   string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, db: storetest.SQLite(t).Open(t), clock: clocktest.New(time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC))}
	e.sim = simulator.New(simulator.Config{Now: e.clock.Now, RetryDelay: 5 * time.Millisecond, MaxAttempts: 3})
	simSrv := httptest.NewServer(e.sim.Handler())
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	t.Cleanup(func() { e.sim.Close(); simSrv.Close(); hook.Close() })
	e.sim.AddApp(simulator.App{ID: botApp, Secret: "bot-app-secret", WebhookURL: hook.URL})
	e.sim.AddApp(simulator.App{ID: ourApp, Secret: "our-app-secret", WebhookURL: hook.URL})
	e.sim.AddPage(simulator.Page{ID: pageID, DefaultAppID: ourApp, Tokens: map[string]string{pageToken: ourApp, "bot-page-token": botApp}})

	pages := []config.Page{
		{ID: pageID, AccessToken: pageToken, DefaultApp: "agent", BotAppID: botApp, ClientID: 1},
		{ID: otherPage, AccessToken: "other-page-token", DefaultApp: "bot", BotAppID: botApp, ClientID: 2},
	}
	users, err := auth.NewUsers([]config.User{
		{Name: "alice", Role: config.RoleAgent, Token: agentToken, ClientID: 1},
		{Name: "support-bot", Role: config.RoleBot, Token: botToken, ClientID: 1},
		{Name: "root", Role: config.RoleAdmin, Token: adminToken},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	graph := messenger.NewGraph(messenger.GraphOptions{BaseURL: simSrv.URL + "/", Version: "v21.0", AppID: ourApp, AppSecret: "our-app-secret",
		Timeout: 5 * time.Second, Retry: messenger.Retry{Initial: time.Millisecond, Max: 5 * time.Millisecond}, Metrics: m})
	e.hs = handover.New(handover.Options{DB: e.db, AppID: ourApp, Pages: pages, Clock: e.clock.Paced(), Metrics: m, Logger: zerolog.Nop(), Graph: graph,
		Handover: config.Handover{ControlTimeout: 2 * time.Minute, InterventionIdle: time.Hour, WorkEvery: 10 * time.Millisecond}})
	stats := analytics.New(analytics.Options{DB: e.db, Pages: pages, ControlTimeout: 2 * time.Minute, Now: e.clock.Now})
	r := httpapi.NewRouter(zerolog.Nop(), m)
	(&api.API{Handover: e.hs, Analytics: stats, Users: users, SendWait: 10 * time.Second}).Routes(r)
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)
	e.url = srv.URL

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.hs.Run(ctx, time.Hour); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// customerToUs is a customer's message while handoverd owns the thread,
// on Meta's side and on ours (the webhook Meta sends is ingested directly).
func (e *env) customerToUs(psid string) {
	e.t.Helper()
	e.sim.SetOwner(pageID, psid, ourApp)
	e.clock.Advance(time.Second)
	mid, err := e.sim.CustomerSends(pageID, psid, simulator.CustomerMessage{Text: "hi"})
	if err != nil {
		e.t.Fatal(err)
	}
	ev := messenger.Event{Kind: messenger.KindMessage, Channel: messenger.ChannelMessaging, PageID: pageID, PSID: psid, Time: e.clock.Now(),
		Message: &messenger.Message{MID: mid, Text: "hi"}, Raw: json.RawMessage(`{}`)}
	if err := e.hs.Ingest(context.Background(), []messenger.Event{ev}); err != nil {
		e.t.Fatal(err)
	}
}

// call sends body (a string, or nil) to path as bearer token and returns
// the status and the raw answer.
func (e *env) call(method, path, token string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// must is call that decodes the answer into out and fails the test unless
// the status is want.
func (e *env) must(want int, method, path, token string, body any, out any) {
	e.t.Helper()
	status, raw := e.call(method, path, token, body)
	if status != want {
		e.t.Fatalf("%s %s = %d %s, want %d", method, path, status, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
}

// refusal is an error answer: its status, code and field.
type refusal struct {
	Status int
	Code   string
	Field  string
}

func (e *env) refusal(status int, raw []byte) refusal {
	e.t.Helper()
	var b httpapi.ErrorBody
	if err := json.Unmarshal(raw, &b); err != nil || b.Error.Message == "" {
		e.t.Fatalf("error answer is not the one error shape: %v: %s", err, raw)
	}
	return refusal{status, b.Error.Code, b.Error.Field}
}

// rows counts what the API's writes make: interventions, agent messages,
// handovers and thread transitions.
func (e *env) rows() [4]int {
	e.t.Helper()
	var out [4]int
	for i, table := range []string{"interventions", "agent_messages", "handovers", "thread_transitions"} {
		if err := e.db.Reader().QueryRowContext(context.Background(), `SELECT count(*) FROM `+table).Scan(&out[i]); err != nil {
			e.t.Fatal(err)
		}
	}
	return out
}

// TestRefusals: bad input and callers without the right are refused with
// the status of the one table, in the one error shape naming the field,
// and change nothing.
func TestRefusals(t *testing.T) {
	e := newEnv(t)
	e.customerToUs(psid)
	var open, closed handover.InterventionView
	e.must(201, http.MethodPost, "/1.0/interventions", agentToken, map[string]string{"identity_foreign_id": psid}, &open)
	e.customerToUs("5002")
	e.must(201, http.MethodPost, "/1.0/interventions", agentToken, map[string]string{"identity_foreign_id": "5002"}, &closed)
	e.must(200, http.MethodPut, "/1.0/interventions/"+itoa(closed.ID)+"/close", agentToken, nil, nil)
	was := e.rows()
	messages := "/1.0/interventions/" + itoa(open.ID) + "/messages"
	tests := []struct {
		name, method, path, token string
		body                      any
		want                      refusal
	}{
		{"thread without token", "GET", "/1.0/threads/1001/5001", "", nil, refusal{401, "unauthorized", ""}},
		{"thread of another client", "GET", "/1.0/threads/2002/5001", agentToken, nil, refusal{403, "forbidden", ""}},
		{"unknown thread", "GET", "/1.0/threads/1001/404", agentToken, nil, refusal{404, "not_found", ""}},
		{"pages as an agent", "GET", "/1.0/pages", agentToken, nil, refusal{403, "forbidden", ""}},
		{"intervention as a bot", "POST", "/1.0/interventions", botToken, `{"identity_foreign_id":"5001"}`, refusal{403, "forbidden", ""}},
		{"intervention without identity", "POST", "/1.0/interventions", agentToken, `{}`, refusal{400, "invalid", "identity_foreign_id"}},
		{"intervention identity a number", "POST", "/1.0/interventions", agentToken, `{"identity_foreign_id":5001}`, refusal{400, "invalid", "identity_foreign_id"}},
		{"intervention body not JSON", "POST", "/1.0/interventions", agentToken, `{"identity_foreign_id":`, refusal{400, "invalid", "body"}},
		{"intervention on another client's Page", "POST", "/1.0/interventions", agentToken, `{"identity_foreign_id":"5001","page_id":"2002"}`, refusal{403, "forbidden", ""}},
		{"interventions without identity", "GET", "/1.0/interventions", agentToken, nil, refusal{400, "invalid", "identity_foreign_id"}},
		{"intervention id not a number", "GET", "/1.0/interventions/abc", agentToken, nil, refusal{404, "not_found", ""}},
		{"unknown intervention", "PUT", "/1.0/interventions/999/close", agentToken, nil, refusal{404, "not_found", ""}},
		{"message without text", "POST", messages, agentToken, `{}`, refusal{400, "invalid", "text"}},
		{"message with text and message", "POST", messages, agentToken, `{"text":"hi","message":{"text":"hi"}}`, refusal{400, "invalid", "text"}},
		{"message over 2000 characters", "POST", messages, agentToken, map[string]string{"text": strings.Repeat("é", 2001)}, refusal{400, "invalid", "text"}},
		{"message not an object", "POST", messages, agentToken, `{"message":[1]}`, refusal{400, "invalid", "message"}},
		{"message in a closed intervention", "POST", "/1.0/interventions/" + itoa(closed.ID) + "/messages", agentToken, `{"text":"hi"}`, refusal{409, "conflict", ""}},
		{"handover to the bot", "POST", "/1.0/handovers", botToken, `{"identity_foreign_id":"5001","to":"bot"}`, refusal{400, "invalid", "to"}},
		{"handover without identity", "POST", "/1.0/handovers", botToken, `{"to":"agent"}`, refusal{400, "invalid", "identity_foreign_id"}},
		{"handover in an unknown mode", "POST", "/1.0/handovers", botToken, `{"identity_foreign_id":"5001","to":"agent","mode":"later"}`, refusal{400, "invalid", "mode"}},
		{"handover with an unknown reason", "POST", "/1.0/handovers", botToken, `{"identity_foreign_id":"5001","to":"agent","reason":"nope"}`, refusal{400, "invalid", "reason"}},
		{"handover with nested metadata", "POST", "/1.0/handovers", botToken, `{"identity_foreign_id":"5001","to":"agent","metadata":{"a":{}}}`, refusal{400, "invalid", "metadata"}},
		{"handover id zero", "GET", "/1.0/handovers/0", botToken, nil, refusal{404, "not_found", ""}},
		{"accept as a bot", "POST", "/1.0/handovers/1/accept", botToken, nil, refusal{403, "forbidden", ""}},
		{"analytics without Page", "GET", "/1.0/analytics", agentToken, nil, refusal{400, "invalid", "page_id"}},
		{"analytics of another client", "GET", "/1.0/analytics?page_id=2002", agentToken, nil, refusal{403, "forbidden", ""}},
		{"analytics from not a date", "GET", "/1.0/analytics?page_id=1001&from=yesterday", agentToken, nil, refusal{400, "invalid", "from"}},
		{"analytics to before from", "GET", "/1.0/analytics?page_id=1001&from=2026-11-02&to=2026-11-01", agentToken, nil, refusal{400, "invalid", "to"}},
		{"analytics over a year", "GET", "/1.0/analytics?page_id=1001&from=2020-01-01&to=2026-11-01", agentToken, nil, refusal{400, "invalid", "to"}},
		{"analytics as XML", "GET", "/1.0/analytics?page_id=1001&format=xml", agentToken, nil, refusal{400, "invalid", "format"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, raw := e.call(tt.method, tt.path, tt.token, tt.body)
			if diff := cmp.Diff(tt.want, e.refusal(status, raw)); diff != "" {
				t.Errorf("%s %s (-want +got):\n%s", tt.method, tt.path, diff)
			}
			if now := e.rows(); now != was {
				t.Errorf("rows (interventions, agent messages, handovers, transitions) = %v, were %v", now, was)
			}
		})
	}
}

// TestAgentFlow: an agent opens an intervention, sends a message that
// reaches the customer, lists it, and closes the intervention; the thread
// shows the agents' ownership.
func TestAgentFlow(t *testing.T) {
	e := newEnv(t)
	e.customerToUs(psid)
	var iv handover.InterventionView
	e.must(201, http.MethodPost, "/1.0/interventions", agentToken, map[string]string{"identity_foreign_id": psid}, &iv)
	if diff := cmp.Diff(handover.InterventionView{ID: iv.ID, PageID: pageID, IdentityForeignID: psid, Status: handover.InterventionOpen, OpenedBy: "alice",
		OpenedAt: iv.OpenedAt, LastActivityAt: iv.LastActivityAt, ThreadOwner: handover.OwnerAgent}, iv); diff != "" {
		t.Errorf("opened (-want +got):\n%s", diff)
	}
	var msg handover.AgentMessageView
	e.must(201, http.MethodPost, "/1.0/interventions/"+itoa(iv.ID)+"/messages", agentToken, map[string]string{"text": "Hello, I'm Alice"}, &msg)
	if msg.Status != handover.SendSent || msg.MID == "" {
		t.Errorf("sent message = %+v, want sent with a mid", msg)
	}
	if got := e.sim.Inbox(pageID, psid); len(got) != 1 || got[0].Text != "Hello, I'm Alice" {
		t.Errorf("customer received %+v, want the agent's message", got)
	}
	var list []handover.AgentMessageView
	e.must(200, http.MethodGet, "/1.0/interventions/"+itoa(iv.ID)+"/messages", agentToken, nil, &list)
	if len(list) != 1 || list[0].ID != msg.ID {
		t.Errorf("listed %+v, want the one message %d", list, msg.ID)
	}
	var shut handover.InterventionView
	e.must(200, http.MethodPut, "/1.0/interventions/"+itoa(iv.ID)+"/close", agentToken, nil, &shut)
	if shut.Status != handover.InterventionClosed || shut.ClosedBy != "alice" {
		t.Errorf("closed = %+v, want closed by alice", shut)
	}
	var th handover.ThreadView
	e.must(200, http.MethodGet, "/1.0/threads/1001/"+psid, agentToken, nil, &th)
	if th.PSID != psid || len(th.History) == 0 {
		t.Errorf("thread = %+v, want its history", th)
	}
}

// TestAnalyticsCSV: format=csv (or an Accept of text/csv) answers a CSV
// file with a header, a row per day and a total.
func TestAnalyticsCSV(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ name, query, accept string }{
		{"format", "&format=csv", ""},
		{"accept", "", "text/csv"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, e.url+"/1.0/analytics?page_id=1001&from=2026-11-01&to=2026-11-02"+tc.query, nil)
			req.Header.Set("Authorization", "Bearer "+agentToken)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
			got := []string{resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition")}
			for _, l := range lines {
				got = append(got, strings.SplitN(l, ",", 2)[0])
			}
			want := []string{"text/csv; charset=utf-8", `attachment; filename="analytics-1001-2026-11-01-2026-11-02.csv"`, "date", "2026-11-01", "2026-11-02", "total"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("CSV (-want +got):\n%s", diff)
			}
		})
	}
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }
