package analytics

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestCompute: what each history counts, per day and in total, without a
// database.
func TestCompute(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(0, 0, 2) // Nov 1 and 2
	at := func(day int, hhmm string) time.Time {
		d, err := time.Parse("15:04", hhmm)
		if err != nil {
			t.Fatal(err)
		}
		return start.AddDate(0, 0, day-1).Add(time.Duration(d.Hour())*time.Hour + time.Duration(d.Minute())*time.Minute)
	}
	tr := func(psid, from, to, cause, reason string, when time.Time) transition {
		return transition{psid: psid, from: from, to: to, cause: cause, reason: reason, at: when}
	}
	f := func(v float64) *float64 { return &v }
	reasons := func(kv ...any) map[string]int {
		m := map[string]int{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1].(int)
		}
		return m
	}
	now := end.Add(24 * time.Hour)
	tests := []struct {
		name  string
		h     history
		now   time.Time
		day1  Counts
		day2  Counts
		total Counts
	}{
		{
			name: "contained by the bot",
			h: history{transitions: []transition{
				tr("1", "idle", "bot", "customer_message", "", at(1, "09:00")),
				tr("1", "bot", "idle", "idle_timeout", "", at(2, "09:00")),
			}},
			day1:  Counts{Conversations: 1, ContainedByBot: 1, HandedToAgentsByReason: reasons()},
			day2:  Counts{HandedToAgentsByReason: reasons()},
			total: Counts{Conversations: 1, ContainedByBot: 1, HandedToAgentsByReason: reasons()},
		},
		{
			name: "handed to the agents, answered, resolved",
			h: history{
				transitions: []transition{
					tr("1", "idle", "bot", "customer_message", "", at(1, "09:00")),
					tr("1", "bot", "agent", "pass_thread_control", "customer_asked", at(1, "09:05")),
					tr("1", "agent", "idle", "release_thread_control", "", at(1, "10:00")),
				},
				replies: map[string][]time.Time{"1": {at(1, "09:05").Add(30 * time.Second)}},
			},
			day1: Counts{Conversations: 1, HandedToAgents: 1, HandedToAgentsByReason: reasons("customer_asked", 1), FirstReplies: 1,
				FirstReplySecondsP50: f(30), FirstReplySecondsP90: f(30), ResolvedByAgents: 1},
			day2: Counts{HandedToAgentsByReason: reasons()},
			total: Counts{Conversations: 1, HandedToAgents: 1, HandedToAgentsByReason: reasons("customer_asked", 1), FirstReplies: 1,
				FirstReplySecondsP50: f(30), FirstReplySecondsP90: f(30), ResolvedByAgents: 1},
		},
		{
			name: "handed back to the bot; a hand-off before reasons counts its cause",
			h: history{transitions: []transition{
				tr("1", "idle", "bot", "customer_message", "", at(2, "09:00")),
				tr("1", "bot", "agent", "take_thread_control", "", at(2, "09:01")),
				tr("1", "agent", "bot", "pass_thread_control", "", at(2, "09:30")),
			}},
			day1:  Counts{HandedToAgentsByReason: reasons()},
			day2:  Counts{Conversations: 1, HandedToAgents: 1, HandedToAgentsByReason: reasons("take_thread_control", 1), HandedBackToBot: 1},
			total: Counts{Conversations: 1, HandedToAgents: 1, HandedToAgentsByReason: reasons("take_thread_control", 1), HandedBackToBot: 1},
		},
		{
			name: "reaching the Page Inbox is not contained; a new conversation at the agents is no hand-off",
			h: history{transitions: []transition{
				tr("1", "idle", "bot", "customer_message", "", at(1, "09:00")),
				tr("1", "bot", "page_inbox", "pass_thread_control", "", at(1, "09:01")),
				tr("1", "page_inbox", "idle", "idle_timeout", "", at(1, "12:00")),
				tr("2", "idle", "agent", "customer_message", "", at(1, "09:00")),
			}},
			day1:  Counts{Conversations: 2, HandedToAgentsByReason: reasons()},
			day2:  Counts{HandedToAgentsByReason: reasons()},
			total: Counts{Conversations: 2, HandedToAgentsByReason: reasons()},
		},
		{
			name: "a conversation begun before the range is not the range's",
			h: history{transitions: []transition{
				tr("1", "idle", "bot", "customer_message", "", start.Add(-time.Hour)),
				tr("1", "bot", "idle", "idle_timeout", "", at(1, "09:00")),
			}},
			day1:  Counts{HandedToAgentsByReason: reasons()},
			day2:  Counts{HandedToAgentsByReason: reasons()},
			total: Counts{HandedToAgentsByReason: reasons()},
		},
		{
			name: "requests for control: not granted, granted in time, granted late, granted at the deadline, still pending",
			h: history{
				transitions: []transition{
					tr("2", "bot", "agent", "pass_thread_control", "bot_requested", at(1, "09:01")),
					tr("3", "bot", "agent", "pass_thread_control", "bot_requested", at(1, "09:10")),
					tr("5", "bot", "agent", "pass_thread_control", "bot_requested", at(1, "09:02")),
				},
				requests: []request{{"1", at(1, "09:00")}, {"2", at(1, "09:00")}, {"3", at(1, "09:00")}, {"4", at(2, "23:59")}, {"5", at(1, "09:00")}},
			},
			now:   at(2, "23:59").Add(time.Minute),
			day1:  Counts{HandedToAgents: 3, HandedToAgentsByReason: reasons("bot_requested", 3), OffersExpired: 2},
			day2:  Counts{HandedToAgentsByReason: reasons()},
			total: Counts{HandedToAgents: 3, HandedToAgentsByReason: reasons("bot_requested", 3), OffersExpired: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := now
			if !tt.now.IsZero() {
				n = tt.now
			}
			got := compute("1001", start, end, tt.h, n, 2*time.Minute)
			want := Report{PageID: "1001", From: "2026-11-01", To: "2026-11-02",
				Days: []Day{{Date: "2026-11-01", Counts: tt.day1}, {Date: "2026-11-02", Counts: tt.day2}}, Total: tt.total}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Counts{})); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
		})
	}
}
