package inbox

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/handoverd/handoverd/internal/redact"
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
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// retryDelay is the wait before attempt n+1: 5 s doubling, at most 5 min.
func retryDelay(attempts int) time.Duration {
	d := 5 * time.Second
	for i := 1; i < attempts && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}

// DeliverDue attempts every due delivery — per webhook and conversation,
// only the oldest pending one, so each receiver gets a conversation's
// events in order — and returns how many were delivered. Several processes
// may run it at once: a delivery is claimed with a lease first.
func (s *Service) DeliverDue(ctx context.Context) (int, error) {
	if _, err := s.Sequence(ctx); err != nil {
		return 0, err
	}
	now := store.Millis(s.now())
	ids, err := store.IDs(ctx, s.db.Reader(), `SELECT o.id FROM outbox o JOIN inbox_events e ON e.id = o.event_id
		WHERE o.status = 'pending' AND e.seq IS NOT NULL AND o.next_attempt_at <= $1 AND (o.lease_until IS NULL OR o.lease_until < $1)
		AND e.seq = (SELECT min(pe.seq) FROM outbox p JOIN inbox_events pe ON pe.id = p.event_id
			WHERE p.status = 'pending' AND p.target = o.target AND p.conversation_id = o.conversation_id)
		ORDER BY e.seq LIMIT 100`, now)
	if err != nil {
		return 0, err
	}
	delivered := 0
	for _, id := range ids {
		ok, err := s.deliverOne(ctx, id)
		if err != nil {
			return delivered, err
		}
		if ok {
			delivered++
		}
	}
	return delivered, nil
}

type delivery struct {
	id, eventID, conversationID int64
	target, url, deliveryID     string
	attempts                    int
	created                     int64
	payload                     []byte
}

func (s *Service) deliverOne(ctx context.Context, id int64) (bool, error) {
	now := s.now()
	var d delivery
	var ev storedEvent
	claimed := false
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if claimed, err = tx.Lease(ctx, "outbox", "pending", id, now.Add(outboxLease), now, true); err != nil || !claimed {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT o.id, o.event_id, o.conversation_id, o.target, o.url, o.delivery_id, o.attempts, o.created_at, `+
			storedEventColumns+` FROM outbox o JOIN inbox_events e ON e.id = o.event_id WHERE o.id = $1`, id).
			Scan(scanStoredEvent([]any{&d.id, &d.eventID, &d.conversationID, &d.target, &d.url, &d.deliveryID, &d.attempts, &d.created}, &ev)...)
	})
	if err != nil || !claimed {
		return false, err
	}
	payload, err := s.render(ctx, s.db.Reader(), ev)
	if err != nil {
		return false, err
	}
	d.payload = webhookBody([]byte(payload))
	secret, err := s.secretFor(ctx, d.target)
	if errors.Is(err, errWebhookRemoved) {
		s.metrics.OutboxDeliveries.WithLabelValues("failed").Inc()
		return false, s.db.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE outbox SET status = 'failed', last_error = $2, finished_at = $3, lease_until = NULL WHERE id = $1`,
				d.id, err.Error(), store.Millis(s.now()))
			return err
		})
	}
	if err != nil {
		return false, err
	}
	httpStatus, sendErr := s.post(ctx, d, secret)
	if ctx.Err() != nil {
		// Shutting down mid-attempt: hand the delivery back untouched (the
		// same delivery id goes out again from whichever process is next).
		return false, s.db.InTx(context.WithoutCancel(ctx), func(tx *store.Tx) error {
			_, err := tx.ExecContext(context.WithoutCancel(ctx), `UPDATE outbox SET lease_until = NULL, attempts = attempts - 1 WHERE id = $1`, d.id)
			return err
		})
	}
	status := httpStatus
	result, finished := "delivered", true
	var next time.Time
	switch {
	case sendErr == nil && status >= 200 && status < 300:
	case sendErr != nil || status == http.StatusTooManyRequests || status >= 500 || status == http.StatusRequestTimeout:
		next = now.Add(retryDelay(d.attempts))
		result, finished = "retry", false
		if next.Sub(store.Time(d.created)) > s.cfg.GiveUpAfter {
			result, finished = "failed", true
		}
	default:
		result = "failed" // other 4xx: the receiver refuses it; retrying will not help
	}
	errText := ""
	if sendErr != nil {
		errText = redact.Error(sendErr)
	} else if result != "delivered" {
		errText = fmt.Sprintf("HTTP %d", status)
	}
	s.metrics.OutboxDeliveries.WithLabelValues(result).Inc()
	if result != "delivered" {
		s.log.Warn().Str("url", redact.URL(d.url)).Str("delivery", d.deliveryID).Int("attempt", d.attempts).Str("result", result).Str("error", errText).Msg("webhook delivery failed")
	}
	return result == "delivered", s.db.InTx(ctx, func(tx *store.Tx) error {
		if finished {
			status := "delivered"
			if result == "failed" {
				status = "failed"
			}
			_, err := tx.ExecContext(ctx, `UPDATE outbox SET status = $2, last_status = $3, last_error = $4, finished_at = $5, lease_until = NULL WHERE id = $1`,
				d.id, status, httpStatus, errText, store.Millis(s.now()))
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE outbox SET next_attempt_at = $2, last_status = $3, last_error = $4, lease_until = NULL WHERE id = $1`,
			d.id, store.Millis(next), httpStatus, errText)
		return err
	})
}

// post sends one signed attempt and returns the receiver's status.
func (s *Service) post(ctx context.Context, d delivery, secret string) (int, error) {
	ts := s.now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(d.payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "handoverd-webhooks")
	req.Header.Set(HeaderDelivery, d.deliveryID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, SignWebhook(secret, ts, d.payload))
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
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
	return secret, err
}

// errWebhookRemoved: the delivery's webhook is no longer in the config.
var errWebhookRemoved = errors.New("the webhook is no longer configured")

// Run delivers webhooks and surfaces unclaimed messages until ctx ends,
// every interval.
func (s *Service) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.Sequence(ctx); err != nil && ctx.Err() == nil {
				s.log.Error().Err(err).Msg("numbering inbox events failed")
			}
			if _, err := s.SurfaceDue(ctx); err != nil && ctx.Err() == nil {
				s.log.Error().Err(err).Msg("surfacing unclaimed messages failed")
			}
			if _, err := s.DeliverDue(ctx); err != nil && ctx.Err() == nil {
				s.log.Error().Err(err).Msg("webhook deliveries failed")
			}
		}
	}
}
