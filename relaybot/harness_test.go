package relaybot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/httpapi"
	"github.com/handoverd/handoverd/inbox"
	"github.com/handoverd/handoverd/internal/clocktest"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/metrics"
	"github.com/handoverd/handoverd/relaybot"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/store/storetest"
	"github.com/handoverd/handoverd/userlike"
)

const (
	botAPIToken = "relay-bot-api-token-0123456789"
	hookToken   = "webhook-header-secret"
)

// flow is one handoverd's relay bots on a real database, wired as
// server.New does: thread control hands every change to the relay bots,
// then to the inbox (which also tells the bots what it knows of the
// contact); the bots' event API is served on loopback, and the bot is a
// scripted webhook receiver on loopback.
type flow struct {
	t      *testing.T
	db     *store.DB
	clock  *clocktest.Fake
	hs     *handover.Service
	in     *inbox.Service
	bots   *relaybot.Service
	url    string
	bot    *scriptedBot
	botURL string
	mids   int
}

func newFlow(t *testing.T, b storetest.Backend, tune func(*userlike.Bot)) *flow {
	t.Helper()
	bot := &scriptedBot{}
	hook := httptest.NewServer(bot)
	t.Cleanup(hook.Close)
	return newRelayProcess(t, b, tune, bot, hook.URL)
}

