package inbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/chatwoot"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/httpapi"
	"github.com/handoverd/handoverd/inbox"
	"github.com/handoverd/handoverd/internal/clocktest"
	"github.com/handoverd/handoverd/lexer"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/messenger/simulator"
	"github.com/handoverd/handoverd/metrics"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/store/storetest"
)

const (
	ourApp      = "111"
	botApp      = "222"
	pageID      = "1001"                    // account 1's Page; the relay bot is its default app
	otherPage   = "2002"                    // account 2's Page
	aliceToken  = "alice-token-0123456789"  // agent, account 1
	bobToken    = "bob-token-0123456789ab"  // agent, account 2
	adminToken  = "admin-token-0123456789"  // admin, every account
	botToken    = "bot-token-0123456789abc" // bot, account 1
	hookSecret  = "account-webhook-secret"
	simPageTok  = "our-page-token"
	simBotToken = "bot-page-token"
)

var start = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)

// env is one handoverd's inbox on a real database: the handover service
// feeding the inbox service, the inbox and Lexer APIs on loopback, a
// Messenger simulator as Facebook, and a webhook receiver for account 1.
type env struct {
	t     *testing.T
	b     storetest.Backend
	db    *store.DB
	clock *clocktest.Fake
	hs    *handover.Service
	in    *inbox.Service
	met   *metrics.Metrics
	url   string
	hook  *receiver
	sim   *simulator.Sim
	// simURL is the simulator's Graph base URL; botHook is the bot app's
	// webhook receiver there.
	simURL  string
	botHook *receiver
	// logs is everything the services logged.
	logs *logBuffer
}

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// newEnv builds the services as server.New does, on b's database.
func newEnv(t *testing.T, b storetest.Backend) *env {
	t.Helper()
	return newProcess(t, b, newReceiver(t))
}

