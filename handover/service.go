package handover

import (
	"context"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/clock"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/jobs"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/metrics"
	"github.com/handoverd/handoverd/store"
)

// Options configures a Service.
type Options struct {
	// DB is the database.
	DB *store.DB
	// AppID is handoverd's own Facebook app id.
	AppID string
	// Pages are the configured Pages.
	Pages []config.Page
	// IdleAfter is how long an owned thread lasts without activity (24 h).
	IdleAfter time.Duration
	// Clock tells the time and paces the loops (nil: the system clock).
	Clock clock.Clock
	// Metrics records thread and webhook metrics.
	Metrics *metrics.Metrics
	// Logger logs one line per transition.
	Logger zerolog.Logger
	// Graph calls Facebook as handoverd's app (nil: thread control is only
	// tracked, never requested).
	Graph Graph
	// Handover tunes control acquisition, interventions and agent sends.
	Handover config.Handover
	// Reconcile tunes the checks of doubtful threads.
	Reconcile config.Reconcile
	// BotClient delivers events to the Pages' bot webhooks (nil: a client
	// with a 10 s timeout).
	BotClient *http.Client
	// GiveUpAfter stops retrying a bot event this long after it happened
	// (0: 24 h).
	GiveUpAfter time.Duration
}

// Graph is the part of the Graph API handover uses; *messenger.Graph
// implements it.
type Graph interface {
	Send(ctx context.Context, page messenger.PageRef, req messenger.SendRequest) (messenger.SendResult, error)
	PassThreadControl(ctx context.Context, page messenger.PageRef, psid, targetAppID, metadata string) error
	TakeThreadControl(ctx context.Context, page messenger.PageRef, psid, metadata string) error
	RequestThreadControl(ctx context.Context, page messenger.PageRef, psid, metadata string) error
	ReleaseThreadControl(ctx context.Context, page messenger.PageRef, psid, metadata string) error
	ThreadOwner(ctx context.Context, page messenger.PageRef, psid string) (messenger.ThreadOwner, error)
}

var _ Graph = (*messenger.Graph)(nil)

// Observer sees, inside the transaction that makes them, every change to a
// thread: each webhook event applied, each owner change, and each agent
// message sent or failed. Whatever it writes commits (or not) with them, so
// a projection such as the agents' inbox is exactly as durable as the
// thread state. Only one of Event, Transitions, AgentMessage, Claim,
// Relay and Handoff is set.
type Observer interface {
	ThreadChanged(ctx context.Context, tx *store.Tx, ch Change) error
}

// BatchObserver is an Observer that webhook ingest tells about a whole
// batch of changes before handing them over one by one (so it can load
// what they share in a few statements) and again after the last (so it
// can write what it deferred), all in the same transaction.
type BatchObserver interface {
	Observer
	// BeginChanges sees every change of the batch, in order, first.
	BeginChanges(ctx context.Context, tx *store.Tx, chs []Change) error
	// EndChanges follows the batch's last ThreadChanged.
	EndChanges(ctx context.Context, tx *store.Tx) error
}

// Change is one thing that happened to a thread.
type Change struct {
	// Thread is the thread's state after the change.
	Thread Thread
	// Event is the webhook event applied (with its outcome), if any.
	Event *messenger.Event
	// Outcome is the event's outcome: applied or stale.
	Outcome string
	// Transitions are owner changes.
	Transitions []Transition
	// AgentMessage is an agent message that was just sent or failed.
	AgentMessage *AgentMessage
	// Claim is the agents taking the conversation or letting it go
	// (ClaimByAgents).
	Claim *Claim
	// Relay is what a relay bot's session did (Relayed); only the
	// consumers after the bots see it.
	Relay *Relay
	// Handoff is an offer just made, accepted, declined or expired.
	Handoff *Handoff
}

