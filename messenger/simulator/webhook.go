package simulator

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf16"
)

// Wire types of webhook events, in Meta's field names and order.

type idRef struct {
	ID string `json:"id"`
}

type wireEvent struct {
	Sender               *idRef              `json:"sender,omitempty"` // absent on app_roles, as Meta documents it
	Recipient            idRef               `json:"recipient"`
	Timestamp            int64               `json:"timestamp,omitempty"` // absent on deliveries, as Meta documents them
	Message              *wireMessage        `json:"message,omitempty"`
	Postback             *wirePostback       `json:"postback,omitempty"`
	Delivery             *wireDelivery       `json:"delivery,omitempty"`
	Read                 *wireRead           `json:"read,omitempty"`
	PassThreadControl    *wireHandover       `json:"pass_thread_control,omitempty"`
	TakeThreadControl    *wireHandover       `json:"take_thread_control,omitempty"`
	RequestThreadControl *wireRequested      `json:"request_thread_control,omitempty"`
	AppRoles             map[string][]string `json:"app_roles,omitempty"`
}

type wireMessage struct {
	IsEcho      bool             `json:"is_echo,omitempty"`
	AppID       json.Number      `json:"app_id,omitempty"` // a number, as Meta sends it
	Metadata    string           `json:"metadata,omitempty"`
	MID         string           `json:"mid"`
	Text        string           `json:"text,omitempty"`
	QuickReply  *wirePayload     `json:"quick_reply,omitempty"`
	Attachments []wireAttachment `json:"attachments,omitempty"`
	ReplyTo     *wireReplyTo     `json:"reply_to,omitempty"`
}

type wirePayload struct {
	Payload string `json:"payload"`
}

type wireAttachment struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

type wireReplyTo struct {
	MID string `json:"mid"`
}

type wirePostback struct {
	MID     string `json:"mid"`
	Title   string `json:"title"`
	Payload string `json:"payload,omitempty"`
}

// wireDelivery is a delivery receipt; Meta's example (message_deliveries)
// has mids and watermark and no timestamp on the event.
type wireDelivery struct {
	MIDs      []string `json:"mids,omitempty"`
	Watermark int64    `json:"watermark"`
}

type wireRead struct {
	Watermark int64 `json:"watermark"`
}

type wireHandover struct {
	PreviousOwnerAppID *string `json:"previous_owner_app_id"` // null when the thread was idle
	NewOwnerAppID      string  `json:"new_owner_app_id"`
	Metadata           string  `json:"metadata,omitempty"`
}

type wireRequested struct {
	RequestedOwnerAppID string `json:"requested_owner_app_id"`
	Metadata            string `json:"metadata,omitempty"`
}

type wireEntry struct {
	ID        string      `json:"id"`
	Time      int64       `json:"time"`
	Messaging []wireEvent `json:"messaging,omitempty"`
	Standby   []wireEvent `json:"standby,omitempty"`
}

type wireEnvelope struct {
	Object string      `json:"object"`
	Entry  []wireEntry `json:"entry"`
}

// urlPayload returns the attachment payload {"url": url}.
func urlPayload(url string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"url": url})
	return b
}

// numericID returns id as a JSON number when it is numeric (app ids in echoes
// are numbers on the wire) and as a quoted string otherwise.
func numericID(id string) json.Number {
	if _, err := strconv.ParseUint(id, 10, 64); err == nil {
		return json.Number(id)
	}
	return json.Number(strconv.Quote(id))
}

// queuedEvent is an event waiting in an open batch.
type queuedEvent struct {
	page    string
	standby bool
	ev      wireEvent
}

// Delivery is one webhook POST to an app (one payload, retried as needed).
type Delivery struct {
	AppID     string
	Body      []byte // the exact signed body.
	Attempts  int    // POSTs made; 0 when the app has no WebhookURL.
	Status    int    // HTTP status of the last attempt; 0 on transport error or none.
	Delivered bool   // a 2xx answer was received.
}