// newProcess is newEnv with the account's webhook at hook: another
// process on the same database is newProcess(t, e.b, e.hook).
func newProcess(t *testing.T, b storetest.Backend, hook *receiver) *env {
	t.Helper()
	e := &env{t: t, b: b, db: b.Open(t), clock: clocktest.New(start), met: metrics.New(), logs: &logBuffer{}}
	e.hook = hook

	e.sim = simulator.New(simulator.Config{Now: e.clock.Now, RetryDelay: 5 * time.Millisecond, MaxAttempts: 3})
	simSrv := httptest.NewServer(e.sim.Handler())
	t.Cleanup(func() { e.sim.Close(); simSrv.Close() })
	e.simURL = simSrv.URL + "/"
	e.botHook = newReceiver(t)
	e.sim.AddApp(simulator.App{ID: botApp, Secret: "bot-app-secret", WebhookURL: e.botHook.url})
	e.sim.AddPage(simulator.Page{ID: pageID, DefaultAppID: botApp, Tokens: map[string]string{simPageTok: ourApp, simBotToken: botApp}})

	pages := []config.Page{
		{ID: pageID, AccessToken: simPageTok, DefaultApp: "bot", BotAppID: botApp, ClientID: 1},
		{ID: otherPage, AccessToken: "other-page-token", DefaultApp: "bot", BotAppID: botApp, ClientID: 2},
	}
	users := []config.User{
		{Name: "alice", Role: config.RoleAgent, Token: aliceToken, ClientID: 1},
		{Name: "bob", Role: config.RoleAgent, Token: bobToken, ClientID: 2},
		{Name: "root", Role: config.RoleAdmin, Token: adminToken},
		{Name: "support-bot", Role: config.RoleBot, Token: botToken, ClientID: 1},
	}
	inboxCfg := config.Inbox{Teams: []config.Team{
		{ID: 1, Name: "support", AccountID: 1, Members: []string{"alice"}},
		{ID: 2, Name: "billing", AccountID: 1},
		{ID: 3, Name: "elsewhere", AccountID: 2, Members: []string{"bob"}},
	}}
	webhooks := []config.Webhook{{URL: e.hook.url, Secret: hookSecret, AccountID: 1}}
	log := zerolog.New(e.logs).Level(zerolog.DebugLevel)
	graph := messenger.NewGraph(messenger.GraphOptions{BaseURL: simSrv.URL + "/", Version: "v21.0", AppID: ourApp, AppSecret: "our-app-secret",
		Timeout: 5 * time.Second, Retry: messenger.Retry{Initial: time.Millisecond, Max: 5 * time.Millisecond}, Metrics: e.met})
	e.hs = handover.New(handover.Options{DB: e.db, AppID: ourApp, Pages: pages, IdleAfter: 24 * time.Hour, Clock: e.clock.Paced(),
		Metrics: e.met, Logger: log, Graph: graph,
		Handover: config.Handover{ControlTimeout: 2 * time.Minute, InterventionIdle: time.Hour, WorkEvery: 20 * time.Millisecond}})
	var err error
	e.in, err = inbox.New(context.Background(), inbox.Options{DB: e.db, Handover: e.hs, Pages: pages, Users: users, Webhooks: webhooks,
		Inbox: inboxCfg, ClaimGrace: 5 * time.Second, Clock: e.clock.Paced(), Metrics: e.met, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e.hs.SetConsumers(handover.Consumers{Inbox: e.in})
	au, err := auth.NewUsers(users)
	if err != nil {
		t.Fatal(err)
	}
	r := httpapi.NewRouter(log, e.met)
	(&chatwoot.API{Service: e.in, Users: au}).Routes(r)
	(&lexer.API{Service: e.in, Users: au, Metrics: e.met, RatePerSecond: 1000, Burst: 1000}).Routes(r)
	(&messenger.Webhook{AppSecret: "our-app-secret", VerifyToken: "verify-me", Ingester: e.hs, Metrics: e.met, Now: e.clock.Now,
		KnownPage: func(id string) bool { return id == pageID || id == otherPage }}).Routes(r)
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)
	e.url = srv.URL
	e.sim.AddApp(simulator.App{ID: ourApp, Secret: "our-app-secret", WebhookURL: e.url + "/webhooks/messenger"})
	return e
}

// runHandover runs the handover service's background work (the agent
// message sender, control timeouts) until the test ends.
func (e *env) runHandover() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.hs.Run(ctx, time.Hour); close(done) }()
	e.t.Cleanup(func() { cancel(); <-done })
}

// eventually waits (up to 20 s) until ok holds, failing the test if it never does.
func (e *env) eventually(ok func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			e.t.Fatal("condition never held")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// flush waits until the simulator has delivered every webhook.
func (e *env) flush() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.sim.Flush(ctx); err != nil {
		e.t.Fatalf("Flush: %v", err)
	}
}

// each runs fn against a fresh env on SQLite and on PostgreSQL.
func each(t *testing.T, fn func(t *testing.T, e *env)) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) { fn(t, newEnv(t, b)) })
}

// ingest applies webhook events through thread control, as the webhook edge does.
func (e *env) ingest(evs ...messenger.Event) {
	e.t.Helper()
	for i := range evs {
		if evs[i].Raw == nil {
			evs[i].Raw = json.RawMessage(`{}`)
		}
	}
	if err := e.hs.Ingest(context.Background(), evs); err != nil {
		e.t.Fatalf("Ingest: %v", err)
	}
}

// customer is a customer's text message on page's standby channel (the bot
// owns the thread), one second after the clock's last tick.
func (e *env) customer(page, psid, mid, text string) messenger.Event {
	e.clock.Advance(time.Second)
	return messenger.Event{Kind: messenger.KindMessage, Channel: messenger.ChannelStandby, PageID: page, PSID: psid, Time: e.clock.Now(),
		Message: &messenger.Message{MID: mid, Text: text}}
}

