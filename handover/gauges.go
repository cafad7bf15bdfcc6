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
	m.LabeledGaugeFunc("threads", "Threads by current owner, per Page (from the database).", []string{"page_id", "owner"}, s.threadsByOwner)

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
