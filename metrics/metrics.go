// Package metrics defines every Prometheus metric handoverd exports, on a
// registry of its own (never the global one), so the catalogue lives in one
// place and each process or test gets a fresh set.
//
// Labels carry only bounded values: event kinds, owners, causes, Graph
// operations and error classes, route templates, and configured Page ids.
// PSIDs, message ids and user text never become labels.
package metrics

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "handoverd"

// Metrics holds the registry and every metric.
type Metrics struct {
	// Registry is the registry all metrics below are registered on.
	Registry *prometheus.Registry

	// WebhookRequests counts webhook POSTs by result (accepted, bad_signature, too_large, bad_json, error).
	WebhookRequests *prometheus.CounterVec
	// WebhookEvents counts webhook events by kind and result (applied, duplicate, stale, unknown_page, ignored).
	WebhookEvents *prometheus.CounterVec
	// WebhookSignatureFailures counts webhook POSTs refused for a missing or wrong signature.
	WebhookSignatureFailures prometheus.Counter
	// WebhookIngestDuration observes the time from receiving a webhook POST to answering it.
	WebhookIngestDuration prometheus.Histogram
	// PageLastWebhook is the Unix time of the newest webhook per configured Page.
	PageLastWebhook *prometheus.GaugeVec
	// IngestBatchWebhooks observes how many webhooks one ingest transaction committed together.
	IngestBatchWebhooks prometheus.Histogram

	// ThreadTransitions counts thread-owner changes by from, to and cause.
	ThreadTransitions *prometheus.CounterVec

	// GraphRequests counts Graph API calls by operation and result (ok or an error class).
	GraphRequests *prometheus.CounterVec
	// GraphDuration observes Graph API call latency by operation.
	GraphDuration *prometheus.HistogramVec

	// Handovers counts handover API calls by direction (to_agent, to_bot,
	// invalid) and result (ok, noop, conflict, not_found, invalid,
	// unauthorized, upstream_error, error).
	Handovers *prometheus.CounterVec
	// HandoverControlWait observes seconds from asking Facebook for thread
	// control to the thread becoming ours.
	HandoverControlWait prometheus.Histogram
	// AgentSends counts agent messages by result (sent, failed).
	AgentSends *prometheus.CounterVec
	// InterventionsClosed counts closed interventions by reason (agent, idle).
	InterventionsClosed *prometheus.CounterVec

	// InboxFirstReply observes seconds from a conversation entering the
	// agents' queue to the first agent reply sent.
	InboxFirstReply prometheus.Histogram
	// OutboxDeliveries counts webhook delivery attempts by result
	// (delivered, retry, failed).
	OutboxDeliveries *prometheus.CounterVec
	// BotEventDeliveries counts handover event deliveries to bots by
	// result (delivered, retry, failed).
	BotEventDeliveries *prometheus.CounterVec
	// HandoverOffers counts offers by how they ended (offered, accepted,
	// declined, expired, replaced, conflict).
	HandoverOffers *prometheus.CounterVec

	// Claims counts bot claim and echo calls by kind (claim, echo) and
	// result (accepted, repeat, applied, mismatched, invalid, unauthorized, rate_limited).
	Claims *prometheus.CounterVec
	// ClaimSurfaced counts customer messages surfaced to agents because the
	// bot did not claim them within the grace period.
	ClaimSurfaced prometheus.Counter

	// RelayCalls counts webhook calls to relay bots by packet and result (ok, error).
	RelayCalls *prometheus.CounterVec
	// RelayLatency observes relay bots' webhook response time.
	RelayLatency prometheus.Histogram
	// RelayFallbacks counts conversations forwarded to agents because a relay bot was down.
	RelayFallbacks prometheus.Counter
	// RelaySessions counts relay sessions by outcome (started, ended, forwarded, forward_failed).
	RelaySessions *prometheus.CounterVec
	// RelayActions counts relay bots' events run, by event and result (done, failed).
	RelayActions *prometheus.CounterVec
	// JobAttempts counts the job runner's attempts, by queue and result
	// (ok, retry, failed, handed_back).
	JobAttempts *prometheus.CounterVec
	// JobsDue is how many rows each queue found due at its last pass.
	JobsDue *prometheus.GaugeVec
	// JobAttemptDuration observes the job runner's attempts, by queue.
	JobAttemptDuration *prometheus.HistogramVec

	// Reconciles counts doubtful threads checked with thread_owner, by
	// result (corrected, confirmed, failed).
	Reconciles *prometheus.CounterVec
	// ReconcileDeferred counts checks of doubtful threads put off by the
	// per-Page rate limit.
	ReconcileDeferred prometheus.Counter

	// HTTPRequests counts API requests by route template, method and status code.
	HTTPRequests *prometheus.CounterVec
	// HTTPDuration observes API request latency by route template and method.
	HTTPDuration *prometheus.HistogramVec
}

