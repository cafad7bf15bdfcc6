package inbox_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/inbox"
	"github.com/handoverd/handoverd/messenger"
)

// shownMessage is what an agent sees of a message.
type shownMessage struct {
	Type    int
	Content string
	Sender  string
	Source  string
}

func (e *env) shownMessages(token string, account, conv int64) []shownMessage {
	e.t.Helper()
	var list inbox.MessageList
	e.must("GET", path("%d/conversations/%d/messages", account, conv), token, nil, &list)
	out := []shownMessage{}
	for _, m := range list.Payload {
		s := shownMessage{Type: m.MessageType, Content: m.Content}
		if m.Sender != nil {
			s.Sender = m.Sender.Type + ":" + m.Sender.Name
		}
		if m.SourceID != nil {
			s.Source = *m.SourceID
		}
		out = append(out, s)
	}
	return out
}

// TestProjectionFollowsThreadControl: a customer's first message creates
// the contact and a pending conversation (the bot owns the thread); the
// bot passing the thread to us opens it, with an activity message naming
// the change; a redelivered message lands once.
func TestProjectionFollowsThreadControl(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		first := e.customer(pageID, "psid-1", "m.1", "hello")
		e.ingest(first)
		e.ingest(first) // Meta redelivers
		conv := e.conversationOf(pageID, "psid-1")

		var v inbox.ConversationView
		e.must("GET", path("1/conversations/%d", conv), aliceToken, nil, &v)
		got := []string{v.Status, v.ThreadOwner, v.PageID, v.PSID, v.Meta.Sender.Name, v.Meta.Channel}
		want := []string{inbox.StatusPending, "bot", pageID, "psid-1", "Messenger user psid-1", "Channel::FacebookPage"}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("new conversation (-want +got):\n%s", d)
		}

		e.ingest(e.passToUs(pageID, "psid-1"))
		e.ingest(toUs(e.customer(pageID, "psid-1", "m.2", "a human, please")))
		e.must("GET", path("1/conversations/%d", conv), aliceToken, nil, &v)
		if d := cmp.Diff([]string{inbox.StatusOpen, "agent"}, []string{v.Status, v.ThreadOwner}); d != "" {
			t.Errorf("after the pass (-want +got):\n%s", d)
		}
		wantMsgs := []shownMessage{
			{Type: 0, Content: "hello", Sender: "contact:Messenger user psid-1", Source: "m.1"},
			{Type: 2, Content: "Thread control: idle → bot (customer_message), reason meta_event"},
			{Type: 2, Content: "Thread control: bot → agents (pass_thread_control), reason meta_event"},
			{Type: 0, Content: "a human, please", Sender: "contact:Messenger user psid-1", Source: "m.2"},
		}
		if d := cmp.Diff(wantMsgs, e.shownMessages(aliceToken, 1, conv)); d != "" {
			t.Errorf("messages (-want +got):\n%s", d)
		}
		wantEvents := []string{
			inbox.EventConversationCreated, inbox.EventMessageCreated, // hello
			inbox.EventMessageCreated, inbox.EventConversationOwner, // idle → bot
			inbox.EventMessageCreated, inbox.EventConversationOwner, inbox.EventConversationStatus, // bot → agents
			inbox.EventMessageCreated, // a human, please
		}
		if d := cmp.Diff(wantEvents, e.events(1)); d != "" {
			t.Errorf("events (-want +got):\n%s", d)
		}
		if d := cmp.Diff([]string{}, e.events(2)); d != "" {
			t.Errorf("account 2 saw account 1's events (-want +got):\n%s", d)
		}
	})
}

// TestProjectionEchoes: what the bot sends shows as an outgoing bot
// message; delivery and read receipts mark messages delivered and read.
func TestProjectionEchoes(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.ingest(e.customer(pageID, "psid-e", "m.in", "hi"))
		e.clock.Advance(1)
		echo := messenger.Event{Kind: messenger.KindEcho, Channel: messenger.ChannelStandby, PageID: pageID, PSID: "psid-e", Time: e.clock.Now(),
			Message: &messenger.Message{MID: "m.bot", Text: "I am the bot", IsEcho: true, AppID: botApp}}
		e.ingest(echo)
		conv := e.conversationOf(pageID, "psid-e")
		want := []shownMessage{
			{Type: 0, Content: "hi", Sender: "contact:Messenger user psid-e", Source: "m.in"},
			{Type: 2, Content: "Thread control: idle → bot (customer_message), reason meta_event"},
			{Type: 1, Content: "I am the bot", Sender: "bot:bot", Source: "m.bot"},
		}
		if d := cmp.Diff(want, e.shownMessages(aliceToken, 1, conv)); d != "" {
			t.Errorf("messages (-want +got):\n%s", d)
		}
	})
}

// TestContactOf: what the inbox tells the relay bots of a thread's
// contact: the contact a customer's first message created, and nothing
// for a thread it has not seen or a Page it does not serve.
func TestContactOf(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.ingest(e.customer(pageID, "psid-k", "m.k", "hi"))
		type answer struct {
			Contact handover.Contact
			OK      bool
		}
		for _, tc := range []struct {
			page, psid string
			want       answer
		}{
			{pageID, "psid-k", answer{handover.Contact{Name: "Messenger user psid-k", Identifier: "psid-k"}, true}},
			{pageID, "psid-unknown", answer{}},
			{"9999", "psid-k", answer{}},
		} {
			c, ok, err := e.in.ContactOf(context.Background(), tc.page, tc.psid)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, answer{c, ok}); d != "" {
				t.Errorf("ContactOf(%s, %s) (-want +got):\n%s", tc.page, tc.psid, d)
			}
		}
	})
}
