package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/internal/clocktest"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/messenger/simulator"
	"github.com/handoverd/handoverd/server"
	"github.com/handoverd/handoverd/store/storetest"
)

const (
	ourApp     = "111"
	ourSecret  = "our-app-secret"
	ourToken   = "our-page-token"
	botApp     = "222"
	botSecret  = "bot-app-secret"
	botToken   = "bot-page-token"
	pageID     = "1001"
	verify     = "verify-me-please"
	agentToken = "agent-token-0123456789"
	botAPIKey  = "bot-api-token-0123456789"
)

var start = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)

// harness is a handoverd process on loopback, a Messenger simulator as
// Facebook, and a bot app with its own webhook receiver and Graph client.
type harness struct {
	t       testing.TB
	backend storetest.Backend
	clock   *clocktest.Fake
	sim     *simulator.Sim
	simURL  string
	cfg     *config.Config
	srv     *server.Server
	url     string
	stop    func()
	bot     *messenger.Graph
	logs    *syncBuffer
	// botPasses makes the bot pass control when asked (request_thread_control).
	botPasses atomic.Bool
	// graphDelay slows every Graph call handoverd makes (to force overlaps).
	graphDelay atomic.Int64
	// graphHook, when set, runs before each Graph call handoverd makes
	// (a test may block there to hold a call in flight).
	graphHook atomic.Pointer[func(*http.Request)]
}

func newHarness(t testing.TB, b storetest.Backend, defaultApp string) *harness {
	t.Helper()
	h := &harness{t: t, backend: b, clock: clocktest.New(start), logs: &syncBuffer{}}
	h.sim = simulator.New(simulator.Config{Now: h.clock.Now, RetryDelay: 5 * time.Millisecond, MaxAttempts: 6})
	simSrv := httptest.NewServer(h.sim.Handler())
	t.Cleanup(func() { h.sim.Close(); simSrv.Close() })
	h.simURL = simSrv.URL + "/"

	h.botPasses.Store(true)
	botHook := httptest.NewServer(http.HandlerFunc(h.botWebhook))
	t.Cleanup(botHook.Close)
	h.sim.AddApp(simulator.App{ID: botApp, Secret: botSecret, WebhookURL: botHook.URL})
	defaultAppID := map[string]string{"bot": botApp, "agent": ourApp, "none": ""}[defaultApp]
	h.sim.AddPage(simulator.Page{ID: pageID, DefaultAppID: defaultAppID, Tokens: map[string]string{ourToken: ourApp, botToken: botApp}})

	h.cfg = &config.Config{
		Listen:   "127.0.0.1:0",
		Database: b.URL,
		Graph:    config.Graph{URL: h.simURL, Version: "v21.0", Timeout: 5 * time.Second},
		App:      config.App{ID: ourApp, Secret: ourSecret, VerifyToken: verify},
		Pages:    []config.Page{{ID: pageID, AccessToken: ourToken, DefaultApp: defaultApp, BotAppID: botApp, ClientID: 1}},
		Users: []config.User{
			{Name: "alice", Role: "agent", Token: agentToken, ClientID: 1},
			{Name: "support-bot", Role: "bot", Token: botAPIKey, ClientID: 1},
			{Name: "other-bot", Role: "bot", Token: "other-client-token-0123", ClientID: 2},
		},
		Threads:   config.Threads{IdleAfter: 24 * time.Hour, SweepEvery: time.Hour},
		Handover:  config.Handover{ControlTimeout: 2 * time.Minute, InterventionIdle: time.Hour, WorkEvery: 20 * time.Millisecond},
		Reconcile: config.Reconcile{Rate: 5, Interval: time.Hour}, // passes run when a test asks (and once at start)
		Inbox:     config.Inbox{Teams: []config.Team{{ID: 1, Name: "support", AccountID: 1, Members: []string{"alice"}}, {ID: 2, Name: "billing", AccountID: 1}}},
		Log:       config.Log{Level: "debug"},
	}
	if err := h.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h.bot = messenger.NewGraph(messenger.GraphOptions{BaseURL: h.simURL, Version: "v21.0", AppID: botApp, AppSecret: botSecret,
		Retry: messenger.Retry{Initial: time.Millisecond}})
	h.startServer()
	t.Cleanup(func() { h.stop() })
	return h
}

