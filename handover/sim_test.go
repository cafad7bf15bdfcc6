package handover_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/apperr"
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

// The simulated Meta: two Pages, each connected to handoverd's app and the
// bot's.
const (
	agentPage = "1003" // default app: handoverd (it takes control)
	ourSecret = "our-app-secret"
	botSecret = "bot-app-secret"
	ourTok    = "our-page-token"
	botTok    = "bot-page-token"
	ourTok3   = "our-page-token-3"
	botTok3   = "bot-page-token-3"
)

// simEnv is thread control on a real database with the Messenger
// simulator as Facebook over loopback HTTP: handoverd's Graph calls go to
// the simulator, and the simulator's webhooks arrive signed at the real
// webhook edge, which ingests them. page (1001) has the bot as its
// default app, agentPage (1003) handoverd.
type simEnv struct {
	t     *testing.T
	b     storetest.Backend
	clock *clocktest.Fake
	m     *metrics.Metrics
	db    *store.DB
	svc   *handover.Service
	sim   *simulator.Sim
	// bot calls Graph as the bot's app.
	bot   *messenger.Graph
	facts *factLog
	opts  handover.Options
}

// simOption adjusts the service's options before it is built.
type simOption func(*handover.Options)

func newSimEnv(t *testing.T, b storetest.Backend, opts ...simOption) *simEnv {
	t.Helper()
	e := &simEnv{t: t, b: b, clock: clocktest.New(t0), m: metrics.New(), facts: &factLog{}}
	e.sim = simulator.New(simulator.Config{Now: e.clock.Now, RetryDelay: 5 * time.Millisecond, MaxAttempts: 3})
	simSrv := httptest.NewServer(e.sim.Handler())
	t.Cleanup(func() { e.sim.Close(); simSrv.Close() })
	e.sim.AddApp(simulator.App{ID: botApp, Secret: botSecret})
	e.sim.AddPage(simulator.Page{ID: page, DefaultAppID: botApp, Tokens: map[string]string{ourTok: ourApp, botTok: botApp}})
	e.sim.AddPage(simulator.Page{ID: agentPage, DefaultAppID: ourApp, Tokens: map[string]string{ourTok3: ourApp, botTok3: botApp}})

	retry := messenger.Retry{Attempts: 2, Initial: time.Millisecond, Max: 2 * time.Millisecond}
	graph := messenger.NewGraph(messenger.GraphOptions{BaseURL: simSrv.URL + "/", Version: "v21.0", AppID: ourApp, AppSecret: ourSecret,
		Timeout: 5 * time.Second, Retry: retry, Metrics: e.m})
	e.bot = messenger.NewGraph(messenger.GraphOptions{BaseURL: simSrv.URL + "/", Version: "v21.0", AppID: botApp, AppSecret: botSecret,
		Timeout: 5 * time.Second, Retry: retry})
	o := handover.Options{DB: b.Open(t), AppID: ourApp, Clock: e.clock.Paced(), Metrics: e.m, Logger: zerolog.Nop(), Graph: graph,
		Pages: []config.Page{
			{ID: page, AccessToken: ourTok, DefaultApp: config.DefaultAppBot, BotAppID: botApp, ClientID: 1},
			{ID: agentPage, AccessToken: ourTok3, DefaultApp: config.DefaultAppAgent, BotAppID: botApp, ClientID: 2},
		},
		Handover: config.Handover{ControlTimeout: 2 * time.Minute, InterventionIdle: time.Hour, OfferTimeout: 5 * time.Minute},
	}
	for _, opt := range opts {
		opt(&o)
	}
	e.db, e.opts = o.DB, o
	e.svc = handover.New(o)
	e.svc.SetConsumers(handover.Consumers{Inbox: e.facts})

	r := httpapi.NewRouter(zerolog.Nop(), e.m)
	known := map[string]bool{}
	for _, p := range o.Pages {
		known[p.ID] = true
	}
	(&messenger.Webhook{AppSecret: ourSecret, Ingester: e.svc, Metrics: e.m, Now: e.clock.Now,
		KnownPage: func(id string) bool { return known[id] }}).Routes(r)
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)
	e.sim.AddApp(simulator.App{ID: ourApp, Secret: ourSecret, WebhookURL: srv.URL + "/webhooks/messenger"})
	return e
}

