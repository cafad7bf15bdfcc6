// Package analytics computes handoff analytics per Page and day — how
// many conversations the bot contained, how many it handed to the agents
// and why, how fast the agents first replied, how they ended — from the
// stored thread history (thread_transitions, the handover operations in
// control_ops and the agent messages sent), never from a second count of
// its own.
package analytics

import (
	"context"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/store"
)

// Lookback is how far around a range the history is read: before its
// start, to find where conversations under way at the start began (one
// that began earlier still is not a conversation of the range); after its
// end, to see how its conversations ended (one still going on then is not
// counted as contained).
const Lookback = 7 * 24 * time.Hour

// MaxDays bounds a range.
const MaxDays = 366

// Owners and causes as thread_transitions stores them.
const (
	ownerIdle  = "idle"
	ownerBot   = "bot"
	ownerAgent = "agent"
	// ownerPageInbox: people answering in Meta's Page Inbox.
	ownerPageInbox = "page_inbox"

	causeCustomerMessage = "customer_message"
	causeRelease         = "release_thread_control"
)

// Counts are the analytics of one day, or of a whole range.
type Counts struct {
	// Conversations is how many conversations started: a thread leaving
	// idle (the customer writing into an idle thread, usually).
	Conversations int `json:"conversations"`
	// ContainedByBot counts the conversations that started in the period,
	// were held by the bot, and ended (went idle) without reaching an agent
	// (handoverd's or the Page Inbox's).
	ContainedByBot int `json:"contained_by_bot"`
	// HandedToAgents counts hand-offs to the agents: a thread becoming the
	// agents' other than by a new conversation arriving at them as the
	// Page's default app.
	HandedToAgents int `json:"handed_to_agents"`
	// HandedToAgentsByReason splits HandedToAgents by the reason stored with
	// the transition (bot_requested, customer_asked, agent_took_over,
	// meta_event, reconciled, …; for history from before reasons were
	// stored, the transition's cause).
	HandedToAgentsByReason map[string]int `json:"handed_to_agents_by_reason"`
	// FirstReplies counts the hand-offs an agent has replied to since.
	FirstReplies int `json:"first_replies"`
	// FirstReplySecondsP50 and P90 are the time from a hand-off to the
	// agents' first message sent (null without replies).
	FirstReplySecondsP50 *float64 `json:"first_reply_seconds_p50"`
	FirstReplySecondsP90 *float64 `json:"first_reply_seconds_p90"`
	// ResolvedByAgents counts threads the agents released (to idle).
	ResolvedByAgents int `json:"resolved_by_agents"`
	// HandedBackToBot counts threads passed from the agents to the bot.
	HandedBackToBot int `json:"handed_back_to_bot"`
	// OffersExpired counts requests for control handoverd made that were
	// not granted within handover.control_timeout.
	OffersExpired int `json:"offers_expired"`

	replies []float64
}

// Day is one day's analytics.
type Day struct {
	// Date is the day (UTC), YYYY-MM-DD.
	Date string `json:"date"`
	Counts
}

// Report is the analytics of a Page over a range of days.
type Report struct {
	PageID string `json:"page_id"`
	// From and To are the first and last day (UTC, inclusive).
	From string `json:"from"`
	To   string `json:"to"`
	// Days has one entry per day of the range, oldest first.
	Days []Day `json:"days"`
	// Total is the whole range (its percentiles over every reply in it).
	Total Counts `json:"total"`
}

// Options configures a Service.
type Options struct {
	// DB is the database.
	DB *store.DB
	// Pages are the configured Pages.
	Pages []config.Page
	// ControlTimeout is how long a request for control counts as pending.
	ControlTimeout time.Duration
	// Now is the clock.
	Now func() time.Time
}

// Service computes analytics.
type Service struct {
	db             *store.DB
	pages          map[string]config.Page
	pageList       []config.Page
	controlTimeout time.Duration
	now            func() time.Time
}

