package handover

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/internal/clocktest"
	"github.com/handoverd/handoverd/messenger"
)

// TestFold specifies how a batch's stored events become thread work: each
// event the store took (it has an id) is applied in order, a redelivery
// the store already held and a second copy within the batch are
// duplicates, and an event that is not applied as stored is reported with
// its outcome.
func TestFold(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	msg := func(psid, mid string, at time.Time) messenger.Event {
		return messenger.Event{PageID: "p", PSID: psid, Kind: messenger.KindMessage, Channel: messenger.ChannelMessaging,
			Time: at, Message: &messenger.Message{MID: mid}}
	}
	type result struct {
		Results  []eventResult
		Work     map[string][]int64 // PSID → ids of the events applied
		Owners   map[string]Owner
		Outcomes []any
	}
	for _, tc := range []struct {
		name   string
		events []messenger.Event
		stored map[string]int64 // mid → id the store gave; absent: it already held the event
		before map[string]Thread
		want   result
	}{
		{
			name:   "new events are applied, in order, per thread",
			events: []messenger.Event{msg("a", "m1", t0), msg("b", "m2", t0), msg("a", "m3", t0.Add(time.Second))},
			stored: map[string]int64{"m1": 1, "m2": 2, "m3": 3},
			want: result{
				Results: []eventResult{{"message", "applied"}, {"message", "applied"}, {"message", "applied"}},
				Work:    map[string][]int64{"a": {1, 3}, "b": {2}},
				Owners:  map[string]Owner{"a": OwnerAgent, "b": OwnerAgent},
			},
		},
		{
			name:   "a redelivery and a second copy are duplicates",
			events: []messenger.Event{msg("a", "m1", t0), msg("a", "m1", t0), msg("b", "old", t0)},
			stored: map[string]int64{"m1": 7},
			want: result{
				Results: []eventResult{{"message", "applied"}, {"message", "duplicate"}, {"message", "duplicate"}},
				Work:    map[string][]int64{"a": {7}},
				Owners:  map[string]Owner{"a": OwnerAgent},
			},
		},
		{
			name:   "evidence older than the thread's state is stale, and reported",
			events: []messenger.Event{msg("a", "m1", t0)},
			stored: map[string]int64{"m1": 4},
			before: map[string]Thread{"a": {PageID: "p", PSID: "a", Owner: OwnerBot, OwnerAppID: "bot", StateAt: t0.Add(time.Minute)}},
			want: result{
				Results:  []eventResult{{"message", "stale"}},
				Work:     map[string][]int64{"a": {4}},
				Owners:   map[string]Owner{"a": OwnerBot},
				Outcomes: []any{int64(4), "stale"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{AppID: "us", Pages: []config.Page{{ID: "p", DefaultApp: "agent", BotAppID: "bot"}}, Clock: clocktest.New(t0)})
			groups := map[threadKey][]messenger.Event{}
			var keys []threadKey
			threads := map[threadKey]Thread{}
			for _, ev := range tc.events {
				k := threadKey{ev.PageID, ev.PSID}
				if _, ok := groups[k]; !ok {
					keys = append(keys, k)
					threads[k] = Thread{PageID: ev.PageID, PSID: ev.PSID, Owner: OwnerIdle}
					if th, ok := tc.before[ev.PSID]; ok {
						threads[k] = th
					}
				}
				groups[k] = append(groups[k], ev)
			}
			rows, dedupe := eventRows(keys, groups)
			ids := map[string]int64{}
			for _, r := range rows {
				if id, ok := tc.stored[r.ev.Message.MID]; ok {
					ids[r.key] = id
				}
			}
			var c committed
			work, outcomes := s.fold(keys, groups, threads, dedupe, ids, &c)
			got := result{Results: c.events, Outcomes: outcomes}
			for _, w := range work {
				if got.Work == nil {
					got.Work, got.Owners = map[string][]int64{}, map[string]Owner{}
				}
				got.Work[w.th.PSID] = w.events
				got.Owners[w.th.PSID] = w.th.Owner
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(eventResult{})); diff != "" {
				t.Errorf("fold (-want +got):\n%s", diff)
			}
		})
	}
}