// another returns a second handoverd process on the same database and
// Facebook.
func (e *simEnv) another() *handover.Service {
	o := e.opts
	o.DB, o.Metrics = e.b.Open(e.t), metrics.New()
	return handover.New(o)
}

// eachSim runs fn against a fresh simEnv on SQLite and on PostgreSQL.
func eachSim(t *testing.T, fn func(t *testing.T, e *simEnv), opts ...simOption) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) { fn(t, newSimEnv(t, b, opts...)) })
}

// flush waits until the simulator has delivered every webhook (so what
// handoverd shows next is settled).
func (e *simEnv) flush() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.sim.Flush(ctx); err != nil {
		e.t.Fatalf("Flush: %v", err)
	}
}

// customer has the customer write to pg, a second after the last step.
func (e *simEnv) customer(pg, who string) {
	e.t.Helper()
	e.clock.Advance(time.Second)
	if _, err := e.sim.CustomerSends(pg, who, simulator.CustomerMessage{Text: "hello"}); err != nil {
		e.t.Fatal(err)
	}
	e.flush()
}

// botPasses has the bot pass the thread to handoverd, as its own app.
func (e *simEnv) botPasses(pg, who string) {
	e.t.Helper()
	e.clock.Advance(time.Second)
	tok := botTok
	if pg == agentPage {
		tok = botTok3
	}
	if err := e.bot.PassThreadControl(context.Background(), messenger.PageRef{ID: pg, Token: config.Secret(tok)}, who, ourApp, ""); err != nil {
		e.t.Fatal(err)
	}
	e.flush()
}

// thread returns handoverd's view of a thread and its history.
func (e *simEnv) thread(pg, who string) (handover.Thread, []step) {
	e.t.Helper()
	th, hist, err := e.svc.Get(context.Background(), pg, who)
	if err != nil {
		e.t.Fatalf("Get %s/%s: %v", pg, who, err)
	}
	return th, steps(hist)
}

// ours returns the Graph calls handoverd's app made since the last
// reset, by op, and resets the record.
func (e *simEnv) ours() []string {
	var ops []string
	for _, c := range e.sim.Calls() {
		if c.AppID == ourApp {
			ops = append(ops, c.Op)
		}
	}
	e.sim.ResetCalls()
	return ops
}

// exec runs one statement on the database.
func (e *simEnv) exec(query string, args ...any) {
	e.t.Helper()
	if err := e.db.InTx(context.Background(), func(tx *store.Tx) error {
		_, err := tx.ExecContext(context.Background(), query, args...)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
}

// factLog is a consumer that keeps, in order, the handoff facts and owner
// changes thread control hands it.
type factLog struct {
	mu    sync.Mutex
	facts []string
}

func (l *factLog) ThreadChanged(_ context.Context, _ *store.Tx, ch handover.Change) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case ch.Handoff != nil:
		l.facts = append(l.facts, "handoff "+ch.Handoff.Status+" "+string(ch.Handoff.Reason))
	case len(ch.Transitions) > 0:
		for _, tr := range ch.Transitions {
			l.facts = append(l.facts, "owner "+string(tr.From)+"→"+string(tr.To)+" "+string(tr.Cause))
		}
	}
	return nil
}

// take returns the facts since the last take.
func (l *factLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.facts
	l.facts = nil
	return out
}

// failure is an error as the API shows it: its kind, field and message.
type failure struct {
	Code    apperr.Code
	Field   string
	Message string
}

// failureOf describes err ("" code for nil).
func failureOf(err error) failure {
	if err == nil {
		return failure{}
	}
	var ae *apperr.Error
	if !errors.As(err, &ae) {
		return failure{Message: err.Error()}
	}
	return failure{ae.Code, ae.Field, ae.Message}
}
