package chatwoot_test

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
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/metrics"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/store/storetest"
)

const (
	pageID     = "1001"                    // account 1's Page
	otherPage  = "2002"                    // account 2's Page
	aliceToken = "alice-token-0123456789"  // agent, account 1
	bobToken   = "bob-token-0123456789ab"  // agent, account 2
	adminToken = "admin-token-0123456789"  // admin, every account
	botToken   = "bot-token-0123456789abc" // bot, account 1
)

// env is the Chatwoot API on loopback over the real inbox and thread
// control on a real database, wired as server.New wires them.
type env struct {
	t     *testing.T
	db    *store.DB
	clock *clocktest.Fake
	hs    *handover.Service
	in    *inbox.Service
	url   string
	mids  int
	// logs is what the router logs (access and error lines).
	logs *logBuffer
}

// logBuffer collects log lines written from the server's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newEnv(t *testing.T, b storetest.Backend) *env {
	t.Helper()
	e := &env{t: t, db: b.Open(t), clock: clocktest.New(time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)), logs: &logBuffer{}}
	pages := []config.Page{
		{ID: pageID, AccessToken: "page-token", DefaultApp: "agent", ClientID: 1},
		{ID: otherPage, AccessToken: "other-page-token", DefaultApp: "agent", ClientID: 2},
	}
	users := []config.User{
		{Name: "alice", Role: config.RoleAgent, Token: aliceToken, ClientID: 1},
		{Name: "bob", Role: config.RoleAgent, Token: bobToken, ClientID: 2},
		{Name: "root", Role: config.RoleAdmin, Token: adminToken},
		{Name: "support-bot", Role: config.RoleBot, Token: botToken, ClientID: 1},
	}
	m, log := metrics.New(), zerolog.Nop()
	e.hs = handover.New(handover.Options{DB: e.db, AppID: "111", Pages: pages, Clock: e.clock.Paced(), Metrics: m, Logger: log})
	var err error
	e.in, err = inbox.New(context.Background(), inbox.Options{DB: e.db, Handover: e.hs, Pages: pages, Users: users, Clock: e.clock.Paced(),
		Metrics: m, Logger: log, Inbox: config.Inbox{Teams: []config.Team{{ID: 1, Name: "support", AccountID: 1, Members: []string{"alice"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	e.hs.SetConsumers(handover.Consumers{Inbox: e.in})
	au, err := auth.NewUsers(users)
	if err != nil {
		t.Fatal(err)
	}
	r := httpapi.NewRouter(zerolog.New(e.logs).Level(zerolog.DebugLevel), m)
	(&chatwoot.API{Service: e.in, Users: au}).Routes(r)
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// each runs fn against a fresh env on SQLite and on PostgreSQL.
func each(t *testing.T, fn func(t *testing.T, e *env)) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) { fn(t, newEnv(t, b)) })
}

// customer has psid write text to page through thread control (the
// webhook edge's way in), one second after the clock's last tick.
func (e *env) customer(page, psid, text string) {
	e.t.Helper()
	e.mids++
	e.clock.Advance(time.Second)
	ev := messenger.Event{Kind: messenger.KindMessage, Channel: messenger.ChannelMessaging, PageID: page, PSID: psid, Time: e.clock.Now(),
		Message: &messenger.Message{MID: fmt.Sprintf("m.%d", e.mids), Text: text}, Raw: json.RawMessage(`{}`)}
	if err := e.hs.Ingest(context.Background(), []messenger.Event{ev}); err != nil {
		e.t.Fatalf("Ingest: %v", err)
	}
}

// request is one call to the API: a body that is a string or []byte is
// sent as is, anything else as JSON; contentType overrides the JSON one.
type request struct {
	method, path, token string
	body                any
	contentType         string
}

// do sends req and returns the answer.
func (e *env) do(req request) *http.Response {
	e.t.Helper()
	var rd io.Reader
	ct := req.contentType
	switch b := req.body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	if rd != nil && ct == "" {
		ct = "application/json"
	}
	r, err := http.NewRequest(req.method, e.url+req.path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	if req.token != "" {
		r.Header.Set("api_access_token", req.token)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

// call sends req and decodes a 2xx JSON answer into out (when not nil).
func (e *env) call(req request, out any) (int, []byte) {
	e.t.Helper()
	resp := e.do(req)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: decode %T: %v: %s", req.method, req.path, out, err, raw)
		}
	}
	return resp.StatusCode, raw
}

// must is call that fails the test unless the answer is 200.
func (e *env) must(method, path, token string, body, out any) {
	e.t.Helper()
	if st, raw := e.call(request{method: method, path: path, token: token, body: body}, out); st != http.StatusOK {
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

// state is everything the inbox keeps that an API call could change: the
// number of rows of each of its tables, and the account's event names.
func (e *env) state() map[string]any {
	e.t.Helper()
	ctx := context.Background()
	out := map[string]any{}
	for _, table := range []string{"inboxes", "contacts", "contact_inboxes", "conversations", "conversation_labels", "inbox_messages", "inbox_attachments", "inbox_events"} {
		var n int
		if err := e.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			e.t.Fatal(err)
		}
		out[table] = n
	}
	rows, err := e.db.Reader().QueryContext(ctx, `SELECT id, status, coalesce(assignee_id, 0), coalesce(team_id, 0), coalesce(agent_last_seen_at, 0) FROM conversations ORDER BY id`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var convs []string
	for rows.Next() {
		var id, assignee, team, seen int64
		var status string
		if err := rows.Scan(&id, &status, &assignee, &team, &seen); err != nil {
			e.t.Fatal(err)
		}
		convs = append(convs, fmt.Sprintf("%d %s assignee=%d team=%d seen=%d", id, status, assignee, team, seen))
	}
	out["conversations' state"] = convs
	return out
}

func path(format string, args ...any) string {
	return "/api/v1/accounts/" + fmt.Sprintf(format, args...)
}

// apiConversation creates an API inbox, a contact in it and a conversation
// of that contact in account 1, returning the inbox and conversation ids.
func (e *env) apiConversation(name string) (inboxID, convID int64) {
	e.t.Helper()
	var iv inbox.InboxView
	e.must("POST", path("1/inboxes"), aliceToken, map[string]any{"name": "site", "channel": map[string]any{"type": "api"}}, &iv)
	var c inbox.ContactCreated
	e.must("POST", path("1/contacts"), aliceToken, map[string]any{"inbox_id": iv.ID, "name": name}, &c)
	var conv inbox.ConversationView
	e.must("POST", path("1/conversations"), aliceToken, map[string]any{"source_id": c.Payload.ContactInbox.SourceID}, &conv)
	return iv.ID, conv.ID
}
