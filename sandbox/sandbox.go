// Package sandbox runs handoverd with no Facebook app: the broker on an
// embedded SQLite file, the project's Messenger simulator standing in for
// Facebook, one Page, a demo bot app and an agent token — and prints a
// walkthrough a newcomer can follow with curl.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/messenger/simulator"
	"github.com/handoverd/handoverd/server"
)

// Fixed identities of the sandbox world.
const (
	PageID     = "1001"
	OurAppID   = "111"
	BotAppID   = "222"
	AgentToken = "sandbox-agent-token-0123456789"
	BotToken   = "sandbox-bot-token-0123456789"
	ourSecret  = "sandbox-app-secret"
	botSecret  = "sandbox-bot-secret"
	ourPageTok = "sandbox-page-token"
	botPageTok = "sandbox-bot-page-token"
	verify     = "sandbox-verify-token"
)

// Options configures the sandbox.
type Options struct {
	// Listen is handoverd's address (default 127.0.0.1:8080).
	Listen string
	// SimListen is the simulator's address (default 127.0.0.1:9090).
	SimListen string
	// BotListen is the demo bot's webhook address (default 127.0.0.1:0).
	BotListen string
	// Dir holds the SQLite file (default: a new temporary directory,
	// removed when the sandbox stops).
	Dir string
	// Logger receives handoverd's and the simulator's logs.
	Logger zerolog.Logger
}

// Sandbox is a running sandbox.
type Sandbox struct {
	// URL is handoverd's base URL.
	URL string
	// SimURL is the simulator's base URL.
	SimURL string
	// Sim is the simulator.
	Sim *simulator.Sim
	// Server is the handoverd process.
	Server *server.Server

	dbPath string
	run    func(ctx context.Context) error
}

// Start builds the sandbox and binds its listeners; Run serves it.
func Start(ctx context.Context, o Options) (*Sandbox, error) {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:8080"
	}
	if o.SimListen == "" {
		o.SimListen = "127.0.0.1:9090"
	}
	if o.BotListen == "" {
		o.BotListen = "127.0.0.1:0"
	}
	removeDir := func() {}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "handoverd-sandbox-")
		if err != nil {
			return nil, err
		}
		o.Dir = d
		removeDir = func() { _ = os.RemoveAll(d) } // a temporary sandbox leaves nothing behind
	}
	simLn, err := net.Listen("tcp", o.SimListen)
	if err != nil {
		removeDir()
		return nil, fmt.Errorf("sandbox: simulator listener: %w", err)
	}
	brokerLn, err := net.Listen("tcp", o.Listen)
	if err != nil {
		simLn.Close()
		removeDir()
		return nil, fmt.Errorf("sandbox: broker listener: %w", err)
	}
	botLn, err := net.Listen("tcp", o.BotListen)
	if err != nil {
		simLn.Close()
		brokerLn.Close()
		removeDir()
		return nil, fmt.Errorf("sandbox: bot listener: %w", err)
	}
	closeAll := func() { simLn.Close(); brokerLn.Close(); botLn.Close(); removeDir() }
	sb := &Sandbox{
		URL:    "http://" + brokerLn.Addr().String(),
		SimURL: "http://" + simLn.Addr().String(),
		dbPath: filepath.Join(o.Dir, "handoverd.db"),
	}
	sim := simulator.New(simulator.Config{Logger: o.Logger.With().Str("component", "simulator").Logger(), RetryDelay: 100 * time.Millisecond})
	sim.AddApp(simulator.App{ID: OurAppID, Secret: ourSecret, WebhookURL: sb.URL + "/webhooks/messenger"})
	sim.AddApp(simulator.App{ID: BotAppID, Secret: botSecret, WebhookURL: "http://" + botLn.Addr().String() + "/webhook"})
	sim.AddPage(simulator.Page{ID: PageID, DefaultAppID: BotAppID, Tokens: map[string]string{ourPageTok: OurAppID, botPageTok: BotAppID}})
	sb.Sim = sim

	cfg := &config.Config{
		Listen:   brokerLn.Addr().String(),
		Database: "sqlite://" + sb.dbPath,
		Graph:    config.Graph{URL: sb.SimURL + "/", Version: "v21.0", Timeout: 5 * time.Second},
		App:      config.App{ID: OurAppID, Secret: ourSecret, VerifyToken: verify},
		Pages:    []config.Page{{ID: PageID, AccessToken: ourPageTok, DefaultApp: config.DefaultAppBot, BotAppID: BotAppID, ClientID: 1}},
		Users: []config.User{
			{Name: "alice", Role: config.RoleAgent, Token: AgentToken, ClientID: 1},
			{Name: "demo-bot", Role: config.RoleBot, Token: BotToken, ClientID: 1},
		},
		Threads:  config.Threads{IdleAfter: config.DefaultIdleAfter, SweepEvery: config.DefaultSweepEvery},
		Handover: config.Handover{ControlTimeout: config.DefaultControlWait, InterventionIdle: config.DefaultInterventionIdle, WorkEvery: 200 * time.Millisecond},
		Claims:   config.Claims{Grace: 5 * time.Second, RatePerSecond: 20, Burst: 40},
		Log:      config.Log{Level: "info"},
	}
	if err := cfg.Validate(); err != nil {
		closeAll()
		return nil, err
	}
	srv, err := server.New(ctx, server.Options{Config: cfg, Logger: o.Logger.With().Str("component", "handoverd").Logger(), ShutdownTimeout: 5 * time.Second})
	if err != nil {
		closeAll()
		return nil, err
	}
	sb.Server = srv
	bot := &DemoBot{
		Graph:     messenger.NewGraph(messenger.GraphOptions{BaseURL: sb.SimURL + "/", Version: "v21.0", AppID: BotAppID, AppSecret: botSecret}),
		Page:      messenger.PageRef{ID: PageID, Token: botPageTok},
		Secret:    botSecret,
		BrokerURL: sb.URL,
		Token:     BotToken,
		Log:       o.Logger.With().Str("component", "demo-bot").Logger(),
	}
	sb.run = func(ctx context.Context) error {
		g, gctx := errgroup.WithContext(ctx)
		servers := []*http.Server{
			{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second},
			{Handler: bot, ReadHeaderTimeout: 10 * time.Second},
		}
		g.Go(func() error { return ignoreClosed(servers[0].Serve(simLn)) })
		g.Go(func() error { return ignoreClosed(servers[1].Serve(botLn)) })
		g.Go(func() error { return srv.Serve(gctx, brokerLn) })
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for _, s := range servers {
				_ = s.Shutdown(sctx)
			}
			sim.Close()
			return nil
		})
		err := g.Wait()
		srv.Close()
		removeDir()
		return err
	}
	return sb, nil
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Run serves until ctx ends.
func (sb *Sandbox) Run(ctx context.Context) error { return sb.run(ctx) }

