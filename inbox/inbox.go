// Package inbox is the agents' inbox: a Chatwoot-style API channel with
// inboxes, contacts, contact inboxes, conversations and messages.
//
// Messenger conversations are a projection of thread control: the handover
// service hands every change to Service.ThreadChanged inside its own
// transaction, so a customer message lands in its conversation exactly once,
// echoes land as outgoing messages with the right sender, and a
// conversation's status follows the thread's owner (bot → pending, agents →
// open). Agents reply through the API (package chatwoot serves it over
// this package's methods); handoverd acquires thread control before
// anything is sent. Every change is an event: kept in order for live
// updates (Server-Sent Events) and delivered, signed, to webhooks from a
// durable outbox.
package inbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/clock"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/jobs"
	"github.com/handoverd/handoverd/metrics"
	"github.com/handoverd/handoverd/store"
)

// Options configures a Service.
type Options struct {
	// DB is the database.
	DB *store.DB
	// Handover is the thread-control service.
	Handover *handover.Service
	// Pages are the configured Pages (one inbox each).
	Pages []config.Page
	// Users are the configured API users (agents get numeric ids).
	Users []config.User
	// Webhooks are the account-level outbound webhooks.
	Webhooks []config.Webhook
	// Inbox tunes deliveries.
	Inbox config.Inbox
	// ClaimGrace is how long a message in a conversation the bot handles
	// waits for a claim before it surfaces to agents (default 5 s).
	ClaimGrace time.Duration
	// Clock tells the time and paces the loops (nil: the system clock).
	Clock clock.Clock
	// Metrics records inbox metrics.
	Metrics *metrics.Metrics
	// Logger logs.
	Logger zerolog.Logger
	// HTTPClient delivers webhooks (nil: a client with Inbox.DeliveryTimeout).
	HTTPClient *http.Client
}

// Service is the inbox.
type Service struct {
	db       *store.DB
	handover *handover.Service
	pages    map[string]config.Page
	webhooks []config.Webhook
	cfg      config.Inbox
	grace    time.Duration
	clock    clock.Clock
	metrics  *metrics.Metrics
	log      zerolog.Logger
	client   *http.Client
	runner   *jobs.Runner
	outbox   *jobs.Queue[delivery]

	stopping   chan struct{}       // closed when the process starts draining: live streams end
	pageInbox  map[string]inboxRef // page id → its inbox
	inboxCache sync.Map            // inbox id → InboxView (inboxes never change)
	agentIDs   map[string]int64    // user name → agent id
	agentNames map[int64]string
	users      map[string]config.User // agents and admins by name
	teams      map[int64]config.Team
	publicURL  string
	agentOf    map[int64]int64 // agent id → the account (client) the user belongs to
}

type inboxRef struct {
	id        int64
	accountID int64
}

// New returns the inbox service, creating each Page's inbox and each
// user's agent id if they do not exist yet.
func New(ctx context.Context, o Options) (*Service, error) {
	s := &Service{
		db: o.DB, handover: o.Handover, webhooks: o.Webhooks, cfg: o.Inbox, clock: clock.Or(o.Clock), metrics: o.Metrics, log: o.Logger,
		client: o.HTTPClient, grace: o.ClaimGrace, pages: map[string]config.Page{}, pageInbox: map[string]inboxRef{},
		agentIDs: map[string]int64{}, agentNames: map[int64]string{}, agentOf: map[int64]int64{}, stopping: make(chan struct{}),
		users: map[string]config.User{}, teams: map[int64]config.Team{}, publicURL: strings.TrimRight(o.Inbox.PublicURL, "/"),
	}
	for _, t := range o.Inbox.Teams {
		s.teams[t.ID] = t
	}
	if s.grace <= 0 {
		s.grace = 5 * time.Second
	}
	if s.cfg.GiveUpAfter <= 0 {
		s.cfg.GiveUpAfter = 24 * time.Hour
	}
	if s.cfg.DeliveryTimeout <= 0 {
		s.cfg.DeliveryTimeout = 10 * time.Second
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: s.cfg.DeliveryTimeout}
	}
	// A redirect would turn the signed POST into a bodiless GET: treat it
	// as the receiver's answer (a non-2xx, so not delivered) instead.
	client := *s.client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s.client = &client
	if s.metrics == nil {
		s.metrics = metrics.New()
	}
	s.runner = jobs.New(jobs.Options{DB: s.db, Clock: s.clock, Metrics: s.metrics, Logger: s.log})
	s.outbox = s.outboxQueue()
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		now := store.Millis(s.now())
		for _, p := range o.Pages {
			s.pages[p.ID] = p
			if _, err := tx.ExecContext(ctx, `INSERT INTO inboxes (account_id, name, channel_type, page_id, created_at)
				VALUES ($1, $2, 'facebook', $3, $4) ON CONFLICT (page_id) DO NOTHING`,
				p.ClientID, "Messenger "+p.ID, p.ID, now); err != nil {
				return err
			}
			var ref inboxRef
			if err := tx.QueryRowContext(ctx, `SELECT id, account_id FROM inboxes WHERE page_id = $1`, p.ID).Scan(&ref.id, &ref.accountID); err != nil {
				return err
			}
			if ref.accountID != p.ClientID {
				if _, err := tx.ExecContext(ctx, `UPDATE inboxes SET account_id = $2 WHERE id = $1`, ref.id, p.ClientID); err != nil {
					return err
				}
				ref.accountID = p.ClientID
			}
			s.pageInbox[p.ID] = ref
		}
		for _, u := range o.Users {
			if u.Role == config.RoleBot {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO agents (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, u.Name); err != nil {
				return err
			}
			var id int64
			if err := tx.QueryRowContext(ctx, `SELECT id FROM agents WHERE name = $1`, u.Name).Scan(&id); err != nil {
				return err
			}
			s.agentIDs[u.Name], s.agentNames[id], s.users[u.Name], s.agentOf[id] = id, u.Name, u, u.ClientID
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("inbox: %w", err)
	}
	return s, nil
}

func newSecret() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Clock is the clock the inbox runs on (Options.Clock, or the system
// clock): its adapters time what they do (rate limits, live updates' polls)
// on it too, so one clock rules a server and its tests.
func (s *Service) Clock() clock.Clock { return s.clock }

// Health is the inbox's clock reading and whether its database answers
// (nil when it does).
func (s *Service) Health(ctx context.Context) (now time.Time, db error) {
	return s.now(), s.db.Reader().PingContext(ctx)
}

// Drain ends live-update streams so a graceful shutdown is not held up by
// them; clients reconnect elsewhere with Last-Event-ID. Call it once.
func (s *Service) Drain() { close(s.stopping) }

// now is the clock's reading.
func (s *Service) now() time.Time { return s.clock.Now() }
