package lexer_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/httpapi"
	"github.com/handoverd/handoverd/inbox"
	"github.com/handoverd/handoverd/internal/clocktest"
	"github.com/handoverd/handoverd/lexer"
	"github.com/handoverd/handoverd/metrics"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/store/storetest"
)

const (
	pageID     = "1001"                     // client 1's Page
	otherPage  = "2002"                     // client 2's Page
	botToken   = "bot-token-0123456789abc"  // bot, client 1
	agentToken = "agent-token-0123456789ab" // agent, client 1
)

// env is the Chatbot User API on loopback over real handover and inbox
// services on a new SQLite file.
type env struct {
	t     *testing.T
	db    *store.DB
	met   *metrics.Metrics
	clock *clocktest.Fake
	url   string
}

// newEnv serves the API with burst calls allowed per token at once.
func newEnv(t *testing.T, burst int) *env {
	t.Helper()
	e := &env{t: t, db: storetest.SQLite(t).Open(t), met: metrics.New()}
	clock := clocktest.New(time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC))
	e.clock = clock
	pages := []config.Page{
		{ID: pageID, AccessToken: "page-token", DefaultApp: "bot", BotAppID: "222", ClientID: 1},
		{ID: otherPage, AccessToken: "other-page-token", DefaultApp: "bot", BotAppID: "222", ClientID: 2},
	}
	users := []config.User{
		{Name: "support-bot", Role: config.RoleBot, Token: botToken, ClientID: 1},
		{Name: "alice", Role: config.RoleAgent, Token: agentToken, ClientID: 1},
	}
	hs := handover.New(handover.Options{DB: e.db, AppID: "111", Pages: pages, Clock: clock.Paced(), Metrics: e.met, Logger: zerolog.Nop()})
	in, err := inbox.New(context.Background(), inbox.Options{DB: e.db, Handover: hs, Pages: pages, Users: users,
		ClaimGrace: 5 * time.Second, Clock: clock.Paced(), Metrics: e.met, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	hs.SetConsumers(handover.Consumers{Inbox: in})
	au, err := auth.NewUsers(users)
	if err != nil {
		t.Fatal(err)
	}
	r := httpapi.NewRouter(zerolog.Nop(), e.met)
	(&lexer.API{Service: in, Users: au, Metrics: e.met, RatePerSecond: 0.001, Burst: burst}).Routes(r)
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// answer is a call's status, Retry-After header and body.
type answer struct {
	Status     int
	RetryAfter string
	Body       map[string]string
}

// post calls the API as token on client's path.
func (e *env) post(action, client, token, body string) answer {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+"/api/clients/"+client+"/bots/objects/"+action, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Auth-Api-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	if err := json.Unmarshal(raw, &a.Body); err != nil {
		e.t.Fatalf("answer is not a JSON object of strings: %v: %s", err, raw)
	}
	return a
}

// objects is the number of claims and echoes recorded.
func (e *env) objects() int {
	e.t.Helper()
	var n int
	if err := e.db.Reader().QueryRowContext(context.Background(), `SELECT count(*) FROM bot_objects`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

const (
	claim = `{"object_id":"m_1","published_at":"2017-08-01t05:29:44Z","source":"facebook","state":"closed","account_id":"1001"}`
	echo  = `{"object_id":"m_2","published_at":1458692752478,"source":"facebook","account_id":1001}`
)

// TestRefusals: each refusal has Lexer's body, its status from the one
// table (422 and 400 where Lexer answers 500), is counted by result, and
// records nothing.
func TestRefusals(t *testing.T) {
	e := newEnv(t, 1000)
	msg := func(s string) map[string]string { return map[string]string{"error": s} }
	tests := []struct {
		name, action, client, token, body string
		want                              answer
		result                            string
	}{
		{"account not integrated", "claim", "1", botToken, strings.Replace(claim, pageID, "12345", 1),
			answer{Status: 400, Body: map[string]string{"status": "400 Invalid Account", "error": "Cannot find an integrated account: 12345"}}, "invalid"},
		{"another client's account", "echo", "1", botToken, strings.Replace(echo, pageID, otherPage, 1),
			answer{Status: 400, Body: map[string]string{"status": "400 Invalid Account", "error": "Cannot find an integrated account: 2002"}}, "invalid"},
		{"account_id with NUL", "claim", "1", botToken, strings.Replace(claim, `"1001"`, `"10\u00001"`, 1),
			answer{Status: 400, Body: msg("contains a NUL character")}, "invalid"},
		{"object_id missing", "claim", "1", botToken, `{"published_at":1458692752478,"source":"facebook","state":"closed","account_id":"1001"}`,
			answer{Status: 422, Body: msg("object_id is missing")}, "invalid"},
		{"object_id not a string or number", "echo", "1", botToken, strings.Replace(echo, `"m_2"`, `true`, 1),
			answer{Status: 422, Body: msg("object_id does not have a valid value")}, "invalid"},
		{"state missing", "claim", "1", botToken, echo, answer{Status: 422, Body: msg("state is missing")}, "invalid"},
		{"account_id missing", "echo", "1", botToken, `{"object_id":"m","published_at":1,"source":"facebook"}`,
			answer{Status: 422, Body: msg("account_id is missing")}, "invalid"},
		{"source not facebook", "claim", "1", botToken, strings.Replace(claim, `"facebook"`, `"twitter"`, 1),
			answer{Status: 422, Body: msg("source does not have a valid value")}, "invalid"},
		{"state not closed", "claim", "1", botToken, strings.Replace(claim, `"closed"`, `"open"`, 1),
			answer{Status: 422, Body: msg("state does not have a valid value")}, "invalid"},
		{"published_at not a time", "claim", "1", botToken, strings.Replace(claim, `"2017-08-01t05:29:44Z"`, `"yesterday"`, 1),
			answer{Status: 422, Body: msg("published_at does not have a valid value")}, "invalid"},
		{"not JSON", "claim", "1", botToken, `{"object_id":`, answer{Status: 400, Body: msg("is not valid JSON: unexpected end of JSON input")}, "invalid"},
		{"not an object", "echo", "1", botToken, `[1]`, answer{Status: 400, Body: msg("must be a JSON object")}, "invalid"},
		{"too large", "echo", "1", botToken, `{"object_id":"` + strings.Repeat("x", lexer.MaxBody) + `"}`,
			answer{Status: 413, Body: msg("request body is over 65536 bytes")}, "invalid"},
		{"no token", "claim", "1", "", claim, answer{Status: 401, Body: msg("missing API token")}, "unauthorized"},
		{"agent token", "claim", "1", agentToken, claim, answer{Status: 403, Body: msg("role agent may not use this API")}, "unauthorized"},
		{"another client's path", "claim", "2", botToken, claim, answer{Status: 403, Body: msg("this token may not act for client 2")}, "unauthorized"},
		{"client not a number", "echo", "x", botToken, echo, answer{Status: 403, Body: msg("this token may not act for client x")}, "unauthorized"},
	}
	// The router refuses some input before the handler runs (so it is not
	// counted), in Lexer's body too.
	routerTests := []struct {
		name, action, client string
		want                 answer
	}{
		{"NUL in client_id", "claim", "1%00", answer{Status: 400, Body: msg("contains a NUL character")}},
		{"invalid UTF-8 in a query value", "echo?x=%FF", "1", answer{Status: 400, Body: msg("is not valid UTF-8")}},
	}
	for _, tt := range routerTests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, e.post(tt.action, tt.client, botToken, claim)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counted := testutil.ToFloat64(e.met.Claims.WithLabelValues(tt.action, tt.result))
			if diff := cmp.Diff(tt.want, e.post(tt.action, tt.client, tt.token, tt.body)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if got := testutil.ToFloat64(e.met.Claims.WithLabelValues(tt.action, tt.result)) - counted; got != 1 {
				t.Errorf("counted %v calls as %s, want 1", got, tt.result)
			}
			if n := e.objects(); n != 0 {
				t.Errorf("%d objects recorded, want none", n)
			}
		})
	}
}

// TestAccepted: a claim and an echo are answered 201 {"status":"ok"} and
// recorded once; a repeat is answered the same and records nothing more.
func TestAccepted(t *testing.T) {
	e := newEnv(t, 1000)
	ok := answer{Status: 201, Body: map[string]string{"status": "ok"}}
	for i, call := range []struct{ action, body string }{{"claim", claim}, {"echo", echo}, {"claim", claim}} {
		if diff := cmp.Diff(ok, e.post(call.action, "1", botToken, call.body)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", call.action, diff)
		}
		if want := min(i+1, 2); e.objects() != want {
			t.Errorf("after call %d: %d objects recorded, want %d", i+1, e.objects(), want)
		}
	}
	if got := testutil.ToFloat64(e.met.Claims.WithLabelValues("claim", "accepted")); got != 2 {
		t.Errorf("counted %v claims accepted, want 2", got)
	}
}

// TestRateLimit: a token over its burst is refused 429 with Retry-After,
// and the refused call records nothing.
func TestRateLimit(t *testing.T) {
	e := newEnv(t, 1)
	if got := e.post("claim", "1", botToken, claim); got.Status != 201 {
		t.Fatalf("first call = %+v, want 201", got)
	}
	got := e.post("echo", "1", botToken, echo)
	if got.RetryAfter == "" || got.RetryAfter == "0" {
		t.Errorf("Retry-After = %q, want a number of seconds", got.RetryAfter)
	}
	got.RetryAfter = ""
	if diff := cmp.Diff(answer{Status: 429, Body: map[string]string{"error": "rate limit exceeded"}}, got); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	if n := e.objects(); n != 1 {
		t.Errorf("%d objects recorded, want only the first call's", n)
	}
	// The limit runs on the inbox's clock: once it has moved on by a
	// token's worth (1,000 s at 0.001 a second), the token may call again.
	e.clock.Advance(999 * time.Second)
	if got := e.post("echo", "1", botToken, echo); got.Status != 429 {
		t.Errorf("after 999 s: %+v, want 429", got)
	}
	e.clock.Advance(time.Second)
	if got := e.post("echo", "1", botToken, echo); got.Status != 201 {
		t.Errorf("after 1,000 s: %+v, want 201", got)
	}
}