// startServer starts a handoverd process and points our app's webhooks at it.
func (h *harness) startServer() {
	h.t.Helper()
	log := zerolog.New(h.logs).Level(zerolog.DebugLevel)
	srv, err := server.New(context.Background(), server.Options{Config: h.cfg, Logger: log, Clock: h.clock.Paced(),
		GraphRetry:     messenger.Retry{Initial: time.Millisecond, Max: 5 * time.Millisecond},
		GraphTransport: delayTransport{h}})
	if err != nil {
		h.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	h.srv, h.url = srv, "http://"+ln.Addr().String()
	h.sim.AddApp(simulator.App{ID: ourApp, Secret: ourSecret, WebhookURL: h.url + "/webhooks/messenger"})
	h.stop = func() {
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("Serve: %v", err)
		}
		srv.Close()
		h.stop = func() {}
	}
}

// restart stops the handoverd process and starts a new one on the same database.
func (h *harness) restart() {
	h.t.Helper()
	h.stop()
	h.startServer()
}

func (h *harness) flush() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := h.sim.Flush(ctx); err != nil {
		h.t.Fatalf("Flush: %v", err)
	}
}

func (h *harness) customerSays(psid, text string) string {
	h.t.Helper()
	mid, err := h.sim.CustomerSends(pageID, psid, simulator.CustomerMessage{Text: text})
	if err != nil {
		h.t.Fatalf("CustomerSends: %v", err)
	}
	h.flush()
	return mid
}

func (h *harness) botPage() messenger.PageRef { return messenger.PageRef{ID: pageID, Token: botToken} }

// thread reads GET /1.0/threads/{page}/{psid} as the agent.
func (h *harness) thread(psid string) (handover.ThreadView, int) {
	h.t.Helper()
	var v handover.ThreadView
	status, body := h.do(http.MethodGet, "/1.0/threads/"+pageID+"/"+psid, agentToken, nil)
	if status == http.StatusOK {
		if err := json.Unmarshal(body, &v); err != nil {
			h.t.Fatalf("decode thread: %v: %s", err, body)
		}
	}
	return v, status
}

func (h *harness) do(method, path, bearer string, body []byte) (int, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// postWebhook sends body to the webhook edge with the given signature header.
func (h *harness) postWebhook(body []byte, signature string) (int, []byte) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.url+"/webhooks/messenger", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set("X-Hub-Signature-256", signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (h *harness) count(query string, args ...any) int {
	h.t.Helper()
	var n int
	if err := h.srv.DB().Reader().QueryRow(query, args...).Scan(&n); err != nil {
		h.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// botWebhook is the bot app's webhook: a cooperative bot passes control to
// whoever requests it.
func (h *harness) botWebhook(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.WriteHeader(http.StatusOK)
	if !h.botPasses.Load() {
		return
	}
	var env struct {
		Entry []struct {
			Messaging []struct {
				Sender  struct{ ID string } `json:"sender"`
				Request *struct {
					RequestedOwnerAppID string `json:"requested_owner_app_id"`
				} `json:"request_thread_control"`
			} `json:"messaging"`
		} `json:"entry"`
	}
	if json.Unmarshal(body, &env) != nil {
		return
	}
	for _, e := range env.Entry {
		for _, m := range e.Messaging {
			if m.Request != nil {
				if err := h.bot.PassThreadControl(context.Background(), h.botPage(), m.Sender.ID, m.Request.RequestedOwnerAppID, "bot agrees"); err != nil {
					h.t.Errorf("bot pass on request: %v", err)
				}
			}
		}
	}
}

type delayTransport struct{ h *harness }

func (d delayTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if hook := d.h.graphHook.Load(); hook != nil {
		(*hook)(r)
	}
	if ms := d.h.graphDelay.Load(); ms > 0 {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// calls lists the Graph calls the simulator received as "app op".
func (h *harness) calls() []string {
	var out []string
	for _, c := range h.sim.Calls() {
		out = append(out, c.AppID+" "+c.Op)
	}
	return out
}

// engage calls POST /1.0/bots/handover.
func (h *harness) engage(token, psid, from, to string, extra string) (int, string) {
	h.t.Helper()
	status, body := h.do(http.MethodPost, "/1.0/bots/handover?access_token="+token+"&identity_foreign_id="+psid+"&from="+from+"&to="+to+"&type=messenger"+extra, "", nil)
	return status, strings.TrimSpace(string(body))
}

// agentJSON calls an agent endpoint with a JSON body and decodes the answer.
func (h *harness) agentJSON(method, path string, in any, out any) int {
	h.t.Helper()
	var b []byte
	if in != nil {
		b, _ = json.Marshal(in)
	}
	status, body := h.do(method, path, agentToken, b)
	if out != nil && status < 300 {
		if err := json.Unmarshal(body, out); err != nil {
			h.t.Fatalf("%s %s: decode %s: %v", method, path, body, err)
		}
	}
	return status
}
