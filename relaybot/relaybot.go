// Package relaybot runs relay bots: chatbots that are not Facebook apps
// (Rasa, a small Flask app, an LLM service) behind handoverd's own app, over
// the Userlike-compatible chatbot webhook protocol (package userlike speaks
// the wire format).
//
// handoverd holds Messenger thread control itself; "the bot owns the
// conversation" means a relay session is active, and the conversation is
// pending in the inbox. The package consumes thread control's facts
// (handover.Consumers) and hands its own on through it (handover.Relayed):
// it never calls the inbox, and keeps its own record of which
// conversations the agents hold (relay_holds). Customer messages become webhook calls to the bot,
// queued in the same transaction that stores the message and delivered at
// least once, in order per session, with retries; a bot that stays down is
// replaced by the agents (the conversation says so). The bot's events —
// from its webhook answers or posted to POST /api/chatbot/v1/events
// (Service.PostEvents) — are stored as actions and run in order (a delay
// holds back the ones after it): messages go out through the Send API,
// forwards hand the conversation to the agents, notes and contact updates
// reach the inbox.
package relaybot

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/clock"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/jobs"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/metrics"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/userlike"
)

// Session statuses.
const (
	SessionActive    = "active"
	SessionForwarded = "forwarded"
	SessionEnded     = "ended"
)

// Options configures a Service.
type Options struct {
	// DB is the database.
	DB *store.DB
	// Bots are the configured relay bots.
	Bots []userlike.Bot
	// Handover sends the bots' messages.
	Handover *handover.Service
	// Contacts tells the bots what is known of their customers.
	Contacts Contacts
	// Graph sends typing indicators.
	Graph *messenger.Graph
	// PageTokens maps Page ids to handoverd's Page access tokens.
	PageTokens map[string]messenger.PageRef
	// Clock tells the time and paces the loop (nil: the system clock).
	Clock clock.Clock
	// Metrics records relay metrics.
	Metrics *metrics.Metrics
	// Logger logs.
	Logger zerolog.Logger
	// HTTPClient calls the bots (nil: 10 s timeout).
	HTTPClient *http.Client
	// Retry is the first delay between webhook attempts (default 1 s,
	// doubling); after Attempts failures the bot counts as down.
	Retry    time.Duration
	Attempts int
}

// Contacts is where the contact details in the bots' webhook calls come
// from (the agents' inbox, which keeps what bots and agents learned). It is
// only read, never told anything: what a bot learns goes out as a
// handover.Relay fact.
type Contacts interface {
	// ContactOf returns the thread's contact (ok false when none yet).
	ContactOf(ctx context.Context, pageID, psid string) (handover.Contact, bool, error)
}

// Service runs the relay bots.
type Service struct {
	db       *store.DB
	bots     map[string]userlike.Bot // by name
	byPage   map[string]userlike.Bot // by page id
	handover *handover.Service
	contacts Contacts
	graph    *messenger.Graph
	pages    map[string]messenger.PageRef
	clock    clock.Clock
	metrics  *metrics.Metrics
	log      zerolog.Logger
	client   *http.Client
	retry    time.Duration
	attempts int
	limiter  *cidLimiter
	runner   *jobs.Runner
	calls    *jobs.Queue[relayJob]
	actions  *jobs.Queue[relayJob]
}

// New returns the service.
func New(o Options) *Service {
	s := &Service{db: o.DB, bots: map[string]userlike.Bot{}, byPage: map[string]userlike.Bot{}, handover: o.Handover, contacts: o.Contacts,
		graph: o.Graph, pages: o.PageTokens, clock: clock.Or(o.Clock), metrics: o.Metrics, log: o.Logger, client: o.HTTPClient,
		retry: o.Retry, attempts: o.Attempts, limiter: newCIDLimiter(20, time.Minute)}
	for _, b := range o.Bots {
		s.bots[b.Name] = b
		for _, p := range b.Pages {
			s.byPage[p] = b
		}
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 10 * time.Second}
	}
	if s.retry <= 0 {
		s.retry = time.Second
	}
	if s.attempts <= 0 {
		s.attempts = 5
	}
	if s.metrics == nil {
		s.metrics = metrics.New()
	}
	s.runner = jobs.New(jobs.Options{DB: s.db, Clock: s.clock, Metrics: s.metrics, Logger: s.log})
	s.calls, s.actions = s.queues()
	return s
}

// Kick wakes the worker.
func (s *Service) Kick() { s.runner.Kick() }

// session is a relay_sessions row.
type session struct {
	id                      int64
	pageID, psid, bot, cid  string
	status                  string
	context, conversation   string
	pendingChoice           string
	startedAt, lastActivity int64
}

const sessionColumns = `id, page_id, psid, bot, cid, status, context, conversation, pending_choice, started_at, last_activity_at`