// New creates the registry with the process, Go runtime and build-info
// collectors and every handoverd metric.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{Registry: reg}

	m.WebhookRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "webhook_requests_total",
		Help: "Messenger webhook POSTs received, by result (accepted, bad_signature, too_large, bad_json, error).",
	}, []string{"result"})
	m.WebhookEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "webhook_events_total",
		Help: "Messenger webhook events, by kind and result (applied, duplicate, stale, unknown_page, ignored, malformed).",
	}, []string{"kind", "result"})
	m.WebhookSignatureFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "webhook_signature_failures_total",
		Help: "Messenger webhook POSTs refused because X-Hub-Signature-256 was missing or wrong.",
	})
	m.WebhookIngestDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "webhook_ingest_duration_seconds",
		Help:    "Time from receiving a Messenger webhook POST to acknowledging it (events committed).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	})
	m.IngestBatchWebhooks = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "ingest_batch_webhooks",
		Help:    "Webhook POSTs whose events one ingest transaction committed together (group commit).",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
	})
	m.PageLastWebhook = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "page_last_webhook_timestamp_seconds",
		Help: "Unix time of the newest Messenger webhook event received for each configured Page.",
	}, []string{"page_id"})
	m.ThreadTransitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "thread_transitions_total",
		Help: "Thread-control owner changes, by previous owner, new owner and cause.",
	}, []string{"from", "to", "cause"})
	m.GraphRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "graph_requests_total",
		Help: "Graph API calls (each attempt), by operation and result (ok or an error class).",
	}, []string{"operation", "result"})
	m.GraphDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "graph_request_duration_seconds",
		Help:    "Graph API call latency (each attempt), by operation.",
		Buckets: prometheus.DefBuckets,
	}, []string{"operation"})
	m.Handovers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "handovers_total",
		Help: "Handover API calls, by direction (to_agent, to_bot, invalid) and result (ok, noop, conflict, not_found, invalid, unauthorized, upstream_error, error).",
	}, []string{"direction", "result"})
	m.HandoverControlWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "handover_control_wait_seconds",
		Help:    "Seconds from asking Facebook for thread control (request or take) to the thread being owned by the agents.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
	})
	m.AgentSends = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "agent_sends_total",
		Help: "Agent messages sent through the Send API, by result (sent, failed).",
	}, []string{"result"})
	m.InterventionsClosed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "interventions_closed_total",
		Help: "Interventions closed, by reason (agent, idle).",
	}, []string{"reason"})
	m.InboxFirstReply = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "inbox_first_reply_seconds",
		Help:    "Seconds from a conversation entering the agents' queue to the first agent reply sent.",
		Buckets: []float64{5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600},
	})
	m.OutboxDeliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "outbox_deliveries_total",
		Help: "Outbound webhook delivery attempts, by result (delivered, retry, failed).",
	}, []string{"result"})
	m.BotEventDeliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "bot_event_deliveries_total",
		Help: "Handover event deliveries to bots' webhooks, by result (delivered, retry, failed).",
	}, []string{"result"})
	m.HandoverOffers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "handover_offers_total",
		Help: "Offers of conversations to the agents, by outcome (offered, accepted, declined, expired, replaced, conflict).",
	}, []string{"outcome"})
	m.Claims = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "claims_total",
		Help: "Bot claim and echo calls (Lexer Chatbot User API), by kind (claim, echo) and result (accepted, applied, mismatched, invalid, unauthorized, rate_limited).",
	}, []string{"kind", "result"})
	m.ClaimSurfaced = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "claim_surfaced_messages_total",
		Help: "Customer messages surfaced to the agents because the bot did not claim them within the grace period.",
	})
	m.RelayCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "relay_calls_total",
		Help: "Webhook calls to relay bots (each attempt), by packet (start, message, click, media, location, forward_failed) and result (ok, error).",
	}, []string{"packet", "result"})
	m.RelayLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "relay_response_seconds",
		Help:    "Relay bots' webhook response time.",
		Buckets: prometheus.DefBuckets,
	})
	m.RelayFallbacks = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "relay_bot_down_fallbacks_total",
		Help: "Conversations forwarded to the agents because a relay bot did not answer.",
	})
	m.RelaySessions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "relay_sessions_total",
		Help: "Relay bot sessions, by outcome (started, ended, forwarded, forward_failed).",
	}, []string{"outcome"})
	m.RelayActions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "relay_actions_total",
		Help: "Relay bots' events run, by event and result (done, failed).",
	}, []string{"event", "result"})
	m.JobAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "jobs_attempts_total",
		Help: "Durable job attempts, by queue (agent_messages, bot_events, outbox, relay_calls, relay_actions) and result (ok, retry, failed, handed_back).",
	}, []string{"queue", "result"})
	m.JobsDue = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "jobs_due",
		Help: "Rows each durable queue found due at its last pass (at most one batch), by queue.",
	}, []string{"queue"})
	m.JobAttemptDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "jobs_attempt_duration_seconds",
		Help:    "Durable job attempt latency (claim to record), by queue.",
		Buckets: prometheus.DefBuckets,
	}, []string{"queue"})
	m.Reconciles = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "reconcile_checks_total",
		Help: "Doubtful threads checked with Graph's thread_owner, by result (corrected, confirmed, failed).",
	}, []string{"result"})
	m.ReconcileDeferred = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "reconcile_deferred_total",
		Help: "Checks of doubtful threads put off to a later window by the per-Page rate limit.",
	})
	m.HTTPRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "http_requests_total",
		Help: "HTTP requests served, by route template, method and status code.",
	}, []string{"route", "method", "code"})
	m.HTTPDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "http_request_duration_seconds",
		Help:    "HTTP request latency, by route template and method.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route", "method"})

	for _, c := range []prometheus.Collector{m.WebhookRequests, m.WebhookEvents, m.WebhookSignatureFailures,
		m.WebhookIngestDuration, m.IngestBatchWebhooks, m.PageLastWebhook, m.ThreadTransitions, m.GraphRequests, m.GraphDuration,
		m.Handovers, m.HandoverControlWait, m.AgentSends, m.InterventionsClosed, m.InboxFirstReply, m.OutboxDeliveries, m.BotEventDeliveries, m.HandoverOffers, m.Claims, m.ClaimSurfaced,
		m.RelayCalls, m.RelayLatency, m.RelayFallbacks, m.RelaySessions, m.RelayActions, m.JobAttempts, m.JobsDue, m.JobAttemptDuration, m.Reconciles, m.ReconcileDeferred,
		m.HTTPRequests, m.HTTPDuration} {
		f(c)
	}
	m.initSeries()
	return m
}

