package handover

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/messenger"
)

// TestCommitterBatches specifies which waiting webhooks form the next
// batch: in arrival order, within the bounds, never a thread that a batch
// in flight holds or that an earlier waiting webhook names.
func TestCommitterBatches(t *testing.T) {
	webhook := func(psids ...string) *ingestReq {
		var evs []messenger.Event
		for _, p := range psids {
			evs = append(evs, messenger.Event{PageID: "p", PSID: p})
		}
		return &ingestReq{events: evs, keys: threadKeys(evs)}
	}
	for _, tc := range []struct {
		name     string
		max      int
		inFlight []string // PSIDs held by batches being applied
		running  int
		pending  [][]string
		want     []int // indexes into pending of the batch taken; nil: none
		left     []int
	}{
		{name: "all that wait", max: 1, pending: [][]string{{"a"}, {"b"}, {"a", "c"}}, want: []int{0, 1, 2}},
		{name: "no committer free", max: 1, running: 1, pending: [][]string{{"a"}}, left: []int{0}},
		{name: "a free committer skips threads in flight", max: 4, running: 1, inFlight: []string{"a"},
			pending: [][]string{{"a"}, {"b"}, {"c"}}, want: []int{1, 2}, left: []int{0}},
		{name: "and the threads of webhooks it left waiting", max: 4, running: 1, inFlight: []string{"a"},
			pending: [][]string{{"a", "b"}, {"b"}, {"c"}}, want: []int{2}, left: []int{0, 1}},
		{name: "nothing it may take", max: 4, running: 1, inFlight: []string{"a"}, pending: [][]string{{"a"}}, left: []int{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := committer{max: tc.max, running: tc.running, inFlight: map[threadKey]int{}}
			for _, p := range tc.inFlight {
				c.inFlight[threadKey{"p", p}]++
			}
			var reqs []*ingestReq
			for _, ps := range tc.pending {
				reqs = append(reqs, webhook(ps...))
			}
			c.pending = append([]*ingestReq(nil), reqs...)
			index := func(rs []*ingestReq) []int {
				var out []int
				for _, r := range rs {
					for i, q := range reqs {
						if q == r {
							out = append(out, i)
						}
					}
				}
				return out
			}
			batch := c.next()
			if diff := cmp.Diff(tc.want, index(batch)); diff != "" {
				t.Errorf("batch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.left, index(c.pending)); diff != "" {
				t.Errorf("left waiting (-want +got):\n%s", diff)
			}
			if batch == nil {
				return
			}
			c.done(batch)
			if c.running != tc.running || len(c.inFlight) != len(tc.inFlight) {
				t.Errorf("after done: running %d, %d threads in flight; want %d and %d", c.running, len(c.inFlight), tc.running, len(tc.inFlight))
			}
		})
	}

	// The bounds: at most maxBatchEvents events, but a bigger webhook alone.
	c := committer{max: 1}
	big := &ingestReq{events: make([]messenger.Event, maxBatchEvents+1)}
	small := webhook("x")
	c.pending = []*ingestReq{big, small}
	if got := c.next(); len(got) != 1 || got[0] != big {
		t.Errorf("a webhook over the event bound is a batch of its own; got %d webhooks", len(got))
	}
}