func scanSession(row interface{ Scan(...any) error }) (session, error) {
	var ss session
	err := row.Scan(&ss.id, &ss.pageID, &ss.psid, &ss.bot, &ss.cid, &ss.status, &ss.context, &ss.conversation, &ss.pendingChoice,
		&ss.startedAt, &ss.lastActivity)
	return ss, err
}

func activeSession(ctx context.Context, tx *store.Tx, pageID, psid string) (session, bool, error) {
	ss, err := scanSession(tx.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM relay_sessions
		WHERE page_id = $1 AND psid = $2 AND status = 'active'`, pageID, psid))
	if errors.Is(err, sql.ErrNoRows) {
		return ss, false, nil
	}
	return ss, err == nil, err
}

var _ handover.Observer = (*Service)(nil)

// ThreadChanged turns a customer's message on a relay bot's Page into a
// webhook call to the bot, starting a session when the bot takes the chat,
// and ends the session when a person takes over. It runs before the inbox
// sees the change (handover.Consumers), in the same transaction, and tells
// it who answers the customer now (handover.SetBotAnswering).
func (s *Service) ThreadChanged(ctx context.Context, tx *store.Tx, ch handover.Change) error {
	if c := ch.Claim; c != nil && !c.Holding {
		// The agents let go, on any Page: a hold left from before the Page
		// had a relay bot must not keep a bot out later.
		if err := releaseHold(ctx, tx, ch.Thread.PageID, ch.Thread.PSID); err != nil {
			return err
		}
	}
	if _, ok := s.byPage[ch.Thread.PageID]; !ok {
		return nil
	}
	ss, active, err := activeSession(ctx, tx, ch.Thread.PageID, ch.Thread.PSID)
	if err != nil {
		return err
	}
	bot, err := s.threadChanged(ctx, tx, ch, ss, active)
	if err != nil {
		return err
	}
	// Tell the inbox, which runs next, who answers the customer now.
	handover.SetBotAnswering(tx, ch.Thread.PageID, ch.Thread.PSID, bot)
	return nil
}

// threadChanged is ThreadChanged's work on a relay bot's Page, given the
// thread's active session (if active); it returns the bot that answers the
// customer afterwards ("" for none).
func (s *Service) threadChanged(ctx context.Context, tx *store.Tx, ch handover.Change, ss session, active bool) (string, error) {
	th := ch.Thread
	answering := ""
	if active {
		answering = ss.bot
	}
	if c := ch.Claim; c != nil {
		if !c.Holding {
			return answering, nil // released above
		}
		if err := s.hold(ctx, tx, th.PageID, th.PSID, HoldAgent); err != nil || !active {
			return "", err
		}
		return "", s.endSession(ctx, tx, ss, SessionForwarded, "agent", handover.RelayTakenOver, "The agents took over from the bot "+ss.bot)
	}
	if s.humanTookOver(ch) {
		if err := s.hold(ctx, tx, th.PageID, th.PSID, HoldAgent); err != nil || !active {
			return "", err
		}
		return "", s.endSession(ctx, tx, ss, SessionForwarded, "agent", handover.RelayTakenOver, "A person took over from the bot "+ss.bot)
	}
	ev := ch.Event
	if ev == nil || (ev.Kind != messenger.KindMessage && ev.Kind != messenger.KindPostback) || ev.Channel != messenger.ChannelMessaging {
		return answering, nil // on standby another app (or a person in the Page Inbox) holds the thread
	}
	bot := s.byPage[ev.PageID]
	now := s.now()
	if !active {
		held, err := holdOf(ctx, tx, ev.PageID, ev.PSID)
		if err != nil || held != "" {
			return "", err // with the agents
		}
		if !bot.Active(now, s.agentsAvailable(bot, now)) {
			return "", s.hold(ctx, tx, ev.PageID, ev.PSID, HoldDeclined)
		}
		var open int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM relay_sessions WHERE bot = $1 AND status = 'active'`, bot.Name).Scan(&open); err != nil {
			return "", err
		}
		if !bot.HasFreeSlot(open) {
			// All the bot's chat slots are taken: the agents get it.
			return "", s.hold(ctx, tx, ev.PageID, ev.PSID, HoldDeclined)
		}
		first := s.packetFor(nil, *ev)
		ss = session{pageID: ev.PageID, psid: ev.PSID, bot: bot.Name, cid: "handoverd::" + ev.PageID + ":" + uuid.NewString()}
		if err := tx.QueryRowContext(ctx, `INSERT INTO relay_sessions (page_id, psid, bot, cid, status, started_at, last_activity_at)
			VALUES ($1, $2, $3, $4, 'active', $5, $5) RETURNING id`, ss.pageID, ss.psid, ss.bot, ss.cid, store.Millis(now)).Scan(&ss.id); err != nil {
			return "", err
		}
		s.metrics.RelaySessions.WithLabelValues("started").Inc()
		if err := s.handover.Relayed(ctx, tx, ss.pageID, ss.psid, handover.Relay{Kind: handover.RelayStarted, Bot: ss.bot}); err != nil {
			return "", err
		}
		return bot.Name, s.enqueueCall(ctx, tx, ss.id, userlike.StartPacket(&first))
	}
	var pending *userlike.PendingChoice
	if ss.pendingChoice != "" {
		pending = &userlike.PendingChoice{}
		_ = json.Unmarshal([]byte(ss.pendingChoice), pending)
	}
	p := s.packetFor(pending, *ev)
	if _, err := tx.ExecContext(ctx, `UPDATE relay_sessions SET pending_choice = '', last_activity_at = $2 WHERE id = $1`, ss.id, store.Millis(now)); err != nil {
		return "", err
	}
	return ss.bot, s.enqueueCall(ctx, tx, ss.id, p)
}

