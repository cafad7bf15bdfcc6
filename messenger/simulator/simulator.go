// Package simulator is a stand-in for Meta's Graph API and Messenger Platform.
//
// A Sim is a real HTTP server (see Sim.Handler) that speaks the Send API and
// the Conversation Routing thread-control edges (pass, take, request and
// release thread control, thread_owner) in Meta's wire format, keeps the
// per-thread ownership state, and delivers signed webhooks (messaging,
// standby, echoes and handover events) to every app connected to a page.
// Faults can be scripted (InjectFault) or left to chance on a seed
// (SetChaos: 5xx storms, rate limits, slow answers, redelivered and
// reordered webhooks).
// Tests, benchmarks and the local sandbox (cmd/messenger-sim) use it in place
// of Facebook.
package simulator

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// idleAfter is how long a thread stays owned without activity.
const idleAfter = 24 * time.Hour

// pageInboxAppID is the app id of Meta's Page Inbox; passing control to it is
// always allowed even when it is not registered as an app.
const pageInboxAppID = "263902037430900"

// Config configures a Sim.
type Config struct {
	Now         func() time.Time // injected clock; nil → time.Now.
	HTTPClient  *http.Client     // for webhook delivery; nil → client with 5 s timeout.
	Logger      zerolog.Logger   // zero value → disabled logger.
	RetryDelay  time.Duration    // first delay between webhook delivery retries; 0 → 50ms, doubling.
	MaxDelay    time.Duration    // longest delay between retries; 0 → no bound.
	MaxAttempts int              // webhook delivery attempts per payload; 0 → 8.
}

// App is a Facebook app connected to one or more pages.
type App struct {
	ID, Secret string
	WebhookURL string // "" → deliveries recorded but not sent.
	// Replicas are more URLs of the same webhook (replicas of the app,
	// behind no proxy): each POST goes to the next of WebhookURL and these,
	// round robin, so a retry lands on another replica.
	Replicas []string
}

// Page is a Facebook page and the apps connected to it.
type Page struct {
	ID           string
	DefaultAppID string            // "" → zero-config (no default app).
	Tokens       map[string]string // page access token → app id (each connected app has its own token for this page).
}

// Thread is the routing state of one conversation (page, PSID).
type Thread struct {
	OwnerAppID        string    // "" = idle.
	ExpiresAt         time.Time // zero when idle.
	LastUserMessageAt time.Time // zero when the customer never wrote.
}

// Call is one Graph API request received by the simulator.
type Call struct {
	Op         string            `json:"op"` // "send", "pass_thread_control", "take_thread_control", "request_thread_control", "release_thread_control", "thread_owner".
	AppID      string            `json:"app_id"`
	PageID     string            `json:"page_id"`
	PSID       string            `json:"psid"`
	Params     map[string]string `json:"params"` // request parameters without access_token and appsecret_proof.
	HTTPStatus int               `json:"http_status"`
	Code       int               `json:"code"`
	Subcode    int               `json:"subcode"`
}

// Fault makes the next Times calls matching Op and AppID fail with the given
// Graph error. Op "" matches any op and AppID "" matches any app; Times 0 means
// once, HTTPStatus 0 means 400 and Code 0 means 2 (temporary error).
type Fault struct {
	Op, AppID  string
	Times      int
	HTTPStatus int
	Code       int
	Subcode    int
	Message    string
}

// CustomerMessage is a message a customer writes to a page.
type CustomerMessage struct {
	Text              string       `json:"text"`
	QuickReplyPayload string       `json:"quick_reply_payload"`
	Attachments       []Attachment `json:"attachments"`
	ReplyToMID        string       `json:"reply_to_mid"`
}

// Attachment is a media attachment of a customer message or a sent message.
type Attachment struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

// SentMessage is one message the customer received through the Send API.
type SentMessage struct {
	MID         string       `json:"mid"`
	AppID       string       `json:"app_id"`
	Text        string       `json:"text,omitempty"`
	Attachments []Attachment `json:"attachments,omitempty"`
	Metadata    string       `json:"metadata,omitempty"`
	Time        time.Time    `json:"time"`
}

type threadKey struct{ page, psid string }

// thread is the internal state of one conversation.
type thread struct {
	owner      string
	expiresAt  time.Time
	lastUser   time.Time
	transcript []SentMessage
}

// expire makes the thread idle when its owner's time is up.
func (t *thread) expire(now time.Time) {
	if t.owner != "" && !now.Before(t.expiresAt) {
		t.owner, t.expiresAt = "", time.Time{}
	}
}

// setOwner gives the thread to app (or makes it idle) and restarts the expiry.
func (t *thread) setOwner(app string, now time.Time) {
	t.owner, t.expiresAt = app, time.Time{}
	if app != "" {
		t.expiresAt = now.Add(idleAfter)
	}
}

type tokenInfo struct{ page, app string }