// Service keeps thread-control state in the database.
type Service struct {
	db        *store.DB
	appID     string
	pages     map[string]config.Page
	pageList  []config.Page // in config order
	idleAfter time.Duration
	clock     clock.Clock
	metrics   *metrics.Metrics
	log       zerolog.Logger
	graph     Graph
	hcfg      config.Handover
	rcfg      config.Reconcile
	runner    *jobs.Runner
	sends     *jobs.Queue[sendJob]
	botEvents *jobs.Queue[botEventJob]
	observers []Observer
	afterBots []Observer // the consumers Relayed tells
	commit    committer
	// botClient and giveUpAfter deliver events to the bots.
	botClient   *http.Client
	giveUpAfter time.Duration
}

// New returns a Service.
func New(o Options) *Service {
	s := &Service{
		db:          o.DB,
		appID:       o.AppID,
		pages:       map[string]config.Page{},
		idleAfter:   o.IdleAfter,
		clock:       clock.Or(o.Clock),
		metrics:     o.Metrics,
		log:         o.Logger,
		graph:       o.Graph,
		hcfg:        o.Handover,
		rcfg:        o.Reconcile,
		pageList:    o.Pages,
		botClient:   o.BotClient,
		giveUpAfter: o.GiveUpAfter,
	}
	if s.botClient == nil {
		s.botClient = &http.Client{Timeout: 10 * time.Second}
	}
	if s.giveUpAfter <= 0 {
		s.giveUpAfter = 24 * time.Hour
	}
	if o.DB != nil {
		s.commit.max = committers(o.DB.Dialect.Name)
	}
	if s.hcfg.ControlTimeout <= 0 {
		s.hcfg.ControlTimeout = config.DefaultControlWait
	}
	if s.hcfg.WorkEvery <= 0 {
		s.hcfg.WorkEvery = config.DefaultWorkEvery
	}
	if s.rcfg.Rate <= 0 {
		s.rcfg.Rate = config.DefaultReconcileRate
	}
	if s.rcfg.Interval <= 0 {
		s.rcfg.Interval = config.DefaultReconcileEvery
	}
	if s.idleAfter <= 0 {
		s.idleAfter = config.DefaultIdleAfter
	}
	if s.metrics == nil {
		s.metrics = metrics.New()
	}
	s.runner = jobs.New(jobs.Options{DB: s.db, Clock: s.clock, Metrics: s.metrics, Logger: s.log})
	s.sends, s.botEvents = s.sendQueue(), s.botEventQueue()
	for _, p := range o.Pages {
		s.pages[p.ID] = p
	}
	return s
}

// Page returns the configured Page.
func (s *Service) Page(id string) (config.Page, bool) {
	p, ok := s.pages[id]
	return p, ok
}

// committed reports what a transaction did, for metrics and logs once it
// has committed (a transaction may be retried, so nothing is recorded inside).
type committed struct {
	transitions []threadTransition
	events      []eventResult
	waits       []time.Duration // request → control, for the histogram
	ownedByUs   bool            // a thread became ours: waiting agent messages may go
	pageModes   []pageModeNote  // Pages whose app_roles changed
	echoSent    int             // agent messages their echoes showed sent (settleEchoed)
}

// pageModeNote is a Page's mode as an app_roles event left it.
type pageModeNote struct {
	pageID  string
	mode    PageMode
	warning string
}

type threadTransition struct {
	pageID, psid string
	Transition
}

type eventResult struct {
	kind, result string
}