// toUs turns a customer event into one on the messaging channel (handoverd owns the thread).
func toUs(ev messenger.Event) messenger.Event {
	ev.Channel = messenger.ChannelMessaging
	return ev
}

// passToUs is the bot passing the thread to handoverd (messaging channel).
func (e *env) passToUs(page, psid string) messenger.Event {
	e.clock.Advance(time.Second)
	return messenger.Event{Kind: messenger.KindPass, Channel: messenger.ChannelMessaging, PageID: page, PSID: psid, Time: e.clock.Now(),
		Handover: &messenger.Handover{PreviousOwnerAppID: botApp, NewOwnerAppID: ourApp, Metadata: "human please"}}
}

// call sends one request to the API with token as api_access_token and
// decodes a JSON answer into out (when not nil).
func (e *env) call(method, path, token string, body any, out any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
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
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("api_access_token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: decode %T: %v: %s", method, path, out, err, raw)
		}
	}
	return resp.StatusCode, raw
}

// must is call that fails the test unless the answer is 200.
func (e *env) must(method, path, token string, body any, out any) {
	e.t.Helper()
	if st, raw := e.call(method, path, token, body, out); st != http.StatusOK {
		e.t.Fatalf("%s %s: %d %s", method, path, st, raw)
	}
}

// errorBody is the JSON error answer of the one status table.
type errorBody struct {
	Status int
	Code   string
	Field  string
}

// failure decodes an error answer.
func failure(t *testing.T, status int, raw []byte) errorBody {
	t.Helper()
	var b struct {
		Error struct {
			Code  string `json:"code"`
			Field string `json:"field"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, raw)
	}
	return errorBody{Status: status, Code: b.Error.Code, Field: b.Error.Field}
}

// conversationOf returns the id of the conversation on page with psid.
func (e *env) conversationOf(page, psid string) int64 {
	e.t.Helper()
	var id int64
	err := e.db.Reader().QueryRowContext(context.Background(), `SELECT c.id FROM conversations c JOIN contact_inboxes ci ON ci.id = c.contact_inbox_id
		JOIN inboxes i ON i.id = c.inbox_id WHERE i.page_id = $1 AND ci.source_id = $2 ORDER BY c.id DESC LIMIT 1`, page, psid).Scan(&id)
	if err != nil {
		e.t.Fatalf("conversation of %s/%s: %v", page, psid, err)
	}
	return id
}

// inboxOf returns the inbox id of a Page.
func (e *env) inboxOf(page string) int64 {
	e.t.Helper()
	var id int64
	if err := e.db.Reader().QueryRowContext(context.Background(), `SELECT id FROM inboxes WHERE page_id = $1`, page).Scan(&id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// events lists the account's events (name and conversation), as the live stream would.
func (e *env) events(account int64) []string {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.in.Sequence(ctx); err != nil {
		e.t.Fatal(err)
	}
	evs, err := e.in.EventsAfter(ctx, account, 0, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	out := []string{}
	for _, ev := range evs {
		out = append(out, ev.Event)
	}
	return out
}

func path(format string, args ...any) string {
	return "/api/v1/accounts/" + fmt.Sprintf(format, args...)
}

// receiver is a webhook receiver on loopback that answers with the
// statuses queued in next (200 when none are left) and keeps every request.
type receiver struct {
	url  string
	mu   sync.Mutex
	next []int
	got  []received
}

type received struct {
	status                      int
	delivery, timestamp, signed string
	body                        []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		status := http.StatusOK
		if len(r.next) > 0 {
			status, r.next = r.next[0], r.next[1:]
		}
		r.got = append(r.got, received{status: status, delivery: req.Header.Get(inbox.HeaderDelivery),
			timestamp: req.Header.Get(inbox.HeaderTimestamp), signed: req.Header.Get(inbox.HeaderSignature), body: body})
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/hook"
	return r
}

func (r *receiver) answer(statuses ...int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next = append(r.next, statuses...)
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}
