package handover

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/handoverd/handoverd/internal/redact"
	"github.com/handoverd/handoverd/jobs"
	"github.com/handoverd/handoverd/store"
)

// Events to a Page's bot (pages[].bot_webhook): what Meta does not tell a
// bot that is a Facebook app about its hand-offs.
const (
	EventOffered  = "handover.offered"  // the bot offered the conversation to the agents
	EventAccepted = "handover.accepted" // an agent accepted the offer
	EventDeclined = "handover.declined" // an agent declined the offer
	EventExpired  = "handover.expired"  // nobody accepted the offer in time
	EventFailed   = "handover.failed"   // control for the agents was refused or never came (Graph's code)
	EventReturned = "handover.returned" // the thread is back with the bot (with the reason)
)

// Bot event delivery headers.
const (
	HeaderBotSignature = "X-Handoverd-Signature" // sha256=hex(HMAC-SHA256(secret, timestamp + "." + body))
	HeaderBotTimestamp = "X-Handoverd-Timestamp" // Unix seconds when the attempt was signed
	HeaderBotEventID   = "X-Handoverd-Event-Id"  // the event's id, the same across retries
	HeaderBotEvent     = "X-Handoverd-Event"     // the event's type
)

// botEventLease bounds how long one process holds a delivery it attempts.
const botEventLease = time.Minute

// SignBotEvent returns the X-Handoverd-Signature value of a delivery.
func SignBotEvent(secret string, timestamp int64, body []byte) string {
	return jobs.Signature(secret, timestamp, body)
}

// BotEvent is the body of a delivery to a bot's webhook.
type BotEvent struct {
	// ID identifies the event; it stays the same across retries.
	ID string `json:"id"`
	// Type is one of the handover.* events.
	Type string `json:"type"`
	// CreatedAt is when the event happened.
	CreatedAt time.Time `json:"created_at"`
	// PageID and IdentityForeignID name the identity.
	PageID            string `json:"page_id"`
	IdentityForeignID string `json:"identity_foreign_id"`
	// Handover is the handoff the event is about (nil for handover.returned
	// without one).
	Handover *HandoffView `json:"handover,omitempty"`
	// Reason is why.
	Reason Reason `json:"reason,omitempty"`
	// Metadata is the operation's flat JSON context.
	Metadata Metadata `json:"metadata,omitempty"`
	// Data carries the event's details (Graph's code for handover.failed,
	// the cause for handover.returned).
	Data map[string]any `json:"data,omitempty"`
}

// botEvent queues an event for the Page's bot, in the caller's
// transaction, which holds the thread's row lock: a thread's events are
// numbered, and delivered, in the order they happened.
func (s *Service) botEvent(ctx context.Context, tx *store.Tx, h Handoff, typ string, data map[string]any, now time.Time) error {
	hook := s.pages[h.PageID].BotWebhook
	if hook.URL == "" {
		return nil
	}
	var rb [12]byte
	if _, err := rand.Read(rb[:]); err != nil {
		return err
	}
	ev := BotEvent{ID: "hev_" + hex.EncodeToString(rb[:]), Type: typ, CreatedAt: now.UTC(), PageID: h.PageID, IdentityForeignID: h.PSID,
		Reason: h.Reason, Metadata: h.Metadata, Data: data}
	if h.ID != 0 {
		v := ViewHandoff(h)
		ev.Handover = &v
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO bot_events (event_id, page_id, psid, type, url, payload, status, next_attempt_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7)`, ev.ID, h.PageID, h.PSID, typ, hook.URL, string(body), store.Millis(now))
	if err == nil {
		s.Kick()
	}
	return err
}

// botEventBackoff retries a delivery 5 s after its first failure, doubling
// up to 5 min, until the service's give-up time has passed.
var botEventBackoff = jobs.Backoff{Initial: 5 * time.Second, Max: 5 * time.Minute, Jitter: 0.1}

// botEventJob is a bot_events row leased for an attempt.
type botEventJob struct {
	id                                 int64
	pageID, eventID, typ, url, payload string
	attempts                           int
	created                            time.Time
}

// botEventQueue is the queue of deliveries to the Pages' bot webhooks.
func (s *Service) botEventQueue() *jobs.Queue[botEventJob] {
	return &jobs.Queue[botEventJob]{
		Name: "bot_events", Table: "bot_events", Pending: "pending", Lease: botEventLease, CountAttempts: true, HandBack: true,
		DueAt: "next_attempt_at", Per: []string{"page_id", "psid"}, Load: loadBotEvent, Attempt: s.deliverBotEvent,
	}
}

// DeliverBotEvents attempts every due bot event — per thread only the
// oldest pending one, so a bot gets a thread's events in order — and
// returns how many were delivered. Several processes may run it at once:
// a delivery is claimed with a lease first.
func (s *Service) DeliverBotEvents(ctx context.Context) (int, error) {
	return jobs.Drain(ctx, s.runner, s.botEvents)
}

func loadBotEvent(ctx context.Context, tx *store.Tx, id int64) (botEventJob, error) {
	j := botEventJob{id: id}
	var created int64
	err := tx.QueryRowContext(ctx, `SELECT page_id, event_id, type, url, payload, attempts, created_at FROM bot_events WHERE id = $1`, id).
		Scan(&j.pageID, &j.eventID, &j.typ, &j.url, &j.payload, &j.attempts, &created)
	j.created = store.Time(created)
	return j, err
}

// deliverBotEvent posts one leased event to its bot and records the answer.
func (s *Service) deliverBotEvent(ctx context.Context, j botEventJob, now time.Time) (bool, error) {
	hook := s.pages[j.pageID].BotWebhook
	retry, status, err := false, 0, error(fmt.Errorf("page %s no longer has a bot_webhook", j.pageID))
	if hook.URL != "" {
		status, err = s.postBotEvent(ctx, j.url, hook.Secret.Reveal(), j.eventID, j.typ, []byte(j.payload))
		retry, err = jobs.HTTPResult(status, err)
	}
	policy := jobs.Policy{Backoff: botEventBackoff, GiveUpAfter: s.giveUpAfter}
	d := policy.Decide(retry, err, j.attempts, j.created, now)
	d.Status = status
	if rerr := s.recordBotEvent(ctx, j, d); rerr != nil {
		return true, rerr
	}
	return d.Result == jobs.ResultRetry, err // a retry given up is final
}

// recordBotEvent records a delivery's decision.
func (s *Service) recordBotEvent(ctx context.Context, j botEventJob, d jobs.Decision) error {
	if err := jobs.RecordDelivery(ctx, s.db, "bot_events", j.id, d, s.now()); err != nil {
		return err
	}
	result := jobs.DeliveryResult(d)
	s.metrics.BotEventDeliveries.WithLabelValues(result).Inc()
	if d.Result != jobs.ResultOK {
		s.log.Warn().Str("url", redact.URL(j.url)).Str("event_id", j.eventID).Str("type", j.typ).Int("attempt", j.attempts).
			Str("result", result).Str("error", d.Error).Msg("bot event delivery failed")
	}
	return nil
}

// postBotEvent sends one signed attempt and returns the bot's status.
func (s *Service) postBotEvent(ctx context.Context, url, secret, eventID, typ string, body []byte) (int, error) {
	return jobs.Post(ctx, s.botClient, s.now(), jobs.Webhook{URL: url, Secret: secret, Body: body, UserAgent: "handoverd-bot-events",
		SignatureHeader: HeaderBotSignature, TimestampHeader: HeaderBotTimestamp,
		Headers: map[string]string{HeaderBotEventID: eventID, HeaderBotEvent: typ}})
}