// New returns a Service.
func New(o Options) *Service {
	s := &Service{db: o.DB, pages: map[string]config.Page{}, pageList: o.Pages, controlTimeout: o.ControlTimeout, now: o.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if s.controlTimeout <= 0 {
		s.controlTimeout = config.DefaultControlWait
	}
	for _, p := range o.Pages {
		s.pages[p.ID] = p
	}
	return s
}

// Page returns a configured Page.
func (s *Service) Page(id string) (config.Page, bool) {
	p, ok := s.pages[id]
	return p, ok
}

type transition struct {
	psid, from, to, cause, reason string
	at                            time.Time
}

// isHandoff tells whether t hands a conversation to the agents: any
// change to the agents, except a new conversation reaching them as the
// default app (from idle on a customer's message).
func isHandoff(t transition) bool {
	return t.to == ownerAgent && t.from != ownerAgent && !(t.from == ownerIdle && t.cause == causeCustomerMessage)
}

// Compute returns the analytics of pageID for the days from..to (UTC dates,
// inclusive).
func (s *Service) Compute(ctx context.Context, pageID string, from, to time.Time) (Report, error) {
	start := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
	end := time.Date(to.Year(), to.Month(), to.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
	h, err := s.load(ctx, pageID, start, end)
	if err != nil {
		return Report{}, err
	}
	return compute(pageID, start, end, h, s.now(), s.controlTimeout), nil
}

// history is what the analytics of a range are computed from.
type history struct {
	// transitions are the Page's owner changes per PSID in order, from
	// Lookback before the range to Lookback (or the control timeout) after it.
	transitions []transition
	// replies are when agents' messages went out, per PSID in order, since
	// Lookback before the range.
	replies map[string][]time.Time
	// requests are the requests for control Facebook accepted in the range.
	requests []request
}

// load reads the history of pageID around the days [start, end).
func (s *Service) load(ctx context.Context, pageID string, start, end time.Time) (history, error) {
	var h history
	var err error
	// After the range, the history says how its conversations ended and
	// whether its requests were granted; nothing there is counted itself.
	if h.transitions, err = s.transitions(ctx, pageID, start.Add(-Lookback), end.Add(max(Lookback, s.controlTimeout))); err != nil {
		return history{}, err
	}
	if h.replies, err = s.agentReplies(ctx, pageID, start.Add(-Lookback)); err != nil {
		return history{}, err
	}
	if h.requests, err = s.requests(ctx, pageID, start, end); err != nil {
		return history{}, err
	}
	return h, nil
}

// compute is the report of pageID for the days [start, end) from h, at
// now, with requests for control expiring after controlTimeout.
func compute(pageID string, start, end time.Time, h history, now time.Time, controlTimeout time.Duration) Report {
	rep := Report{PageID: pageID, From: start.Format(time.DateOnly), To: end.AddDate(0, 0, -1).Format(time.DateOnly)}
	for d := start; d.Before(end); d = d.AddDate(0, 0, 1) {
		rep.Days = append(rep.Days, Day{Date: d.Format(time.DateOnly), Counts: Counts{HandedToAgentsByReason: map[string]int{}}})
	}
	days := map[string]*Day{}
	for i := range rep.Days {
		days[rep.Days[i].Date] = &rep.Days[i]
	}
	inRange := func(t time.Time) *Day {
		if t.Before(start) || !t.Before(end) {
			return nil
		}
		return days[t.UTC().Format(time.DateOnly)]
	}
	toAgent := countTransitions(h.transitions, h.replies, inRange)
	countExpired(h.requests, toAgent, now, controlTimeout, inRange)
	rep.Total.HandedToAgentsByReason = map[string]int{}
	for i := range rep.Days {
		d := &rep.Days[i]
		d.FirstReplySecondsP50, d.FirstReplySecondsP90 = percentile(d.replies, 50), percentile(d.replies, 90)
		rep.Total.add(d.Counts)
	}
	rep.Total.FirstReplySecondsP50, rep.Total.FirstReplySecondsP90 = percentile(rep.Total.replies, 50), percentile(rep.Total.replies, 90)
	return rep
}

// countTransitions counts conversations, hand-offs (and the agents' first
// replies to them), hand-backs, resolutions and conversations contained by
// the bot into the day inRange gives each (nil: outside the range). It
// returns, per PSID, when the thread became the agents'.
func countTransitions(trs []transition, replies map[string][]time.Time, inRange func(time.Time) *Day) map[string][]time.Time {
	toAgent := map[string][]time.Time{}
	type episode struct {
		startDay *Day
		handed   bool // reached the agents
		human    bool // reached the Page Inbox
		bot      bool
	}
	var ep *episode
	for i, t := range trs {
		if i == 0 || trs[i-1].psid != t.psid {
			ep = nil
		}
		if t.to == ownerAgent {
			toAgent[t.psid] = append(toAgent[t.psid], t.at)
		}
		if t.from == ownerIdle && t.to != ownerIdle {
			ep = &episode{startDay: inRange(t.at)}
			if ep.startDay != nil {
				ep.startDay.Conversations++
			}
		}
		if ep == nil {
			ep = &episode{} // under way since before the lookback
		}
		switch t.to {
		case ownerBot:
			ep.bot = true
		case ownerPageInbox:
			ep.human = true
		}
		day := inRange(t.at)
		if isHandoff(t) {
			ep.handed = true
			if day != nil {
				day.HandedToAgents++
				day.HandedToAgentsByReason[t.reasonOrCause()]++
				if r, ok := firstAfter(replies[t.psid], t.at); ok {
					day.FirstReplies++
					day.replies = append(day.replies, r.Sub(t.at).Seconds())
				}
			}
		}
		if day != nil && t.from == ownerAgent && t.to == ownerBot {
			day.HandedBackToBot++
		}
		if day != nil && t.from == ownerAgent && t.to == ownerIdle && t.cause == causeRelease {
			day.ResolvedByAgents++
		}
		if t.to == ownerIdle {
			if ep.startDay != nil && ep.bot && !ep.handed && !ep.human {
				ep.startDay.ContainedByBot++
			}
			ep = nil
		}
	}
	return toAgent
}

// countExpired counts the requests for control not granted (the thread
// becoming the agents', toAgent) within controlTimeout; one still within
// it at now is pending, not expired.
func countExpired(requests []request, toAgent map[string][]time.Time, now time.Time, controlTimeout time.Duration, inRange func(time.Time) *Day) {
	for _, r := range requests {
		deadline := r.at.Add(controlTimeout)
		if now.Before(deadline) {
			continue // still pending, not expired yet
		}
		if g, ok := firstAfter(toAgent[r.psid], r.at); ok && !g.After(deadline) {
			continue // granted in time
		}
		if d := inRange(r.at); d != nil {
			d.OffersExpired++
		}
	}
}

// add sums c into t (percentiles are computed afterwards from the replies).
func (t *Counts) add(c Counts) {
	t.Conversations += c.Conversations
	t.ContainedByBot += c.ContainedByBot
	t.HandedToAgents += c.HandedToAgents
	for k, v := range c.HandedToAgentsByReason {
		t.HandedToAgentsByReason[k] += v
	}
	t.FirstReplies += c.FirstReplies
	t.ResolvedByAgents += c.ResolvedByAgents
	t.HandedBackToBot += c.HandedBackToBot
	t.OffersExpired += c.OffersExpired
	t.replies = append(t.replies, c.replies...)
}

// percentile is the nearest-rank p-th percentile of vs (nil when empty).
func percentile(vs []float64, p float64) *float64 {
	if len(vs) == 0 {
		return nil
	}
	s := slices.Clone(vs)
	sort.Float64s(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	v := s[max(i, 0)]
	return &v
}

// firstAfter returns the first of the sorted ts not before at.
func firstAfter(ts []time.Time, at time.Time) (time.Time, bool) {
	i := sort.Search(len(ts), func(i int) bool { return !ts[i].Before(at) })
	if i == len(ts) {
		return time.Time{}, false
	}
	return ts[i], true
}

// reasonOrCause is why the transition happened: its reason, or its cause
// where it has none (stored before reasons were).
func (t transition) reasonOrCause() string {
	if t.reason != "" {
		return t.reason
	}
	return t.cause
}

// transitions reads the Page's owner changes in [from, to), per PSID in order.
func (s *Service) transitions(ctx context.Context, pageID string, from, to time.Time) ([]transition, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT psid, from_owner, to_owner, cause, reason, at FROM thread_transitions
		WHERE page_id = $1 AND at >= $2 AND at < $3 ORDER BY psid, at, id`, pageID, store.Millis(from), store.Millis(to))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []transition
	for rows.Next() {
		var t transition
		var at int64
		if err := rows.Scan(&t.psid, &t.from, &t.to, &t.cause, &t.reason, &at); err != nil {
			return nil, err
		}
		t.at = store.Time(at)
		out = append(out, t)
	}
	return out, rows.Err()
}

// agentReplies reads when agents' (not relay bots') messages went out on
// the Page since from, per PSID in order.
func (s *Service) agentReplies(ctx context.Context, pageID string, from time.Time) (map[string][]time.Time, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT psid, finished_at FROM agent_messages
		WHERE page_id = $1 AND status = 'sent' AND sender_kind = 'agent' AND finished_at >= $2 ORDER BY psid, finished_at`,
		pageID, store.Millis(from))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]time.Time{}
	for rows.Next() {
		var psid string
		var at int64
		if err := rows.Scan(&psid, &at); err != nil {
			return nil, err
		}
		out[psid] = append(out[psid], store.Time(at))
	}
	return out, rows.Err()
}

type request struct {
	psid string
	at   time.Time
}

// requests reads the requests for control Facebook accepted in [from, to).
func (s *Service) requests(ctx context.Context, pageID string, from, to time.Time) ([]request, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT psid, created_at FROM control_ops
		WHERE page_id = $1 AND op = 'request_thread_control' AND status = 'succeeded' AND created_at >= $2 AND created_at < $3
		ORDER BY id`, pageID, store.Millis(from), store.Millis(to))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []request
	for rows.Next() {
		var r request
		var at int64
		if err := rows.Scan(&r.psid, &at); err != nil {
			return nil, err
		}
		r.at = store.Time(at)
		out = append(out, r)
	}
	return out, rows.Err()
}