// Sim is a Messenger/Graph API simulator. Create it with New.
type Sim struct {
	now         func() time.Time
	client      *http.Client
	log         zerolog.Logger
	retryDelay  time.Duration
	maxDelay    time.Duration
	maxAttempts int
	posts       atomic.Uint64 // webhook POSTs made, for round robin over replicas

	ctx    context.Context // canceled by Close: aborts deliveries in flight and retry waits.
	cancel context.CancelFunc
	wg     sync.WaitGroup // delivery workers.

	// mu guards every field below: registry, threads, calls, faults and the
	// webhook queues. Graph calls run entirely under mu; network I/O does not.
	mu         sync.Mutex
	wake       *sync.Cond // on mu; broadcast when a queue grows or on Close.
	apps       map[string]App
	pages      map[string]*Page
	tokens     map[string]tokenInfo
	threads    map[threadKey]*thread
	calls      []Call
	faults     []*Fault
	chaos      *chaos // random faults, when switched on
	batching   int
	open       map[string][]queuedEvent // per app: events of the batch being filled.
	queues     map[string][]*Delivery   // per app: sealed deliveries not yet done, head in flight.
	deliveries map[string][]*Delivery   // per app: every delivery ever sealed.
	workers    map[string]bool          // apps whose worker goroutine runs.
	pending    int                      // deliveries queued or in flight.
	idle       chan struct{}            // closed while pending == 0.
	closed     bool
}

// New returns a simulator with no apps or pages.
func New(cfg Config) *Sim {
	s := &Sim{
		now:         cfg.Now,
		client:      cfg.HTTPClient,
		log:         cfg.Logger,
		retryDelay:  cfg.RetryDelay,
		maxDelay:    cfg.MaxDelay,
		maxAttempts: cfg.MaxAttempts,
		apps:        map[string]App{},
		pages:       map[string]*Page{},
		tokens:      map[string]tokenInfo{},
		threads:     map[threadKey]*thread{},
		batching:    1,
		open:        map[string][]queuedEvent{},
		queues:      map[string][]*Delivery{},
		deliveries:  map[string][]*Delivery{},
		workers:     map[string]bool{},
		idle:        make(chan struct{}),
	}
	close(s.idle)
	if s.now == nil {
		s.now = time.Now
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 5 * time.Second}
	}
	if s.retryDelay <= 0 {
		s.retryDelay = 50 * time.Millisecond
	}
	if s.maxAttempts <= 0 {
		s.maxAttempts = 8
	}
	s.wake = sync.NewCond(&s.mu)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// AddApp registers an app, replacing any app with the same id.
func (s *Sim) AddApp(a App) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[a.ID] = a
}

// AddPage registers a page and its access tokens, replacing any page with the same id.
func (s *Sim) AddPage(p Page) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.pages[p.ID]; old != nil {
		for tok := range old.Tokens {
			delete(s.tokens, tok)
		}
	}
	cp := p
	cp.Tokens = make(map[string]string, len(p.Tokens))
	for tok, app := range p.Tokens {
		cp.Tokens[tok] = app
		s.tokens[tok] = tokenInfo{page: p.ID, app: app}
	}
	s.pages[p.ID] = &cp
}

// connectedApps returns the ids of the registered apps connected to pg
// (through a token or as default app), sorted.
func (s *Sim) connectedApps(pg *Page) []string {
	var ids []string
	add := func(id string) {
		if _, ok := s.apps[id]; ok && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	add(pg.DefaultAppID)
	for _, app := range pg.Tokens {
		add(app)
	}
	slices.Sort(ids)
	return ids
}

// isConnected reports whether app is connected to pg.
func isConnected(pg *Page, app string) bool {
	if app == pg.DefaultAppID {
		return true
	}
	for _, a := range pg.Tokens {
		if a == app {
			return true
		}
	}
	return false
}

// thread returns the thread (page, psid), creating it when create is set.
func (s *Sim) thread(page, psid string, create bool) *thread {
	k := threadKey{page, psid}
	th := s.threads[k]
	if th == nil && create {
		th = &thread{}
		s.threads[k] = th
	}
	return th
}

// Thread returns the routing state of a conversation, with idle expiry applied.
func (s *Sim) Thread(pageID, psid string) Thread {
	s.mu.Lock()
	defer s.mu.Unlock()
	th := s.thread(pageID, psid, false)
	if th == nil {
		return Thread{}
	}
	th.expire(s.now())
	return Thread{OwnerAppID: th.owner, ExpiresAt: th.expiresAt, LastUserMessageAt: th.lastUser}
}

// SetOwner sets the owner of a conversation ("" = idle) without sending any webhook.
func (s *Sim) SetOwner(pageID, psid, appID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.thread(pageID, psid, true).setOwner(appID, s.now())
}

// Inbox returns the messages the customer received through the Send API in a
// conversation, oldest first.
func (s *Sim) Inbox(pageID, psid string) []SentMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	th := s.thread(pageID, psid, false)
	if th == nil {
		return nil
	}
	return slices.Clone(th.transcript)
}

