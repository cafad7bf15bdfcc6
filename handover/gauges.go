package handover

import (
	"context"
	"database/sql"
	"time"

	"github.com/handoverd/handoverd/metrics"
)

// ExportGauges registers the gauges counted in thread control's tables,
// read at scrape time from the shared database, so every replica reports
// the same values; and sets each Page's last-webhook time from the stored
// events, so a Page that stays silent across a restart still raises the
// alert.
func (s *Service) ExportGauges(ctx context.Context) {
	m := s.metrics
	count := metrics.Counter{DB: s.db.Reader(), Failed: func(err error) { s.log.Warn().Err(err).Msg("metrics query failed") }}
	m.GaugeFunc("handover_requests_pending", "Threads where handoverd asked Facebook for control and has not got it yet.",
		count.Query(`SELECT count(*) FROM threads WHERE pending_app_id = $1 AND owner <> 'agent'`, s.appID))
	m.GaugeFunc("interventions_open", "Open agent interventions.",
		count.Query(`SELECT count(*) FROM interventions WHERE status = 'open'`))
	m.GaugeFunc("agent_sends_waiting", "Agent messages waiting for thread control before they can be sent.",
		count.Query(`SELECT count(*) FROM agent_messages WHERE status = 'waiting'`))
	oldest := count.Query(`SELECT coalesce(min(created_at), 0) FROM agent_messages WHERE status = 'waiting'`)
	m.GaugeFunc("agent_send_oldest_waiting_seconds", "Age of the oldest agent message waiting for thread control (0 when none).",
		func() float64 { return metrics.Age(s.now(), oldest()) })
	m.GaugeFunc("handover_offers_open", "Conversations bots offered to the agents that nobody has accepted, declined or let expire yet.",
		count.Query(`SELECT count(*) FROM handovers WHERE status = 'open'`))
	m.GaugeFunc("bot_events_pending", "Handover events to bots' webhooks not yet delivered or given up.",
		count.Query(`SELECT count(*) FROM bot_events WHERE status = 'pending'`))
	m.LabeledGaugeFunc("threads", "Threads by current owner, per Page (from the database).", []string{"page_id", "owner"}, s.threadsByOwner)
	m.LabeledGaugeFunc("page_mode", "Each configured Page's routing mode as Meta shows it: 1 for the mode, 0 for the others (from the database).",
		[]string{"page_id", "mode"}, func() map[string]float64 {
			out := map[string]float64{}
			for _, st := range s.pageStatuses() {
				for _, mode := range PageModes {
					v := 0.0
					if mode == st.Meta.Mode {
						v = 1
					}
					out[metrics.LabelKey(st.Page.ID, string(mode))] = v
				}
			}
			return out
		})
	m.LabeledGaugeFunc("page_config_mismatch", "1 when a Page's configured default_app and what Meta shows disagree (from the database).",
		[]string{"page_id"}, func() map[string]float64 {
			out := map[string]float64{}
			for _, st := range s.pageStatuses() {
				v := 0.0
				if st.Warning != "" {
					v = 1
				}
				out[metrics.LabelKey(st.Page.ID)] = v
			}
			return out
		})
	m.GaugeFunc("reconcile_threads_due", "Doubtful threads waiting to be checked with thread_owner (from the database).",
		count.Query(`SELECT count(*) FROM reconcile_threads WHERE doubted_at > checked_at`))

	for id := range s.pages {
		var ms sql.NullInt64
		if err := s.db.Reader().QueryRowContext(ctx, `SELECT max(received_at) FROM webhook_events WHERE page_id = $1`, id).Scan(&ms); err != nil {
			s.log.Warn().Err(err).Msg("reading the last webhook time failed")
			return
		}
		if ms.Valid {
			m.PageLastWebhook.WithLabelValues(id).Set(float64(ms.Int64) / 1000)
		}
	}
}

// threadsByOwner counts the threads of every configured Page by owner,
// with every Page and owner present (at zero when none).
func (s *Service) threadsByOwner() map[string]float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out := map[string]float64{}
	for id := range s.pages {
		for _, o := range Owners {
			out[metrics.LabelKey(id, string(o))] = 0
		}
	}
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT page_id, owner, count(*) FROM threads GROUP BY page_id, owner`)
	if err != nil {
		s.log.Warn().Err(err).Msg("metrics query failed")
		return out
	}
	defer rows.Close()
	for rows.Next() {
		var page, owner string
		var n float64
		if rows.Scan(&page, &owner, &n) == nil {
			if _, ok := s.pages[page]; ok {
				out[metrics.LabelKey(page, owner)] = n
			}
		}
	}
	return out
}

// pageStatuses reads every Page's mode for the gauges (none on error).
func (s *Service) pageStatuses() []PageStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	sts, err := s.PageStatuses(ctx)
	if err != nil {
		s.log.Warn().Err(err).Msg("metrics query failed")
	}
	return sts
}
