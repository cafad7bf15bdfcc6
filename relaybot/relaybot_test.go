package relaybot_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/internal/clocktest"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/relaybot"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/store/storetest"
	"github.com/handoverd/handoverd/userlike"
)

const (
	ourApp   = "111"
	page     = "1001"
	otherPg  = "2002" // a Page without a relay bot
	psid     = "5001"
	neighbor = "5002"
)

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// downstream stands for the consumers after the bots: it records the
// relay facts handed on to them ("kind bot").
type downstream struct{ facts []string }

func (d *downstream) ThreadChanged(_ context.Context, _ *store.Tx, ch handover.Change) error {
	if r := ch.Relay; r != nil {
		d.facts = append(d.facts, string(r.Kind)+" "+r.Bot)
	}
	return nil
}

type fixture struct {
	db    *store.DB
	bots  *relaybot.Service
	down  *downstream
	clock *clocktest.Fake
}

func newFixture(t *testing.T, b storetest.Backend, bot userlike.Bot) *fixture {
	t.Helper()
	db := b.Open(t)
	clock := clocktest.New(t0)
	hs := handover.New(handover.Options{
		DB: db, AppID: ourApp, Clock: clock.Paced(), Logger: zerolog.Nop(),
		Pages: []config.Page{{ID: page, AccessToken: "tok", ClientID: 1}, {ID: otherPg, AccessToken: "tok2", ClientID: 1}},
	})
	bots := relaybot.New(relaybot.Options{DB: db, Bots: []userlike.Bot{bot}, Handover: hs, Clock: clock.Paced(), Logger: zerolog.Nop()})
	down := &downstream{}
	hs.SetConsumers(handover.Consumers{Bots: bots, Inbox: down})
	return &fixture{db: db, bots: bots, down: down, clock: clock}
}