// Calls returns every Graph API call received, in order, including failed ones.
func (s *Sim) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// ResetCalls forgets the recorded calls.
func (s *Sim) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// InjectFault makes upcoming Graph calls fail; see Fault.
func (s *Sim) InjectFault(f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	if f.HTTPStatus == 0 {
		f.HTTPStatus = http.StatusBadRequest
	}
	if f.Code == 0 {
		f.Code = 2
	}
	if f.Message == "" {
		f.Message = fmt.Sprintf("(#%d) Simulated fault", f.Code)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// takeFault consumes and returns the first fault matching op and app, or nil.
func (s *Sim) takeFault(op, app string) *Fault {
	for i, f := range s.faults {
		if (f.Op == "" || f.Op == op) && (f.AppID == "" || f.AppID == app) {
			f.Times--
			if f.Times <= 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
			return f
		}
	}
	return nil
}

// CustomerSends simulates a customer message: it routes the thread and
// enqueues the message webhook to every app of the page.
func (s *Sim) CustomerSends(pageID, psid string, m CustomerMessage) (mid string, err error) {
	if m.Text == "" && len(m.Attachments) == 0 {
		return "", errors.New("simulator: customer message needs text or attachments")
	}
	mid = newID("m_", 32)
	msg := wireMessage{MID: mid, Text: m.Text}
	if m.QuickReplyPayload != "" {
		msg.QuickReply = &wirePayload{Payload: m.QuickReplyPayload}
	}
	for _, a := range m.Attachments {
		msg.Attachments = append(msg.Attachments, wireAttachment{Type: a.Type, Payload: urlPayload(a.URL)})
	}
	if m.ReplyToMID != "" {
		msg.ReplyTo = &wireReplyTo{MID: m.ReplyToMID}
	}
	err = s.customerEvent(pageID, psid, true, func(ev *wireEvent, standby bool) { ev.Message = &msg })
	if err == nil {
		s.log.Info().Str("page_id", pageID).Str("psid", psid).Str("mid", mid).Str("text", m.Text).Int("attachments", len(m.Attachments)).
			Msg("customer wrote")
	}
	return mid, err
}

// CustomerPostback simulates a customer tapping a button; apps on standby get
// the postback without its payload, as on Messenger.
func (s *Sim) CustomerPostback(pageID, psid, title, payload string) (mid string, err error) {
	mid = newID("m_", 32)
	err = s.customerEvent(pageID, psid, true, func(ev *wireEvent, standby bool) {
		pb := &wirePostback{MID: mid, Title: title, Payload: payload}
		if standby {
			pb.Payload = ""
		}
		ev.Postback = pb
	})
	if err == nil {
		s.log.Info().Str("page_id", pageID).Str("psid", psid).Str("mid", mid).Str("title", title).Msg("customer tapped a button")
	}
	return mid, err
}

// CustomerReads simulates the customer reading the conversation: a read event
// with watermark = now goes to the owner (messaging) and the others (standby).
func (s *Sim) CustomerReads(pageID, psid string) error {
	return s.customerEvent(pageID, psid, false, func(ev *wireEvent, standby bool) {
		ev.Read = &wireRead{Watermark: ev.Timestamp}
	})
}

// customerEvent applies the routing rules for an event from the customer and
// fans it out to the apps of the page; message marks a message or postback,
// which opens the window and routes an idle thread to the default app.
func (s *Sim) customerEvent(pageID, psid string, message bool, fill func(ev *wireEvent, standby bool)) error {
	if psid == "" {
		return errors.New("simulator: empty PSID")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pg := s.pages[pageID]
	if pg == nil {
		return fmt.Errorf("simulator: unknown page %q", pageID)
	}
	now := s.now()
	th := s.thread(pageID, psid, true)
	th.expire(now)
	if message {
		th.lastUser = now
		switch {
		case th.owner != "":
			th.expiresAt = now.Add(idleAfter)
		case pg.DefaultAppID != "":
			th.setOwner(pg.DefaultAppID, now)
		}
	}
	for _, app := range s.connectedApps(pg) {
		standby := pg.DefaultAppID != "" && app != th.owner
		ev := wireEvent{Sender: &idRef{psid}, Recipient: idRef{pageID}, Timestamp: now.UnixMilli()}
		fill(&ev, standby)
		s.enqueue(app, pageID, standby, ev)
	}
	return nil
}

// newID returns prefix followed by n random bytes in URL-safe base64.
func newID(prefix string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// SetAppRoles plays a Page admin assigning app roles under the Handover
// Protocol (roles maps app id to roles such as "primary_receiver" and
// "secondary_receiver"): every app connected to the Page gets an app_roles
// event, in Meta's format (no sender). The primary receiver becomes the
// Page's default app (none when roles name no primary receiver).
func (s *Sim) SetAppRoles(pageID string, roles map[string][]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	pg := s.pages[pageID]
	if pg == nil {
		return fmt.Errorf("simulator: unknown page %q", pageID)
	}
	primary := ""
	for app, rs := range roles {
		if slices.Contains(rs, "primary_receiver") {
			if primary != "" {
				return fmt.Errorf("simulator: apps %s and %s are both primary receivers", primary, app)
			}
			primary = app
		}
	}
	now := s.now()
	for _, app := range s.connectedApps(pg) {
		s.enqueue(app, pageID, false, wireEvent{Recipient: idRef{pageID}, Timestamp: now.UnixMilli(), AppRoles: roles})
	}
	pg.DefaultAppID = primary
	return nil
}
