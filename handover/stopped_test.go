package handover

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/store/storetest"
)

// claimedBySenderThatStopped leaves the fixture's message as a process
// killed while handing it to the Send API leaves it: claimed, sending,
// with a lease running out at until.
func (f *settleFixture) claimedBySenderThatStopped(t *testing.T, until time.Time) {
	t.Helper()
	f.exec(t, `UPDATE agent_messages SET sending = 1, lease_until = $2 WHERE id = $1`, f.msg.ID, store.Millis(until))
}

type sentState struct {
	Status, MID, Error string
	Calls              []string
}

func (f *settleFixture) sentState(t *testing.T) sentState {
	t.Helper()
	m, err := f.svc.AgentMessage(context.Background(), f.msg.ID)
	if err != nil {
		t.Fatal(err)
	}
	return sentState{m.Status, m.MID, m.Error, f.graph.made()}
}

// TestEchoSettlesAMessageWhoseSenderStopped: found by the soak — a
// process killed between the Send API's answer and recording it left the
// message in flight until its claim lapsed (a hand-back of the thread
// waiting as long), then failed it though the customer had it. The echo
// of the send (Facebook's word that it went out) now marks it sent, once.
func TestEchoSettlesAMessageWhoseSenderStopped(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newSettleFixture(t, b)
		f.claimedBySenderThatStopped(t, f.svc.now().Add(leaseFor))
		echo := messenger.Event{Kind: messenger.KindEcho, Channel: messenger.ChannelMessaging, PageID: settlePage, PSID: settlePSID,
			Time: f.svc.now(), Raw: []byte(`{}`),
			Message: &messenger.Message{MID: "m.echo.1", Text: "one moment", IsEcho: true, AppID: "111", Metadata: agentMessageMetadata(f.msg.ID)}}
		// Another app's echo, or one of another message, settles nothing.
		other := echo
		otherMsg := *echo.Message
		otherMsg.MID, otherMsg.Text = "m.echo.0", "something else"
		other.Message = &otherMsg
		if err := f.svc.Ingest(ctx, []messenger.Event{other}); err != nil {
			t.Fatal(err)
		}
		if got := f.sentState(t); got.Status != SendWaiting {
			t.Fatalf("after another message's echo: %+v, want still waiting", got)
		}
		if err := f.svc.Ingest(ctx, []messenger.Event{echo}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(sentState{Status: SendSent, MID: "m.echo.1"}, f.sentState(t)); diff != "" {
			t.Errorf("after the echo (-want +got):\n%s", diff)
		}
		// The hand-back has nothing to wait for.
		if err := f.svc.awaitSends(ctx, settlePage, settlePSID); err != nil {
			t.Fatal(err)
		}
		// A sender that was only slow records it after the echo: nothing changes.
		if err := f.svc.markSent(ctx, f.msg, "m.late", "RESPONSE"); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(sentState{Status: SendSent, MID: "m.echo.1"}, f.sentState(t)); diff != "" {
			t.Errorf("after the slow sender's record (-want +got):\n%s", diff)
		}
	})
}

// TestMessageWhoseSenderStoppedIsNeverSentTwice: without an echo, a
// message whose sender stopped mid-send is failed (Facebook may have it),
// never claimed and sent again once the claim lapses — before, a later
// sender sent it a second time whenever control_timeout outlasted the
// claim, and otherwise failed it as "thread control did not arrive".
func TestMessageWhoseSenderStoppedIsNeverSentTwice(t *testing.T) {
	for _, tt := range []struct {
		name string
		look func(ctx context.Context, f *settleFixture) (int, error)
	}{
		{"another sender's look", func(ctx context.Context, f *settleFixture) (int, error) {
			ok, err := f.svc.sendOne(ctx, f.msg.ID)
			if ok {
				return 1, err
			}
			return 0, err
		}},
		{"the background pass, past the deadline", func(ctx context.Context, f *settleFixture) (int, error) {
			f.exec(t, `UPDATE agent_messages SET deadline_at = $2 WHERE id = $1`, f.msg.ID, store.Millis(f.svc.now().Add(-time.Second)))
			return f.svc.SendDue(ctx)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, b storetest.Backend) {
				f := newSettleFixture(t, b)
				f.claimedBySenderThatStopped(t, f.svc.now().Add(-time.Second))
				if n, err := tt.look(context.Background(), f); n != 0 || err != nil {
					t.Fatalf("sent %d, %v; want nothing sent", n, err)
				}
				if diff := cmp.Diff(sentState{Status: SendFailed, Error: reasonSenderStopped}, f.sentState(t)); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		})
	}
}