// newRelayProcess is newFlow calling the bot at url: another process on
// the same database is newRelayProcess(t, b, tune, f.bot, f.botURL).
func newRelayProcess(t *testing.T, b storetest.Backend, tune func(*userlike.Bot), sb *scriptedBot, url string) *flow {
	t.Helper()
	f := &flow{t: t, db: b.Open(t), clock: clocktest.New(t0), bot: sb, botURL: url}
	bot := userlike.Bot{Name: "sample", Pages: []string{page}, WebhookURL: url,
		WebhookHeaders: map[string]userlike.Secret{"API-SECURITY-TOKEN": hookToken}, APIToken: botAPIToken, Mode: userlike.ModeFirewall}
	if tune != nil {
		tune(&bot)
	}
	pages := []config.Page{{ID: page, AccessToken: "tok", DefaultApp: "agent", ClientID: 1}}
	m := metrics.New()
	log := zerolog.Nop()
	f.hs = handover.New(handover.Options{DB: f.db, AppID: ourApp, Pages: pages, Clock: f.clock.Paced(), Metrics: m, Logger: log})
	var err error
	f.in, err = inbox.New(context.Background(), inbox.Options{DB: f.db, Handover: f.hs, Pages: pages,
		Users: []config.User{{Name: "alice", Role: config.RoleAgent, Token: "alice-token-0123456789", ClientID: 1}}, Clock: f.clock.Paced(), Metrics: m, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	f.bots = relaybot.New(relaybot.Options{DB: f.db, Bots: []userlike.Bot{bot}, Handover: f.hs, Contacts: f.in, Clock: f.clock.Paced(), Metrics: m, Logger: log,
		Retry: time.Second, Attempts: 3})
	f.hs.SetConsumers(handover.Consumers{Bots: f.bots, Inbox: f.in})
	r := httpapi.NewRouter(log, m)
	(&userlike.API{Service: f.bots}).Routes(r)
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

// says is the customer p writing to handoverd's app (messaging channel).
func (f *flow) says(p, text string) {
	f.t.Helper()
	f.mids++
	f.clock.Advance(time.Second)
	ev := messenger.Event{Kind: messenger.KindMessage, Channel: messenger.ChannelMessaging, PageID: page, PSID: p, Time: f.clock.Now(),
		Message: &messenger.Message{MID: "m." + strconv.Itoa(f.mids), Text: text}, Raw: json.RawMessage(`{}`)}
	if err := f.hs.Ingest(context.Background(), []messenger.Event{ev}); err != nil {
		f.t.Fatal(err)
	}
}

// work delivers the due webhook calls and runs the due actions once.
func (f *flow) work() {
	f.t.Helper()
	ctx := context.Background()
	if _, err := f.bots.DeliverDue(ctx); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.bots.RunDue(ctx); err != nil {
		f.t.Fatal(err)
	}
}

// queued lists the text of the messages the bots queued for the customer.
func (f *flow) queued(p string) []string {
	f.t.Helper()
	rows, err := f.db.Reader().QueryContext(context.Background(), `SELECT message FROM agent_messages WHERE page_id = $1 AND psid = $2 AND sender_kind = 'relay_bot' ORDER BY id`, page, p)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			f.t.Fatal(err)
		}
		var m struct {
			Text string `json:"text"`
		}
		_ = json.Unmarshal([]byte(raw), &m)
		out = append(out, m.Text)
	}
	return out
}

// conversation is what the agents' inbox shows of the customer p.
type conversation struct {
	Status   string
	Contact  string
	Email    string
	Messages []string // "type: content", private notes marked
}

func (f *flow) conversation(p string) conversation {
	f.t.Helper()
	ctx := context.Background()
	var id int64
	if err := f.db.Reader().QueryRowContext(ctx, `SELECT id FROM conversations WHERE psid = $1 ORDER BY id DESC LIMIT 1`, p).Scan(&id); err != nil {
		f.t.Fatalf("conversation of %s: %v", p, err)
	}
	v, err := f.in.Conversation(ctx, 1, id)
	if err != nil {
		f.t.Fatal(err)
	}
	list, err := f.in.Messages(ctx, 1, id, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	c := conversation{Status: v.Status, Contact: v.Meta.Sender.Name, Email: v.Meta.Sender.Email, Messages: []string{}}
	for _, m := range list.Payload {
		kind := map[int]string{0: "in", 1: "out", 2: "activity"}[m.MessageType]
		if m.Private {
			kind = "note by " + m.Sender.Name
		}
		c.Messages = append(c.Messages, kind+": "+m.Content)
	}
	return c
}

// session is the relay session kept for the customer p (the newest).
func (f *flow) session(p string) (status, reason, cid string) {
	f.t.Helper()
	err := f.db.Reader().QueryRowContext(context.Background(), `SELECT status, end_reason, cid FROM relay_sessions WHERE psid = $1 ORDER BY id DESC LIMIT 1`, p).
		Scan(&status, &reason, &cid)
	if err != nil {
		f.t.Fatalf("session of %s: %v", p, err)
	}
	return status, reason, cid
}

// post sends a body to the bots' event API with token and returns the status and error field.
func (f *flow) post(token string, body any) (int, string) {
	f.t.Helper()
	var raw []byte
	if s, ok := body.(string); ok {
		raw = []byte(s)
	} else {
		raw, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest("POST", f.url+"/api/chatbot/v1/events", bytes.NewReader(raw))
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
		Error struct {
			Field string `json:"field"`
		} `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error.Field
}

// event is one bot event in the wire format.
func event(cid string, context any, name string, payload any) map[string]any {
	info := map[string]any{"cid": cid}
	if context != nil {
		info["context"] = context
	}
	return map[string]any{"info": info, "packet": map[string]any{"name": name, "payload": payload}}
}

// botCall is what the bot received in one webhook call.
type botCall struct {
	Packet  string
	Body    string // packet.payload.body (or, for a click, payload.label=value)
	Contact string
	State   any // info.context.state
}

// scriptedBot answers each webhook call with the next scripted answer
// (200 with no events when the script is out) and records the calls.
type scriptedBot struct {
	mu     sync.Mutex
	script []func(cid string) (int, any)
	calls  []botCall
	header []string
}

func (b *scriptedBot) answer(fs ...func(cid string) (int, any)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.script = append(b.script, fs...)
}

func (b *scriptedBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var msg struct {
		Info struct {
			CID     string         `json:"cid"`
			Context map[string]any `json:"context"`
			Contact struct {
				Name *string `json:"name"`
			} `json:"contact"`
		} `json:"info"`
		Packet struct {
			Name    string `json:"name"`
			Payload struct {
				Body  string `json:"body"`
				Label string `json:"label"`
				Value string `json:"value"`
			} `json:"payload"`
		} `json:"packet"`
	}
	_ = json.Unmarshal(raw, &msg)
	if msg.Packet.Name == "click" {
		msg.Packet.Payload.Body = msg.Packet.Payload.Label + "=" + msg.Packet.Payload.Value
	}
	name := ""
	if msg.Info.Contact.Name != nil {
		name = *msg.Info.Contact.Name
	}
	b.mu.Lock()
	b.calls = append(b.calls, botCall{Packet: msg.Packet.Name, Body: msg.Packet.Payload.Body, Contact: name, State: msg.Info.Context["state"]})
	b.header = append(b.header, r.Header.Get("API-SECURITY-TOKEN"))
	status, out := http.StatusOK, any(nil)
	if len(b.script) > 0 {
		next := b.script[0]
		b.script = b.script[1:]
		status, out = next(msg.Info.CID)
	}
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if out != nil {
		_ = json.NewEncoder(w).Encode(out)
	}
}

func (b *scriptedBot) received() []botCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]botCall(nil), b.calls...)
}