// Label values known in advance, created at zero so rate() and increase()
// see the first event of each series.
var (
	webhookResults = []string{"accepted", "bad_signature", "too_large", "bad_json", "error"}
	graphOps       = []string{"send", "pass_thread_control", "take_thread_control", "request_thread_control", "release_thread_control", "thread_owner"}
	graphResults   = []string{"ok", "not_owner", "outside_window", "rate_limited", "transient", "bad_token", "permission", "bad_request"}
	handoverDirs   = []string{"to_agent", "to_bot"}
	handoverRes    = []string{"ok", "noop", "conflict", "not_found", "invalid", "unauthorized", "upstream_error", "error"}
	// JobQueues names the durable queues, the queue label of the job metrics.
	JobQueues  = []string{"agent_messages", "bot_events", "outbox", "relay_calls", "relay_actions"}
	jobResults = []string{"ok", "retry", "failed", "handed_back"}
)

func (m *Metrics) initSeries() {
	for _, r := range webhookResults {
		m.WebhookRequests.WithLabelValues(r)
	}
	for _, op := range graphOps {
		m.GraphDuration.WithLabelValues(op)
		for _, r := range graphResults {
			m.GraphRequests.WithLabelValues(op, r)
		}
	}
	for _, d := range handoverDirs {
		for _, r := range handoverRes {
			m.Handovers.WithLabelValues(d, r)
		}
	}
	for _, r := range []string{"sent", "failed"} {
		m.AgentSends.WithLabelValues(r)
	}
	for _, k := range []string{"claim", "echo"} {
		for _, r := range []string{"accepted", "applied", "invalid", "unauthorized", "rate_limited"} {
			m.Claims.WithLabelValues(k, r)
		}
	}
	for _, o := range []string{"started", "ended", "forwarded", "forward_failed"} {
		m.RelaySessions.WithLabelValues(o)
	}
	for _, r := range []string{"delivered", "retry", "failed"} {
		m.OutboxDeliveries.WithLabelValues(r)
		m.BotEventDeliveries.WithLabelValues(r)
	}
	for _, o := range []string{"offered", "accepted", "declined", "expired", "replaced", "conflict"} {
		m.HandoverOffers.WithLabelValues(o)
	}
	for _, r := range []string{"corrected", "confirmed", "failed"} {
		m.Reconciles.WithLabelValues(r)
	}
	for _, q := range JobQueues {
		m.JobsDue.WithLabelValues(q)
		m.JobAttemptDuration.WithLabelValues(q)
		for _, r := range jobResults {
			m.JobAttempts.WithLabelValues(q, r)
		}
	}
	for _, r := range []string{"agent", "idle"} { // at zero from the start, not from the first close
		m.InterventionsClosed.WithLabelValues(r)
	}
}

