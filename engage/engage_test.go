package engage_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/engage"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/httpapi"
	"github.com/handoverd/handoverd/internal/clocktest"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/messenger/simulator"
	"github.com/handoverd/handoverd/metrics"
	"github.com/handoverd/handoverd/store/storetest"
)

const (
	ourApp     = "111"
	botApp     = "222"
	pageID     = "1001" // client 1's Page
	otherPage  = "2002" // client 2's Page
	pageToken  = "our-page-token"
	botToken   = "bot-token-0123456789abc"   // bot, client 1
	agentToken = "agent-token-0123456789ab"  // agent, client 1
	otherBot   = "other-bot-token-012345678" // bot, client 2
	psid       = "5001"
)

// env is the Bots API on loopback over a real handover service on a new
// SQLite file, with a Messenger simulator as Facebook.
type env struct {
	t     *testing.T
	hs    *handover.Service
	sim   *simulator.Sim
	clock *clocktest.Fake
	url   string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, clock: clocktest.New(time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC))}
	e.sim = simulator.New(simulator.Config{Now: e.clock.Now, RetryDelay: 5 * time.Millisecond, MaxAttempts: 3})
	simSrv := httptest.NewServer(e.sim.Handler())
	botHook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	t.Cleanup(func() { e.sim.Close(); simSrv.Close(); botHook.Close() })
	e.sim.AddApp(simulator.App{ID: botApp, Secret: "bot-app-secret", WebhookURL: botHook.URL})
	e.sim.AddApp(simulator.App{ID: ourApp, Secret: "our-app-secret", WebhookURL: botHook.URL})
	e.sim.AddPage(simulator.Page{ID: pageID, DefaultAppID: ourApp, Tokens: map[string]string{pageToken: ourApp, "bot-page-token": botApp}})

	pages := []config.Page{
		{ID: pageID, AccessToken: pageToken, DefaultApp: "agent", BotAppID: botApp, ClientID: 1},
		{ID: otherPage, AccessToken: "other-page-token", DefaultApp: "bot", BotAppID: botApp, ClientID: 2},
	}
	users, err := auth.NewUsers([]config.User{
		{Name: "support-bot", Role: config.RoleBot, Token: botToken, ClientID: 1},
		{Name: "alice", Role: config.RoleAgent, Token: agentToken, ClientID: 1},
		{Name: "elsewhere-bot", Role: config.RoleBot, Token: otherBot, ClientID: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	graph := messenger.NewGraph(messenger.GraphOptions{BaseURL: simSrv.URL + "/", Version: "v21.0", AppID: ourApp, AppSecret: "our-app-secret",
		Timeout: 5 * time.Second, Retry: messenger.Retry{Initial: time.Millisecond, Max: 5 * time.Millisecond}, Metrics: m})
	e.hs = handover.New(handover.Options{DB: storetest.SQLite(t).Open(t), AppID: ourApp, Pages: pages, Clock: e.clock.Paced(),
		Metrics: m, Logger: zerolog.Nop(), Graph: graph, Handover: config.Handover{ControlTimeout: 2 * time.Minute}})
	r := httpapi.NewRouter(zerolog.Nop(), m)
	(&engage.API{Service: e.hs, Users: users, Metrics: m}).Routes(r)
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// customerToUs is a customer's message while handoverd owns the thread,
// on Meta's side and on ours.
func (e *env) customerToUs(psid string) {
	e.t.Helper()
	e.sim.SetOwner(pageID, psid, ourApp)
	e.clock.Advance(time.Second)
	ev := messenger.Event{Kind: messenger.KindMessage, Channel: messenger.ChannelMessaging, PageID: pageID, PSID: psid, Time: e.clock.Now(),
		Message: &messenger.Message{MID: "m_" + psid, Text: "hi"}, Raw: json.RawMessage(`{}`)}
	if err := e.hs.Ingest(context.Background(), []messenger.Event{ev}); err != nil {
		e.t.Fatal(err)
	}
}

// thread is the thread's owner and number of transitions ("" when there
// is no thread).
func (e *env) thread(psid string) (handover.Owner, int) {
	e.t.Helper()
	th, hist, err := e.hs.Get(context.Background(), pageID, psid)
	if errors.Is(err, handover.ErrNotFound) {
		return "", 0
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return th.Owner, len(hist)
}

// post calls POST /1.0/bots/handover with query and, when not empty, a bearer token.
func (e *env) post(query, bearer string) (int, engage.Status) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+"/1.0/bots/handover?"+query, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body engage.Status
	if err := json.Unmarshal(raw, &body); err != nil {
		e.t.Fatalf("answer is not Engage's JSON: %v: %s", err, raw)
	}
	return resp.StatusCode, body
}

type answer struct {
	Status int
	Body   engage.Status
}

// TestRefusals: a refused handover is answered in Engage Digital's shape
// with the status of the one table, names what is wrong, and changes
// nothing.
func TestRefusals(t *testing.T) {
	e := newEnv(t)
	e.customerToUs(psid)
	owner, steps := e.thread(psid)
	tok := "access_token=" + botToken + "&"
	tests := []struct {
		name, query string
		want        answer
	}{
		{"no token", "identity_foreign_id=5001&from=agent&to=bot", answer{401, engage.Status{Status: 401, Message: "missing API token"}}},
		{"unknown token", "access_token=nope-nope-nope-nope&identity_foreign_id=5001&from=agent&to=bot", answer{401, engage.Status{Status: 401, Message: "invalid API token"}}},
		{"missing identity", tok + "from=agent&to=bot", answer{400, engage.Status{Status: 400, Message: "identity_foreign_id is missing"}}},
		{"missing from", tok + "identity_foreign_id=5001&to=bot", answer{400, engage.Status{Status: 400, Message: "from is missing (bot or agent)"}}},
		{"missing to", tok + "identity_foreign_id=5001&from=agent", answer{400, engage.Status{Status: 400, Message: "to is missing (bot or agent)"}}},
		{"same direction", tok + "identity_foreign_id=5001&from=bot&to=bot", answer{400, engage.Status{Status: 400, Message: `from="bot" to="bot": handovers go from=bot&to=agent or from=agent&to=bot`}}},
		{"bad type", tok + "identity_foreign_id=5001&from=agent&to=bot&type=whatsapp", answer{400, engage.Status{Status: 400, Message: `type must be messenger, got "whatsapp"`}}},
		{"bad app id", tok + "identity_foreign_id=5001&from=agent&to=bot&app_id=abc", answer{400, engage.Status{Status: 400, Message: "app_id must be a numeric Facebook app id"}}},
		{"bad mode", tok + "identity_foreign_id=5001&from=bot&to=agent&mode=later", answer{400, engage.Status{Status: 400, Message: `mode must be pass or offer, got "later"`}}},
		{"offer to the bot", tok + "identity_foreign_id=5001&from=agent&to=bot&mode=offer", answer{400, engage.Status{Status: 400, Message: "mode=offer offers a conversation to the agents: from=bot&to=agent"}}},
		{"unknown reason", tok + "identity_foreign_id=5001&from=agent&to=bot&reason=nope", answer{400, engage.Status{Status: 400,
			Message: `unknown reason "nope" (want one of bot_requested, customer_asked, bot_failed, agent_took_over, agent_resolved, idle_timeout, offer_expired, meta_event, reconciled)`}}},
		{"metadata not an object", tok + "identity_foreign_id=5001&from=agent&to=bot&metadata=%5B1%5D", answer{400, engage.Status{Status: 400, Message: "metadata must be a JSON object"}}},
		{"nested metadata", tok + "identity_foreign_id=5001&from=bot&to=agent&metadata=%7B%22a%22%3A%7B%7D%7D", answer{400, engage.Status{Status: 400,
			Message: `metadata "a": must be flat (string, number, boolean or null values, no objects or lists)`}}},
		{"metadata with NUL", tok + "identity_foreign_id=5001&from=agent&to=bot&metadata=%7B%22a%22%3A%22%00%22%7D", answer{400, engage.Status{Status: 400, Message: "metadata contains a NUL character"}}},
		{"metadata over 4 KB", tok + "identity_foreign_id=5001&from=agent&to=bot&metadata=" + bigMetadata(4097), answer{400, engage.Status{Status: 400, Message: "metadata is over 4096 bytes"}}},
		{"metadata over 8 KiB", tok + "identity_foreign_id=5001&from=agent&to=bot&metadata=" + bigMetadata(8<<10+1), answer{400, engage.Status{Status: 400, Message: "metadata is over 8192 bytes"}}},
		{"unknown page", tok + "identity_foreign_id=5001&from=agent&to=bot&page_id=9999", answer{404, engage.Status{Status: 404, Message: "page 9999 is not configured"}}},
		{"other client's page", "access_token=" + otherBot + "&identity_foreign_id=5001&from=agent&to=bot&page_id=1001", answer{403, engage.Status{Status: 403, Message: "page 1001 belongs to another client"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.post(tt.query, "")
			if diff := cmp.Diff(tt.want, answer{status, body}); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if o, n := e.thread(psid); o != owner || n != steps {
				t.Errorf("thread is now %s after %d transitions, was %s after %d", o, n, owner, steps)
			}
		})
	}
	if calls := e.sim.Calls(); len(calls) != 0 {
		t.Errorf("refused handovers called Graph %d times: %+v", len(calls), calls)
	}
}

// bigMetadata is a flat JSON object of n bytes, query-escaped.
func bigMetadata(n int) string {
	return url.QueryEscape(`{"a":"` + strings.Repeat("x", n-8) + `"}`)
}

// TestLargeMetadata: metadata of 4 KB, the documented bound, is accepted.
func TestLargeMetadata(t *testing.T) {
	e := newEnv(t)
	e.customerToUs(psid)
	status, body := e.post("identity_foreign_id=5001&from=agent&to=bot&metadata="+bigMetadata(handover.MaxMetadataBytes), botToken)
	if diff := cmp.Diff(answer{200, engage.Status{Status: 200, Message: "Success"}}, answer{status, body}); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	if owner, _ := e.thread(psid); owner != handover.OwnerBot {
		t.Errorf("thread is now %s, want the bot's", owner)
	}
}

// TestHandover: a handover the caller may make is answered
// {"status":200,"message":"Success"} and moves the thread; the token may
// come as a bearer header.
func TestHandover(t *testing.T) {
	e := newEnv(t)
	e.customerToUs(psid)
	if owner, _ := e.thread(psid); owner != handover.OwnerAgent {
		t.Fatalf("thread starts with %s, want the agents", owner)
	}
	status, body := e.post("identity_foreign_id=5001&from=agent&to=bot&type=messenger&app_id="+botApp, botToken)
	if diff := cmp.Diff(answer{200, engage.Status{Status: 200, Message: "Success"}}, answer{status, body}); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	if owner, _ := e.thread(psid); owner != handover.OwnerBot {
		t.Errorf("thread is now %s, want the bot's", owner)
	}
	if got := e.sim.Thread(pageID, psid).OwnerAppID; got != botApp {
		t.Errorf("Meta's owner is %q, want the bot app %s", got, botApp)
	}
}
