package inbox

import "github.com/handoverd/handoverd/metrics"

// ExportGauges registers the gauges counted in the inbox's tables, read
// at scrape time from the shared database, so every replica reports the
// same values.
func (s *Service) ExportGauges() {
	m := s.metrics
	count := metrics.Counter{DB: s.db.Reader(), Failed: func(err error) { s.log.Warn().Err(err).Msg("metrics query failed") }}
	byStatus := map[string]func() float64{}
	for _, st := range []string{StatusOpen, StatusPending, StatusResolved, StatusSnoozed} {
		byStatus[st] = count.Query(`SELECT count(*) FROM conversations WHERE status = $1`, st)
	}
	m.LabeledGaugeFunc("conversations", "Conversations by status (from the database).", []string{"status"}, func() map[string]float64 {
		out := map[string]float64{}
		for st, n := range byStatus {
			out[metrics.LabelKey(st)] = n()
		}
		return out
	})
	m.GaugeFunc("inbox_queue_unassigned", "Open conversations nobody is assigned to: the agents' queue depth.",
		count.Query(`SELECT count(*) FROM conversations WHERE status = 'open' AND assignee_id IS NULL`))
	contained := count.Query(`SELECT count(DISTINCT conversation_id) FROM inbox_messages m WHERE claimed_at IS NOT NULL
		AND NOT EXISTS (SELECT 1 FROM inbox_messages s WHERE s.conversation_id = m.conversation_id AND s.surfaced_at IS NOT NULL)`)
	surfaced := count.Query(`SELECT count(DISTINCT conversation_id) FROM inbox_messages WHERE surfaced_at IS NOT NULL`)
	m.LabeledGaugeFunc("claim_conversations", "Conversations whose bot claims messages, by outcome: contained (every customer message claimed) or surfaced (at least one reached the agents).",
		[]string{"outcome"}, func() map[string]float64 {
			return map[string]float64{metrics.LabelKey("contained"): contained(), metrics.LabelKey("surfaced"): surfaced()}
		})
	m.GaugeFunc("outbox_pending", "Outbound webhook deliveries not yet delivered or given up.",
		count.Query(`SELECT count(*) FROM outbox WHERE status = 'pending'`))
	oldest := count.Query(`SELECT coalesce(min(created_at), 0) FROM outbox WHERE status = 'pending'`)
	m.GaugeFunc("outbox_oldest_age_seconds", "Age of the oldest undelivered outbound webhook (0 when none).",
		func() float64 { return metrics.Age(s.now(), oldest()) })
}
