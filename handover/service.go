package handover

import (
	"time"

	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/metrics"
	"github.com/handoverd/handoverd/store"
)

// Options configures a Service.
type Options struct {
	// DB is the database.
	DB *store.DB
	// AppID is handoverd's own Facebook app id.
	AppID string
	// Pages are the configured Pages.
	Pages []config.Page
	// IdleAfter is how long an owned thread lasts without activity (24 h).
	IdleAfter time.Duration
	// Now is the clock.
	Now func() time.Time
	// Metrics records thread and webhook metrics.
	Metrics *metrics.Metrics
	// Logger logs one line per transition.
	Logger zerolog.Logger
}

// Service keeps thread-control state in the database.
type Service struct {
	db        *store.DB
	appID     string
	pages     map[string]config.Page
	idleAfter time.Duration
	now       func() time.Time
	metrics   *metrics.Metrics
	log       zerolog.Logger
}

// New returns a Service.
func New(o Options) *Service {
	s := &Service{
		db:        o.DB,
		appID:     o.AppID,
		pages:     map[string]config.Page{},
		idleAfter: o.IdleAfter,
		now:       o.Now,
		metrics:   o.Metrics,
		log:       o.Logger,
	}
	if s.idleAfter <= 0 {
		s.idleAfter = config.DefaultIdleAfter
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.metrics == nil {
		s.metrics = metrics.New()
	}
	for _, p := range o.Pages {
		s.pages[p.ID] = p
	}
	return s
}

// Page returns the configured Page.
func (s *Service) Page(id string) (config.Page, bool) {
	p, ok := s.pages[id]
	return p, ok
}

// committed reports what a transaction did, for metrics and logs once it
// has committed (a transaction may be retried, so nothing is recorded inside).
type committed struct {
	transitions []threadTransition
	events      []eventResult
}

type threadTransition struct {
	pageID, psid string
	Transition
}

type eventResult struct {
	kind, result string
}

func (s *Service) record(c committed) {
	for _, e := range c.events {
		s.metrics.WebhookEvents.WithLabelValues(e.kind, e.result).Inc()
	}
	for _, t := range c.transitions {
		s.metrics.ThreadTransitions.WithLabelValues(string(t.From), string(t.To), string(t.Cause)).Inc()
		s.log.Info().Str("page_id", t.pageID).Str("psid", t.psid).
			Str("from", string(t.From)).Str("to", string(t.To)).Str("to_app_id", t.ToAppID).
			Str("cause", string(t.Cause)).Str("actor", t.Actor).Time("at", t.At).Msg("thread transition")
	}
}
