package messenger

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/httpapi"
	"github.com/handoverd/handoverd/metrics"
)

// MaxWebhookBytes bounds a webhook body; larger bodies get 413.
const MaxWebhookBytes = 1 << 20

// Ingester durably applies webhook events. It returns only after the events
// are committed; an error means nothing may be acknowledged.
type Ingester interface {
	Ingest(ctx context.Context, events []Event) error
}

// Webhook is the Messenger webhook edge: Meta's verification GET and the
// signed event POSTs.
type Webhook struct {
	// AppSecret keys the X-Hub-Signature-256 HMAC.
	AppSecret config.Secret
	// VerifyToken is the token Meta's verification request must carry.
	VerifyToken config.Secret
	// KnownPage reports whether a Page id is configured.
	KnownPage func(pageID string) bool
	// Ingester applies the events.
	Ingester Ingester
	// Metrics records webhook metrics.
	Metrics *metrics.Metrics
	// Now is the clock.
	Now func() time.Time
}

// Routes registers GET and POST /webhooks/messenger.
func (wh *Webhook) Routes(r *httpapi.Router) {
	r.HandleFunc(http.MethodGet, "/webhooks/messenger", wh.verify)
	r.HandleFunc(http.MethodPost, "/webhooks/messenger", wh.receive)
}

// verify answers Meta's subscription check: 200 with hub.challenge when
// hub.mode is subscribe and hub.verify_token matches, else 403.
func (wh *Webhook) verify(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	token := []byte(q.Get("hub.verify_token"))
	want := []byte(wh.VerifyToken.Reveal())
	if q.Get("hub.mode") != "subscribe" || len(want) == 0 || subtle.ConstantTimeCompare(token, want) != 1 {
		zerolog.Ctx(r.Context()).Warn().Str("mode", q.Get("hub.mode")).Msg("webhook verification refused")
		httpapi.WriteError(w, r, apperr.New(apperr.Forbidden, "verification failed"))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, q.Get("hub.challenge"))
}

// receive authenticates, parses and durably applies one webhook POST, and
// answers 200 only once its events are committed.
func (wh *Webhook) receive(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	result := "error"
	defer func() {
		wh.Metrics.WebhookRequests.WithLabelValues(result).Inc()
		if result == "accepted" {
			wh.Metrics.WebhookIngestDuration.Observe(time.Since(start).Seconds())
		}
	}()
	log := zerolog.Ctx(r.Context())

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			result = "too_large"
			httpapi.WriteError(w, r, apperr.New(apperr.TooLarge, "webhook body is over %d bytes", MaxWebhookBytes))
			return
		}
		httpapi.WriteError(w, r, apperr.Field("body", "could not be read"))
		return
	}
	if err := VerifySignature(wh.AppSecret.Reveal(), body, r.Header.Get("X-Hub-Signature-256")); err != nil {
		result = "bad_signature"
		wh.Metrics.WebhookSignatureFailures.Inc()
		log.Warn().Err(err).Msg("webhook signature refused")
		httpapi.WriteError(w, r, &apperr.Error{Code: apperr.Unauthorized, Field: "X-Hub-Signature-256", Message: err.Error()})
		return
	}
	batch, err := ParseWebhook(body)
	if err != nil {
		result = "bad_json"
		httpapi.WriteError(w, r, &apperr.Error{Code: apperr.Invalid, Field: "body", Message: err.Error()})
		return
	}
	if batch.Object != "" && batch.Object != "page" {
		// Not a Messenger Page webhook (e.g. instagram): acknowledge, count, ignore.
		result = "accepted"
		for _, ev := range batch.Events {
			wh.Metrics.WebhookEvents.WithLabelValues(string(ev.Kind), "ignored").Inc()
		}
		log.Warn().Str("object", batch.Object).Int("events", len(batch.Events)).Msg("webhook for another object ignored")
		acknowledge(w)
		return
	}
	if events := wh.applicable(batch, log); len(events) > 0 {
		if err := wh.Ingester.Ingest(r.Context(), events); err != nil {
			// Not acknowledged: Meta will redeliver, and deduplication makes
			// the events that did commit harmless.
			httpapi.WriteError(w, r, apperr.Wrap(err, apperr.Unavailable, "events could not be stored; retry"))
			return
		}
		now := wh.Now()
		for _, ev := range events {
			wh.Metrics.PageLastWebhook.WithLabelValues(ev.PageID).Set(float64(now.UnixMilli()) / 1000)
		}
	}
	result = "accepted"
	acknowledge(w)
}

// acknowledge answers Meta the way its docs show: 200 EVENT_RECEIVED.
func acknowledge(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "EVENT_RECEIVED")
}

// applicable returns the batch's events thread control applies; the rest
// (unreadable items, unconfigured Pages, unknown kinds) are acknowledged,
// counted and logged, and dropped.
func (wh *Webhook) applicable(batch Batch, log *zerolog.Logger) []Event {
	for _, m := range batch.Malformed {
		wh.Metrics.WebhookEvents.WithLabelValues(string(KindUnknown), "malformed").Inc()
		log.Warn().Str("page_id", m.PageID).Str("item", m.Where).Err(m.Err).Msg("unreadable webhook item acknowledged and dropped")
	}
	events := make([]Event, 0, len(batch.Events))
	for _, ev := range batch.Events {
		switch {
		case !wh.KnownPage(ev.PageID):
			wh.Metrics.WebhookEvents.WithLabelValues(string(ev.Kind), "unknown_page").Inc()
			log.Warn().Str("page_id", ev.PageID).Str("kind", string(ev.Kind)).Msg("webhook event for an unconfigured page acknowledged and dropped")
		case ev.Kind == KindUnknown:
			wh.Metrics.WebhookEvents.WithLabelValues(string(ev.Kind), "ignored").Inc()
			log.Warn().Str("page_id", ev.PageID).Strs("keys", ev.UnknownKeys).Msg("webhook event of an unknown kind acknowledged and dropped")
		default:
			events = append(events, ev)
		}
	}
	return events
}

// VerifySignature checks an X-Hub-Signature-256 header ("sha256=<hex>")
// against the HMAC-SHA256 of the raw body keyed with the app secret.
func VerifySignature(secret string, body []byte, header string) error {
	if header == "" {
		return errors.New("signature header is missing")
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return errors.New("signature must start with sha256=")
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return errors.New("signature is not hex")
	}
	if !hmac.Equal(got, Sign(secret, body)) {
		return errors.New("signature does not match")
	}
	return nil
}

// Sign returns HMAC-SHA256(secret, body), the value Meta puts in
// X-Hub-Signature-256 (hex-encoded, after "sha256=").
func Sign(secret string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return m.Sum(nil)
}

// SignatureHeader returns the X-Hub-Signature-256 value for body.
func SignatureHeader(secret string, body []byte) string {
	return "sha256=" + hex.EncodeToString(Sign(secret, body))
}