func (s *Service) record(c committed) {
	for _, e := range c.events {
		s.metrics.WebhookEvents.WithLabelValues(e.kind, e.result).Inc()
	}
	for _, w := range c.waits {
		s.metrics.HandoverControlWait.Observe(w.Seconds())
	}
	if c.ownedByUs {
		s.Kick()
	}
	for _, p := range c.pageModes {
		s.log.Info().Str("page_id", p.pageID).Str("mode", string(p.mode)).Msg("page mode learnt from app_roles")
		if p.warning != "" {
			s.log.Warn().Str("page_id", p.pageID).Msg("page mode: " + p.warning)
		}
	}
	if c.echoSent > 0 {
		s.metrics.AgentSends.WithLabelValues(SendSent).Add(float64(c.echoSent))
	}
	for _, t := range c.transitions {
		s.metrics.ThreadTransitions.WithLabelValues(string(t.From), string(t.To), string(t.Cause)).Inc()
		s.log.Info().Str("page_id", t.pageID).Str("psid", t.psid).
			Str("from", string(t.From)).Str("to", string(t.To)).Str("to_app_id", t.ToAppID).
			Str("cause", string(t.Cause)).Str("actor", t.Actor).Time("at", t.At).Msg("thread transition")
	}
}

// Consumers are who learns of every thread change, inside the transaction
// that makes it, in the order they run. Facts flow one way, down this
// list: a consumer may add facts for the ones after it (SetBotAnswering,
// Relayed), never read back from them.
type Consumers struct {
	// Bots runs first: the relay bots, which may take the conversation
	// (or let go of it) and say so with SetBotAnswering and Relayed.
	Bots Observer
	// Inbox runs last and shows the change, and who answers the customer,
	// to the agents.
	Inbox Observer
}

// SetConsumers installs the consumers; call it before serving.
func (s *Service) SetConsumers(c Consumers) {
	s.observers, s.afterBots = nil, nil
	for i, o := range []Observer{c.Bots, c.Inbox} { // the order, here only
		if o == nil {
			continue
		}
		s.observers = append(s.observers, o)
		if i > 0 { // after Bots
			s.afterBots = append(s.afterBots, o)
		}
	}
}

// botAnsweringKey keys, in a transaction's memo, who answers a thread.
type botAnsweringKey struct{ page, psid string }

// SetBotAnswering records, for the consumers after the one calling it, who
// answers the thread's customer within handoverd's own app after the
// change at hand: the bot named bot, or the agents (""). It lasts for the
// rest of the transaction.
func SetBotAnswering(tx *store.Tx, pageID, psid, bot string) {
	tx.SetMemo(botAnsweringKey{pageID, psid}, &bot)
}

// BotAnswering returns what SetBotAnswering recorded in this transaction
// for the thread (known false when nothing was).
func BotAnswering(tx *store.Tx, pageID, psid string) (bot string, known bool) {
	b, ok := tx.Memo(botAnsweringKey{pageID, psid}).(*string)
	if !ok {
		return "", false
	}
	return *b, true
}

// observe hands a change to every observer.
func (s *Service) observe(ctx context.Context, tx *store.Tx, ch Change) error {
	for _, o := range s.observers {
		if err := o.ThreadChanged(ctx, tx, ch); err != nil {
			return err
		}
	}
	return nil
}

// observeAll hands a batch of changes to every observer: each change to
// each observer in turn, as observe does, with batch observers told of the
// whole batch first and last.
func (s *Service) observeAll(ctx context.Context, tx *store.Tx, chs []Change) error {
	for _, o := range s.observers {
		if b, ok := o.(BatchObserver); ok {
			if err := b.BeginChanges(ctx, tx, chs); err != nil {
				return err
			}
		}
	}
	for _, ch := range chs {
		if err := s.observe(ctx, tx, ch); err != nil {
			return err
		}
	}
	for _, o := range s.observers {
		if b, ok := o.(BatchObserver); ok {
			if err := b.EndChanges(ctx, tx); err != nil {
				return err
			}
		}
	}
	return nil
}

// Kick wakes the background worker (e.g. a thread just became ours).
func (s *Service) Kick() { s.runner.Kick() }

// pageRef returns the Graph reference of a configured Page.
func (s *Service) pageRef(pageID string) messenger.PageRef {
	return messenger.PageRef{ID: pageID, Token: s.pages[pageID].AccessToken}
}

// now is the clock's reading.
func (s *Service) now() time.Time { return s.clock.Now() }