// HTTPMethod maps a request method to a bounded label value.
func HTTPMethod(method string) string {
	switch method {
	case "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS":
		return method
	}
	return "other"
}

// LabeledGaugeFunc registers a gauge family computed at scrape time: f
// returns values keyed by their label values, in the order of labels.
func (m *Metrics) LabeledGaugeFunc(name, help string, labels []string, f func() map[string]float64) {
	m.Registry.MustRegister(&funcCollector{f: f, desc: prometheus.NewDesc(namespace+"_"+name, help, labels, nil)})
}

// LabelKey joins label values into a LabeledGaugeFunc key.
func LabelKey(values ...string) string { return strings.Join(values, "\x00") }

type funcCollector struct {
	f    func() map[string]float64
	desc *prometheus.Desc
}

func (c *funcCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *funcCollector) Collect(ch chan<- prometheus.Metric) {
	for k, v := range c.f() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, strings.Split(k, "\x00")...)
	}
}

// GaugeFunc registers a gauge whose value is computed at scrape time (e.g.
// counted in the shared database, so every replica reports the same).
func (m *Metrics) GaugeFunc(name, help string, f func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, f))
}

// RegisterDB exports connection-pool statistics for a database pool.
func (m *Metrics) RegisterDB(name string, db *sql.DB) {
	m.Registry.MustRegister(collectors.NewDBStatsCollector(db, name))
}

// Handler serves the registry in the Prometheus text or OpenMetrics format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{
		Registry:            m.Registry,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
		EnableOpenMetrics:   true,
	})
}

// Counter counts something in a database at scrape time: a one-value
// query (a count, an oldest timestamp) with its arguments, read with a
// bounded wait. A failing query is logged and reads 0, so one slow table
// does not fail the whole scrape.
type Counter struct {
	// DB is where to count.
	DB *sql.DB
	// Failed is told of a failing query.
	Failed func(err error)
}

// Query returns a function reading query's one value.
func (c Counter) Query(query string, args ...any) func() float64 {
	return func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var v float64
		if err := c.DB.QueryRowContext(ctx, query, args...).Scan(&v); err != nil {
			if c.Failed != nil {
				c.Failed(err)
			}
			return 0
		}
		return v
	}
}

// Age is the age in seconds, at now, of an instant stored as Unix
// milliseconds (0 for none).
func Age(now time.Time, ms float64) float64 {
	if ms == 0 {
		return 0
	}
	return max(0, now.Sub(time.UnixMilli(int64(ms))).Seconds())
}
