package handover_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/store/storetest"
)

// consumer records, in a shared log, which facts it was handed.
type consumer struct {
	name string
	log  *[]string
}

func (c consumer) ThreadChanged(_ context.Context, _ *store.Tx, ch handover.Change) error {
	fact := "?"
	switch {
	case ch.Event != nil:
		fact = "event"
	case len(ch.Transitions) > 0:
		fact = "transition"
	case ch.AgentMessage != nil:
		fact = "agent message"
	case ch.Claim != nil:
		fact = "claim"
	case ch.Relay != nil:
		fact = "relay " + string(ch.Relay.Kind)
	}
	*c.log = append(*c.log, c.name+": "+fact+" "+ch.Thread.PSID+" "+string(ch.Thread.Owner))
	return nil
}

// TestFactsReachConsumersInOrder: every fact reaches the consumers in the
// order handover.Consumers states (the bots, then the inbox), except a
// relay fact, which the bots hand on to the consumers after them only.
func TestFactsReachConsumersInOrder(t *testing.T) {
	cases := []struct {
		name string
		do   func(ctx context.Context, f *fixture, tx *store.Tx) error
		want []string
	}{
		{"a claim reaches both, bots first", func(ctx context.Context, f *fixture, tx *store.Tx) error {
			return f.svc.ClaimByAgents(ctx, tx, page, psid, "alice", true)
		}, []string{"bots: claim 5001 agent", "inbox: claim 5001 agent"}},
		{"a relay fact reaches only the inbox", func(ctx context.Context, f *fixture, tx *store.Tx) error {
			return f.svc.Relayed(ctx, tx, page, psid, handover.Relay{Kind: handover.RelayForwarded, Bot: "sample"})
		}, []string{"inbox: relay forwarded 5001 agent"}},
		{"a fact about someone handoverd has not seen carries an idle thread", func(ctx context.Context, f *fixture, tx *store.Tx) error {
			return f.svc.Relayed(ctx, tx, page, "9999", handover.Relay{Kind: handover.RelayNote, Bot: "sample", Note: "hi"})
		}, []string{"inbox: relay note 9999 idle"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, b storetest.Backend) {
				ctx := context.Background()
				f := newFixture(t, b, config.DefaultAppAgent)
				// The customer writes on messaging: the thread is the agents'. The
				// facts go out in a second process's transaction.
				if err := f.svc.Ingest(ctx, []messenger.Event{msg(messenger.ChannelMessaging, "m1", 0)}); err != nil {
					t.Fatal(err)
				}
				var log []string
				f.svc.SetConsumers(handover.Consumers{Bots: consumer{"bots", &log}, Inbox: consumer{"inbox", &log}})
				if err := b.Open(t).InTx(ctx, func(tx *store.Tx) error { return c.do(ctx, f, tx) }); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(c.want, log); diff != "" {
					t.Errorf("facts handed over (-want +got):\n%s", diff)
				}
			})
		})
	}
}