// Walkthrough writes what to open and the curl lines of the demo: first
// the agents' console and a token to sign in with.
func (sb *Sandbox) Walkthrough(w io.Writer) error {
	if err := consoleIntro.Execute(w, map[string]string{"URL": sb.URL, "Sim": sb.SimURL, "Page": PageID, "Agent": AgentToken}); err != nil {
		return err
	}
	return walkthrough.Execute(w, map[string]string{
		"URL": sb.URL, "Sim": sb.SimURL, "Page": PageID, "Agent": AgentToken, "DB": sb.dbPath,
	})
}

var consoleIntro = template.Must(template.New("c").Parse(strings.TrimLeft(`
Agents' console      {{.URL}}/
  sign in with         {{.Agent}}
  In the browser: sign in, open "Pending", make the customer write (the first
  simulator curl line below, POST .../customers/42/messages) and watch the
  conversation arrive; when the bot hands over it moves to "Open": reply,
  resolve or hand back to the bot there.

`, "\n")))

var walkthrough = template.Must(template.New("w").Parse(strings.TrimLeft(`
handoverd sandbox is running — no Facebook app needed.

  handoverd            {{.URL}}   (SQLite: {{.DB}})
  Messenger simulator  {{.Sim}}   (plays Facebook: Graph API + signed webhooks)
  Page {{.Page}}, default app: the demo bot (app 222); handoverd is app 111
  agent token          {{.Agent}}
  API description      {{.URL}}/openapi.yaml     metrics  {{.URL}}/metrics

Walkthrough (copy the lines into another terminal; run it as often as you
like — every line gives the same answer each time). ?wait=true makes the
simulator answer once every webhook it sent, and what the apps did about
it, has landed; ?last=1 shows the newest message the customer received.

  AGENT={{.Agent}}

  # 1. A customer writes; the bot owns the thread and answers.
  curl -s -X POST "{{.Sim}}/_sim/pages/{{.Page}}/customers/42/messages?wait=true" -d '{"text":"Hi, where is my order?"}'
  curl -s "{{.Sim}}/_sim/pages/{{.Page}}/customers/42/inbox?last=1"
  curl -s -H "Authorization: Bearer $AGENT" {{.URL}}/1.0/threads/{{.Page}}/42

  # 2. The customer asks for a human; the bot hands over (POST /1.0/bots/handover).
  curl -s -X POST "{{.Sim}}/_sim/pages/{{.Page}}/customers/42/messages?wait=true" -d '{"text":"I want to talk to a human"}'
  curl -s -H "Authorization: Bearer $AGENT" {{.URL}}/1.0/threads/{{.Page}}/42

  # 3. The agent sees the conversation in the queue (CONV is its id) and replies.
  curl -s -H "api_access_token: $AGENT" "{{.URL}}/api/v1/accounts/1/conversations?status=open"
  CONV=$(curl -s -H "api_access_token: $AGENT" "{{.URL}}/api/v1/accounts/1/conversations?status=open" | grep -o '"id":[0-9]*' | head -n1 | cut -d: -f2)
  curl -s -H "api_access_token: $AGENT" -H 'Content-Type: application/json' \
       -X POST {{.URL}}/api/v1/accounts/1/conversations/$CONV/messages -d '{"content":"Hi, Alice here. Let me look.","message_type":"outgoing"}'
  curl -s "{{.Sim}}/_sim/pages/{{.Page}}/customers/42/inbox?wait=true&last=1"

  # 4. The agent hands back to the bot by resolving the conversation.
  curl -s -H "api_access_token: $AGENT" -H 'Content-Type: application/json' \
       -X POST {{.URL}}/api/v1/accounts/1/conversations/$CONV/toggle_status -d '{"status":"resolved"}'
  curl -s -X POST {{.Sim}}/_sim/settle
  curl -s -H "Authorization: Bearer $AGENT" {{.URL}}/1.0/threads/{{.Page}}/42

  # 5. The customer writes again: the bot answers.
  curl -s -X POST "{{.Sim}}/_sim/pages/{{.Page}}/customers/42/messages?wait=true" -d '{"text":"Thanks!"}'
  curl -s "{{.Sim}}/_sim/pages/{{.Page}}/customers/42/inbox?last=1"

  Live updates:  curl -N -H "api_access_token: $AGENT" {{.URL}}/api/v1/accounts/1/events?since=0

Stop with Ctrl-C.
`, "\n")))