// SetBatching sets how many events for the same app may share one webhook POST.
// With maxEvents > 1 events are held until maxEvents have accumulated for an
// app or Flush is called, then posted as one envelope whose entries carry
// several messaging/standby items. The default, 1, posts every event alone.
func (s *Sim) SetBatching(maxEvents int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batching = max(maxEvents, 1)
	for app, evs := range s.open {
		if len(evs) >= s.batching {
			s.seal(app)
		}
	}
}

// enqueue adds an event for app to its open batch, sealing it when full.
// Called with mu held.
func (s *Sim) enqueue(app, page string, standby bool, ev wireEvent) {
	s.open[app] = append(s.open[app], queuedEvent{page: page, standby: standby, ev: ev})
	if len(s.open[app]) >= s.batching {
		s.seal(app)
	}
}

// seal turns the open batch of app into one delivery. Called with mu held.
func (s *Sim) seal(app string) {
	evs := s.open[app]
	if len(evs) == 0 {
		return
	}
	delete(s.open, app)
	env := wireEnvelope{Object: "page"}
	for _, q := range evs {
		n := len(env.Entry)
		if n == 0 || env.Entry[n-1].ID != q.page || (len(env.Entry[n-1].Standby) > 0) != q.standby {
			at := q.ev.Timestamp
			if at == 0 && q.ev.Delivery != nil {
				at = q.ev.Delivery.Watermark
			}
			env.Entry = append(env.Entry, wireEntry{ID: q.page, Time: at})
			n++
		}
		e := &env.Entry[n-1]
		if q.standby {
			e.Standby = append(e.Standby, q.ev)
		} else {
			e.Messaging = append(e.Messaging, q.ev)
		}
	}
	body, err := json.Marshal(env)
	if err != nil {
		panic(fmt.Sprintf("simulator: marshal webhook: %v", err)) // our own types always marshal
	}
	s.push(app, escapeNonASCII(body))
}

// push queues a sealed body for delivery to app, and, under chaos, may
// hold a copy back to deliver again after the next one (a redelivery out
// of order). Called with mu held.
func (s *Sim) push(app string, body []byte) {
	s.pushOne(app, body)
	c := s.chaos
	if c == nil || (c.cfg.AppID != "" && c.cfg.AppID != app) {
		return
	}
	if held, ok := c.held[app]; ok {
		delete(c.held, app)
		c.injected["redelivered"]++
		s.pushOne(app, held)
	}
	if c.cfg.Redeliver > 0 && c.rng.Float64() < c.cfg.Redeliver {
		c.held[app] = slices.Clone(body)
	}
}

// releaseHeld queues every copy chaos holds back. Called with mu held.
func (s *Sim) releaseHeld() {
	if s.chaos == nil {
		return
	}
	for app, body := range s.chaos.held {
		delete(s.chaos.held, app)
		s.chaos.injected["redelivered"]++
		s.pushOne(app, body)
	}
}

// pushOne queues one body for delivery to app. Called with mu held.
func (s *Sim) pushOne(app string, body []byte) {
	d := &Delivery{AppID: app, Body: body}
	s.deliveries[app] = append(s.deliveries[app], d)
	if s.closed {
		return // recorded, never sent
	}
	if s.pending == 0 {
		s.idle = make(chan struct{})
	}
	s.pending++
	s.queues[app] = append(s.queues[app], d)
	if !s.workers[app] {
		s.workers[app] = true
		s.wg.Add(1)
		go s.worker(app)
	}
	s.wake.Broadcast()
}

// done marks one queued delivery finished. Called with mu held.
func (s *Sim) done() {
	s.pending--
	if s.pending == 0 {
		close(s.idle)
	}
}

// Deliver enqueues a raw webhook body for app, signed like every other
// delivery; use it to test redelivery, batching or out-of-order events.
func (s *Sim) Deliver(appID string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seal(appID) // keep FIFO order with events already waiting
	s.push(appID, slices.Clone(body))
}