// Why the agents hold a conversation (relay_holds.reason).
const (
	// HoldForwarded: a bot handed the conversation to the agents.
	HoldForwarded = "forwarded"
	// HoldAgent: a person took it (an agent's message or status change, or
	// the Page Inbox).
	HoldAgent = "agent"
	// HoldDeclined: no bot could take it (out of its hours, no free slot).
	HoldDeclined = "declined"
)

// hold records that the agents hold the thread's conversation: no bot
// starts a session until they let go (a Claim that is not Holding).
func (s *Service) hold(ctx context.Context, tx *store.Tx, pageID, psid, reason string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO relay_holds (page_id, psid, reason, since) VALUES ($1, $2, $3, $4)
		ON CONFLICT (page_id, psid) DO NOTHING`, pageID, psid, reason, store.Millis(s.now()))
	return err
}

// holdOf is why the agents hold the thread's conversation ("" when they
// do not).
func holdOf(ctx context.Context, tx *store.Tx, pageID, psid string) (string, error) {
	var reason string
	err := tx.QueryRowContext(ctx, `SELECT reason FROM relay_holds WHERE page_id = $1 AND psid = $2`, pageID, psid).Scan(&reason)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return reason, err
}

// releaseHold forgets the agents' hold on the thread's conversation.
func releaseHold(ctx context.Context, tx *store.Tx, pageID, psid string) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM relay_holds WHERE page_id = $1 AND psid = $2`, pageID, psid)
	return err
}

// humanTookOver reports whether a change means a person now handles the
// thread: an agent's (not a relay bot's) message went out, or another app
// such as the Page Inbox took the thread.
func (s *Service) humanTookOver(ch handover.Change) bool {
	if m := ch.AgentMessage; m != nil {
		return m.Sender.Kind == handover.SenderAgent && m.Status == handover.SendSent
	}
	for _, t := range ch.Transitions {
		if t.To == handover.OwnerPageInbox || t.To == handover.OwnerOther {
			return true
		}
	}
	return false
}

// packetFor converts a customer event to the packet the bot gets: a click
// for a tapped option (or a valid number answering a numbered choice), media
// or location for attachments, otherwise a message.
func (s *Service) packetFor(pending *userlike.PendingChoice, ev messenger.Event) userlike.Packet {
	if ev.Postback != nil {
		if p, ok := userlike.ParsePostback(ev.Postback.Payload); ok {
			return p
		}
		return userlike.MessagePacket(ev.Postback.Title)
	}
	m := ev.Message
	if p, ok := userlike.ParsePostback(m.QuickReplyPayload); ok {
		return p
	}
	if len(m.Attachments) > 0 && m.Text == "" {
		a := m.Attachments[0]
		if p, ok := userlike.AttachmentPacket(a.Type, a.URL, a.Payload); ok {
			return p
		}
	}
	return userlike.TextPacket(pending, m.Text)
}

// agentsAvailable is whether a forward can reach an agent: within the
// humans' service time for service_time bots, always otherwise (handoverd
// has no agent presence; the queue is always open).
func (s *Service) agentsAvailable(b userlike.Bot, now time.Time) bool {
	if b.Mode == userlike.ModeServiceTime {
		return b.Schedule.Contains(now)
	}
	return true
}

func (s *Service) enqueueCall(ctx context.Context, tx *store.Tx, sessionID int64, p userlike.Packet) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	now := store.Millis(s.now())
	_, err = tx.ExecContext(ctx, `INSERT INTO relay_calls (session_id, packet, status, next_attempt_at, created_at) VALUES ($1, $2, 'pending', $3, $3)`,
		sessionID, string(b), now)
	return err
}

// Run delivers calls, runs actions and times out idle sessions until ctx
// ends, every interval (and when kicked).
func (s *Service) Run(ctx context.Context, every time.Duration) {
	s.runner.Run(ctx, every,
		jobs.Step{Do: s.DeliverDue, Failed: "relay calls failed"},
		jobs.Step{Do: s.RunDue, Failed: "relay actions failed"},
		jobs.Step{Do: s.TimeOutIdle, Failed: "relay timeouts failed"})
}

// now is the clock's reading.
func (s *Service) now() time.Time { return s.clock.Now() }
