package inbox

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/handoverd/handoverd/internal/redact"
	"github.com/handoverd/handoverd/jobs"
	"github.com/handoverd/handoverd/store"
)

// Outbound webhook headers (Chatwoot's names, so its receivers verify us).
const (
	HeaderSignature = "X-Chatwoot-Signature" // sha256=hex(HMAC-SHA256(secret, timestamp + "." + body))
	HeaderTimestamp = "X-Chatwoot-Timestamp" // Unix seconds when the attempt was signed
	HeaderDelivery  = "X-Chatwoot-Delivery"  // the same across retries of one delivery
)

// outboxLease bounds how long one process holds a delivery it is attempting.
const outboxLease = time.Minute

// SignWebhook returns the X-Chatwoot-Signature value for a delivery.
func SignWebhook(secret string, timestamp int64, body []byte) string {
	return jobs.Signature(secret, timestamp, body)
}

// outboxBackoff retries a delivery 5 s after its first failure, doubling
// up to 5 min, until inbox.give_up_after has passed.
var outboxBackoff = jobs.Backoff{Initial: 5 * time.Second, Max: 5 * time.Minute, Jitter: 0.1}

// outboxQueue is the queue of webhook deliveries.
func (s *Service) outboxQueue() *jobs.Queue[delivery] {
	return &jobs.Queue[delivery]{
		Name: "outbox", Table: "outbox", Pending: "pending", Lease: outboxLease, CountAttempts: true, HandBack: true,
		DueAt: "next_attempt_at", Due: s.dueDeliveries, Load: loadDelivery, Attempt: s.deliverOne,
	}
}

// DeliverDue attempts every due delivery — per webhook and conversation,
// only the oldest pending one, so each receiver gets a conversation's
// events in order — and returns how many were delivered. Several processes
// may run it at once: a delivery is claimed with a lease first; one cut
// short by shutdown goes out again, with the same delivery id, from
// whichever process is next.
func (s *Service) DeliverDue(ctx context.Context) (int, error) {
	if _, err := s.Sequence(ctx); err != nil {
		return 0, err
	}
	return jobs.Drain(ctx, s.runner, s.outbox)
}

func (s *Service) dueDeliveries(ctx context.Context, now time.Time) ([]int64, error) {
	return store.IDs(ctx, s.db.Reader(), `SELECT o.id FROM outbox o JOIN inbox_events e ON e.id = o.event_id
		WHERE o.status = 'pending' AND e.seq IS NOT NULL AND o.next_attempt_at <= $1 AND (o.lease_until IS NULL OR o.lease_until < $1)
		AND e.seq = (SELECT min(pe.seq) FROM outbox p JOIN inbox_events pe ON pe.id = p.event_id
			WHERE p.status = 'pending' AND p.target = o.target AND p.conversation_id = o.conversation_id)
		ORDER BY e.seq LIMIT 100`, store.Millis(now))
}

// delivery is an outbox row leased for an attempt, with its event.
type delivery struct {
	id, eventID, conversationID int64
	target, url, deliveryID     string
	attempts                    int
	created                     int64
	ev                          storedEvent
	payload                     []byte
}

func loadDelivery(ctx context.Context, tx *store.Tx, id int64) (delivery, error) {
	var d delivery
	err := tx.QueryRowContext(ctx, `SELECT o.id, o.event_id, o.conversation_id, o.target, o.url, o.delivery_id, o.attempts, o.created_at, `+
		storedEventColumns+` FROM outbox o JOIN inbox_events e ON e.id = o.event_id WHERE o.id = $1`, id).
		Scan(scanStoredEvent([]any{&d.id, &d.eventID, &d.conversationID, &d.target, &d.url, &d.deliveryID, &d.attempts, &d.created}, &d.ev)...)
	return d, err
}

// deliverOne renders and signs a leased delivery, posts it and records
// the answer.
func (s *Service) deliverOne(ctx context.Context, d delivery, now time.Time) (bool, error) {
	retry, status, err := s.attemptDelivery(ctx, &d)
	dec := jobs.Policy{Backoff: outboxBackoff, GiveUpAfter: s.cfg.GiveUpAfter}.Decide(retry, err, d.attempts, store.Time(d.created), now)
	dec.Status = status
	if rerr := jobs.RecordDelivery(ctx, s.db, "outbox", d.id, dec, s.now()); rerr != nil {
		return true, rerr
	}
	result := jobs.DeliveryResult(dec)
	s.metrics.OutboxDeliveries.WithLabelValues(result).Inc()
	if dec.Result != jobs.ResultOK {
		s.log.Warn().Str("url", redact.URL(d.url)).Str("delivery", d.deliveryID).Int("attempt", d.attempts).Str("result", result).Str("error", dec.Error).Msg("webhook delivery failed")
	}
	return dec.Result == jobs.ResultRetry, err // a retry given up is final
}

// attemptDelivery renders d, signs it and posts it, and says what the
// answer means (HTTPResult). A delivery that cannot be rendered, or whose
// secret cannot be read, is retried like a receiver's failure, and given
// up on in time like one: it never holds its conversation's later
// deliveries back for ever. One whose webhook is gone fails at once.
func (s *Service) attemptDelivery(ctx context.Context, d *delivery) (retry bool, status int, err error) {
	payload, err := s.render(ctx, s.db.Reader(), d.ev)
	if err != nil {
		return true, 0, err
	}
	d.payload = webhookBody([]byte(payload))
	secret, err := s.secretFor(ctx, d.target)
	if err != nil {
		return !errors.Is(err, errWebhookRemoved), 0, err
	}
	status, err = s.post(ctx, *d, secret)
	retry, err = jobs.HTTPResult(status, err)
	return retry, status, err
}

// post sends one signed attempt and returns the receiver's status.
func (s *Service) post(ctx context.Context, d delivery, secret string) (int, error) {
	return jobs.Post(ctx, s.client, s.now(), jobs.Webhook{URL: d.url, Secret: secret, Body: d.payload, UserAgent: "handoverd-webhooks",
		SignatureHeader: HeaderSignature, TimestampHeader: HeaderTimestamp, Headers: map[string]string{HeaderDelivery: d.deliveryID}})
}

// secretFor finds the signing key of a delivery target.
func (s *Service) secretFor(ctx context.Context, target string) (string, error) {
	if url, ok := strings.CutPrefix(target, "config:"); ok {
		for _, w := range s.webhooks {
			if w.URL == url {
				return w.Secret.Reveal(), nil
			}
		}
		return "", errWebhookRemoved
	}
	id, _ := strconv.ParseInt(strings.TrimPrefix(target, "inbox:"), 10, 64)
	var secret string
	err := s.db.Reader().QueryRowContext(ctx, `SELECT webhook_secret FROM inboxes WHERE id = $1`, id).Scan(&secret)
	if errors.Is(err, sql.ErrNoRows) { // the inbox is gone
		return "", errWebhookRemoved
	}
	return secret, err
}

// errWebhookRemoved: the delivery's webhook is no longer in the config
// (or its inbox no longer exists).
var errWebhookRemoved = errors.New("the webhook is no longer configured")

// Run delivers webhooks and surfaces unclaimed messages until ctx ends,
// every interval.
func (s *Service) Run(ctx context.Context, every time.Duration) {
	s.runner.Run(ctx, every,
		jobs.Step{Do: s.Sequence, Failed: "numbering inbox events failed"},
		jobs.Step{Do: s.SurfaceDue, Failed: "surfacing unclaimed messages failed"},
		jobs.Step{Do: s.DeliverDue, Failed: "webhook deliveries failed"})
}