// change hands ch to the relay bots as thread control does and returns
// the bot they say answers the customer afterwards.
func (f *fixture) change(t *testing.T, ch handover.Change) string {
	t.Helper()
	var bot string
	err := f.db.InTx(context.Background(), func(tx *store.Tx) error {
		if err := f.bots.ThreadChanged(context.Background(), tx, ch); err != nil {
			return err
		}
		bot, _ = handover.BotAnswering(tx, ch.Thread.PageID, ch.Thread.PSID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	return bot
}

// claim has an agent take the conversation (holding) or let it go, as the
// inbox does through thread control.
func (f *fixture) claim(t *testing.T, pageID string, holding bool) {
	t.Helper()
	th := handover.Thread{PageID: pageID, PSID: psid, Owner: handover.OwnerAgent}
	f.change(t, handover.Change{Thread: th, Claim: &handover.Claim{Holding: holding, Actor: "alice", At: f.clock.Now()}})
}

func thread(p string) handover.Thread {
	return handover.Thread{PageID: page, PSID: p, Owner: handover.OwnerAgent}
}

var mids int

// says is the customer p writing on channel.
func says(p string, channel messenger.Channel) handover.Change {
	mids++
	ev := messenger.Event{Kind: messenger.KindMessage, Channel: channel, PageID: page, PSID: p, Time: t0,
		Message: &messenger.Message{MID: fmt.Sprintf("m.%d", mids), Text: "hello"}}
	return handover.Change{Thread: thread(p), Event: &ev, Outcome: "applied"}
}

func sent(kind handover.SenderKind, name string) handover.Change {
	m := handover.AgentMessage{ID: 1, PageID: page, PSID: psid, Sender: handover.Sender{Kind: kind, Name: name}, Status: handover.SendSent}
	return handover.Change{Thread: thread(psid), AgentMessage: &m}
}

func taken(to handover.Owner) handover.Change {
	return handover.Change{Thread: thread(psid), Transitions: []handover.Transition{
		{At: t0, From: handover.OwnerAgent, To: to, Cause: handover.CauseTake}}}
}

// state is what the relay bots keep of the customer psid on page.
type state struct {
	Sessions []string // status:end_reason, oldest first
	Hold     string   // why the agents hold the conversation ("" when they do not)
	Calls    int      // webhook calls queued for the bot
}

func (f *fixture) state(t *testing.T, pageID string) state {
	t.Helper()
	ctx := context.Background()
	st := state{Sessions: []string{}}
	rows, err := f.db.Reader().QueryContext(ctx, `SELECT status, end_reason FROM relay_sessions WHERE page_id = $1 AND psid = $2 ORDER BY id`, pageID, psid)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var status, reason string
		if err := rows.Scan(&status, &reason); err != nil {
			t.Fatal(err)
		}
		st.Sessions = append(st.Sessions, status+":"+reason)
	}
	rows.Close()
	_ = f.db.Reader().QueryRowContext(ctx, `SELECT reason FROM relay_holds WHERE page_id = $1 AND psid = $2`, pageID, psid).Scan(&st.Hold)
	if err := f.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM relay_calls c JOIN relay_sessions s ON s.id = c.session_id
		WHERE s.page_id = $1 AND s.psid = $2`, pageID, psid).Scan(&st.Calls); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestThreadChanged: what the relay bots make of each fact thread control
// hands them, from their own record alone (sessions and the agents' holds):
// who answers the customer afterwards, what they keep, and the facts they
// hand on to the inbox.
func TestThreadChanged(t *testing.T) {
	firewall := userlike.Bot{Name: "sample", Pages: []string{page}, WebhookURL: "http://127.0.0.1:9/hook", Mode: userlike.ModeFirewall}
	oneSlot := firewall
	oneSlot.Mode, oneSlot.ChatSlots = userlike.ModeHuman, 1
	type setup func(f *fixture, t *testing.T)
	customer := func(f *fixture, t *testing.T) { f.change(t, says(psid, messenger.ChannelMessaging)) }
	holding := func(f *fixture, t *testing.T) { f.claim(t, page, true) }
	lettingGo := func(f *fixture, t *testing.T) { f.claim(t, page, false) }
	cases := []struct {
		name      string
		bot       userlike.Bot
		given     []setup
		ch        handover.Change
		answering string
		want      state
		facts     []string // handed on by the change itself
	}{
		{"a first message starts a session", firewall, nil, says(psid, messenger.ChannelMessaging),
			"sample", state{Sessions: []string{"active:"}, Calls: 1}, []string{"started sample"}},
		{"a further message goes to the session", firewall, []setup{customer}, says(psid, messenger.ChannelMessaging),
			"sample", state{Sessions: []string{"active:"}, Calls: 2}, nil},
		{"a message on standby is not the bot's", firewall, nil, says(psid, messenger.ChannelStandby),
			"", state{Sessions: []string{}}, nil},
		{"an agent's message ends the session; the agents hold the conversation", firewall, []setup{customer}, sent(handover.SenderAgent, "alice"),
			"", state{Sessions: []string{"forwarded:agent"}, Hold: relaybot.HoldAgent, Calls: 1}, []string{"taken_over sample"}},
		{"the bot's own message changes nothing", firewall, []setup{customer}, sent(handover.SenderRelayBot, "sample"),
			"sample", state{Sessions: []string{"active:"}, Calls: 1}, nil},
		{"the Page Inbox taking the thread ends the session", firewall, []setup{customer}, taken(handover.OwnerPageInbox),
			"", state{Sessions: []string{"forwarded:agent"}, Hold: relaybot.HoldAgent, Calls: 1}, []string{"taken_over sample"}},
		{"an agent claiming the conversation ends the session", firewall, []setup{customer},
			handover.Change{Thread: thread(psid), Claim: &handover.Claim{Holding: true, Actor: "alice"}},
			"", state{Sessions: []string{"forwarded:agent"}, Hold: relaybot.HoldAgent, Calls: 1}, []string{"taken_over sample"}},
		{"a held conversation gets no bot", firewall, []setup{customer, holding}, says(psid, messenger.ChannelMessaging),
			"", state{Sessions: []string{"forwarded:agent"}, Hold: relaybot.HoldAgent, Calls: 1}, nil},
		{"once the agents let go the bot takes the next message", firewall, []setup{customer, holding, lettingGo}, says(psid, messenger.ChannelMessaging),
			"sample", state{Sessions: []string{"forwarded:agent", "active:"}, Calls: 2}, []string{"started sample"}},
		{"letting go of a conversation the bot has keeps the session", firewall, []setup{customer},
			handover.Change{Thread: thread(psid), Claim: &handover.Claim{Holding: false, Actor: "alice"}},
			"sample", state{Sessions: []string{"active:"}, Calls: 1}, nil},
		{"no free chat slot: the agents get the conversation and keep it", oneSlot,
			[]setup{func(f *fixture, t *testing.T) { f.change(t, says(neighbor, messenger.ChannelMessaging)) }},
			says(psid, messenger.ChannelMessaging), "", state{Sessions: []string{}, Hold: relaybot.HoldDeclined}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, b storetest.Backend) {
				f := newFixture(t, b, c.bot)
				for _, g := range c.given {
					g(f, t)
				}
				f.down.facts = nil
				if got := f.change(t, c.ch); got != c.answering {
					t.Errorf("answering = %q, want %q", got, c.answering)
				}
				if diff := cmp.Diff(c.want, f.state(t, page)); diff != "" {
					t.Errorf("state (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(c.facts, f.down.facts); diff != "" {
					t.Errorf("facts handed on (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// TestLettingGoClearsHoldsOnAnyPage: a hold left on a Page that has no
// relay bot (now) goes when the agents let go, so it cannot keep a bot
// out once the Page gets one.
func TestLettingGoClearsHoldsOnAnyPage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b, userlike.Bot{Name: "sample", Pages: []string{page}, WebhookURL: "http://127.0.0.1:9/hook", Mode: userlike.ModeFirewall})
		if _, err := f.db.Writer().ExecContext(context.Background(), `INSERT INTO relay_holds (page_id, psid, reason, since) VALUES ($1, $2, 'agent', 0)`, otherPg, psid); err != nil {
			t.Fatal(err)
		}
		f.claim(t, otherPg, true) // a Page without a relay bot: nothing to record
		if got := f.state(t, otherPg).Hold; got != relaybot.HoldAgent {
			t.Fatalf("hold = %q before letting go, want %q", got, relaybot.HoldAgent)
		}
		f.claim(t, otherPg, false)
		if diff := cmp.Diff(state{Sessions: []string{}}, f.state(t, otherPg)); diff != "" {
			t.Errorf("state (-want +got):\n%s", diff)
		}
	})
}
