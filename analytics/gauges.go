package analytics

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/metrics"
)

// ExportGauges registers today's (UTC) handoff analytics per Page as
// gauges, computed from the stored history at scrape time, at most once a
// minute of the clock (the gauges of one scrape share the computation).
func (s *Service) ExportGauges(m *metrics.Metrics, log zerolog.Logger) {
	today := s.today(log)
	m.LabeledGaugeFunc("handoffs_today", "Today's (UTC) handoff analytics per Page, as GET /1.0/analytics computes them from the stored history (from the database).",
		[]string{"page_id", "measure"}, func() map[string]float64 {
			out := map[string]float64{}
			for id, c := range today() {
				for k, v := range map[string]int{"conversations": c.Conversations, "contained_by_bot": c.ContainedByBot,
					"handed_to_agents": c.HandedToAgents, "first_replies": c.FirstReplies, "resolved_by_agents": c.ResolvedByAgents,
					"handed_back_to_bot": c.HandedBackToBot, "offers_expired": c.OffersExpired} {
					out[metrics.LabelKey(id, k)] = float64(v)
				}
			}
			return out
		})
	m.LabeledGaugeFunc("handoffs_today_by_reason", "Today's (UTC) hand-offs to the agents per Page, by the reason stored with the transition (from the database).",
		[]string{"page_id", "reason"}, func() map[string]float64 {
			out := map[string]float64{}
			for id, c := range today() {
				for r, v := range c.HandedToAgentsByReason {
					out[metrics.LabelKey(id, r)] = float64(v)
				}
			}
			return out
		})
	m.LabeledGaugeFunc("handoff_first_reply_today_seconds", "Today's (UTC) time from a hand-off to the agents' first reply per Page, p50 and p90 (from the database; absent without replies).",
		[]string{"page_id", "quantile"}, func() map[string]float64 {
			out := map[string]float64{}
			for id, c := range today() {
				if c.FirstReplySecondsP50 != nil {
					out[metrics.LabelKey(id, "0.5")] = *c.FirstReplySecondsP50
					out[metrics.LabelKey(id, "0.9")] = *c.FirstReplySecondsP90
				}
			}
			return out
		})
}

// today returns a function giving today's totals per Page, computed at
// most once a minute of the clock.
func (s *Service) today(log zerolog.Logger) func() map[string]Counts {
	var (
		mu   sync.Mutex
		at   time.Time
		last map[string]Counts
	)
	return func() map[string]Counts {
		mu.Lock()
		defer mu.Unlock()
		now := s.now()
		if last != nil && now.Sub(at) < time.Minute && now.Day() == at.Day() {
			return last
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out := map[string]Counts{}
		for _, p := range s.pageList {
			rep, err := s.Compute(ctx, p.ID, now, now)
			if err != nil {
				log.Warn().Err(err).Msg("metrics query failed")
				return last
			}
			out[p.ID] = rep.Total
		}
		last, at = out, now
		return out
	}
}