// Deliveries returns the deliveries sealed for an app so far, oldest first.
func (s *Sim) Deliveries(appID string) []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, 0, len(s.deliveries[appID]))
	for _, d := range s.deliveries[appID] {
		out = append(out, *d)
	}
	return out
}

// Flush posts any partially filled batches and blocks until every queued
// delivery has been delivered or given up, or ctx is done.
func (s *Sim) Flush(ctx context.Context) error {
	s.mu.Lock()
	for app := range s.open {
		s.seal(app)
	}
	s.releaseHeld()
	idle := s.idle
	s.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the delivery workers; deliveries not yet made are given up.
func (s *Sim) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.cancel()
	s.wake.Broadcast()
	s.mu.Unlock()
	s.wg.Wait()

	s.mu.Lock()
	defer s.mu.Unlock()
	for app, q := range s.queues {
		for range q {
			s.done()
		}
		delete(s.queues, app)
	}
}

// worker posts the deliveries of one app in FIFO order.
func (s *Sim) worker(app string) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		for len(s.queues[app]) == 0 && !s.closed {
			s.wake.Wait()
		}
		if s.closed {
			s.mu.Unlock()
			return
		}
		d := s.queues[app][0]
		a := s.apps[app]
		s.mu.Unlock()

		s.attempt(a, d)

		s.mu.Lock()
		s.queues[app] = s.queues[app][1:]
		s.done()
		s.mu.Unlock()
	}
}

// attempt posts d to the app's webhook, retrying with exponential backoff.
func (s *Sim) attempt(a App, d *Delivery) {
	if a.WebhookURL == "" {
		return
	}
	delay := s.retryDelay
	for n := 1; ; n++ {
		status, err := s.post(a, d.Body)
		ok := err == nil && status >= 200 && status < 300
		s.mu.Lock()
		d.Attempts, d.Status, d.Delivered = n, status, ok
		s.mu.Unlock()
		if ok {
			s.log.Debug().Str("app_id", a.ID).Int("attempt", n).Msg("webhook delivered")
			return
		}
		s.log.Warn().Err(err).Str("app_id", a.ID).Int("status", status).Int("attempt", n).Msg("webhook delivery failed")
		if n >= s.maxAttempts {
			s.log.Warn().Str("app_id", a.ID).Msg("webhook delivery given up")
			return
		}
		select {
		case <-time.After(delay):
		case <-s.ctx.Done():
			return
		}
		if delay *= 2; s.maxDelay > 0 && delay > s.maxDelay {
			delay = s.maxDelay
		}
	}
}

// post makes one signed webhook POST and returns the HTTP status.
func (s *Sim) post(a App, body []byte) (int, error) {
	url := a.WebhookURL
	if len(a.Replicas) > 0 {
		urls := append([]string{a.WebhookURL}, a.Replicas...)
		url = urls[(s.posts.Add(1)-1)%uint64(len(urls))]
	}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "facebookexternalua")
	req.Header.Set("X-Hub-Signature-256", "sha256="+Sign256(a.Secret, body))
	req.Header.Set("X-Hub-Signature", "sha1="+hexHMAC(sha1.New, a.Secret, body))
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, nil
}

// Sign256 returns the lowercase hex HMAC-SHA256 of body keyed with secret, the
// value after "sha256=" in X-Hub-Signature-256.
func Sign256(secret string, body []byte) string {
	return hexHMAC(sha256.New, secret, body)
}

func hexHMAC(h func() hash.Hash, secret string, body []byte) string {
	m := hmac.New(h, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// escapeNonASCII rewrites every non-ASCII character of a JSON document as a
// \uXXXX escape, the form Meta signs and sends.
func escapeNonASCII(b []byte) []byte {
	if !slices.ContainsFunc(b, func(c byte) bool { return c >= 0x80 }) {
		return b
	}
	var out bytes.Buffer
	for _, r := range string(b) {
		if r < 0x80 {
			out.WriteByte(byte(r))
			continue
		}
		for _, u := range utf16.Encode([]rune{r}) {
			fmt.Fprintf(&out, `\u%04x`, u)
		}
	}
	return out.Bytes()
}
