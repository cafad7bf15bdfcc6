package inbox_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/inbox"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/messenger/simulator"
)

// TestReplyThroughMessenger: with the simulator as Facebook, an agent's
// reply in a conversation the bot handles takes the thread for the
// agents, reaches the customer, and follows its receipts; resolving the
// conversation hands the thread back to the bot.
func TestReplyThroughMessenger(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.runHandover()
		if _, err := e.sim.CustomerSends(pageID, "psid-m", simulator.CustomerMessage{Text: "help"}); err != nil {
			t.Fatal(err)
		}
		e.flush()
		conv := e.conversationOf(pageID, "psid-m")
		var v inbox.ConversationView
		e.must("GET", path("1/conversations/%d", conv), aliceToken, nil, &v)
		if v.Status != inbox.StatusPending || !v.CanReply {
			t.Fatalf("before the reply: status %q, can_reply %v", v.Status, v.CanReply)
		}
		// The bot passes the thread when asked (as a bot following the
		// handover protocol does).
		bot := messenger.NewGraph(messenger.GraphOptions{BaseURL: e.simURL, Version: "v21.0", AppID: botApp, AppSecret: "bot-app-secret",
			Retry: messenger.Retry{Initial: time.Millisecond}})
		if err := bot.PassThreadControl(context.Background(), messenger.PageRef{ID: pageID, Token: simBotToken}, "psid-m", ourApp, "agents"); err != nil {
			t.Fatal(err)
		}
		e.flush()

		var sent inbox.MessageView
		e.must("POST", path("1/conversations/%d/messages", conv), aliceToken, map[string]any{"content": "Alice here"}, &sent)
		received := func(n int) []string {
			// The sender may still hold the message (SendAsAgent waits a
			// bounded time): wait for it to reach the customer.
			e.eventually(func() bool { return len(e.sim.Inbox(pageID, "psid-m")) >= n })
			e.flush()
			out := []string{}
			for _, m := range e.sim.Inbox(pageID, "psid-m") {
				out = append(out, m.AppID+": "+m.Text)
			}
			return out
		}
		got := received(1)
		if d := cmp.Diff([]string{ourApp + ": Alice here"}, got); d != "" {
			t.Errorf("the customer received (-want +got):\n%s", d)
		}
		status := func() string {
			var list inbox.MessageList
			e.must("GET", path("1/conversations/%d/messages", conv), aliceToken, nil, &list)
			for _, m := range list.Payload {
				if m.ID == sent.ID {
					return m.Status
				}
			}
			t.Fatalf("message %d is gone", sent.ID)
			return ""
		}
		// Sent once the send's answer is recorded (by the sender or its echo).
		e.eventually(func() bool { st := status(); return st == inbox.MsgSent || st == inbox.MsgDelivered })
		e.clock.Advance(time.Second)
		if err := e.sim.CustomerReads(pageID, "psid-m"); err != nil {
			t.Fatal(err)
		}
		e.flush()
		if st := status(); st != inbox.MsgRead {
			t.Errorf("after the customer read it: status %q, want read", st)
		}
		e.must("GET", path("1/conversations/%d", conv), aliceToken, nil, &v)
		if d := cmp.Diff([]string{inbox.StatusOpen, "agent"}, []string{v.Status, v.ThreadOwner}); d != "" {
			t.Errorf("after the reply (-want +got):\n%s", d)
		}

		// Quick replies go out as such; what Messenger cannot take is refused
		// before anything is stored or sent.
		e.must("POST", path("1/conversations/%d/messages", conv), aliceToken, map[string]any{"content": "Which one?", "content_type": "input_select",
			"content_attributes": map[string]any{"items": []map[string]string{{"title": "The first"}, {"title": "The second", "value": "2"}}}}, nil)
		for _, tc := range []struct {
			name string
			body map[string]any
			want errorBody
		}{
			{"too long for Messenger", map[string]any{"content": strings.Repeat("x", 2001)}, errorBody{400, "invalid", "content"}},
			{"no quick replies", map[string]any{"content": "?", "content_type": "input_select"}, errorBody{400, "invalid", "content_attributes.items"}},
			{"quick reply without title", map[string]any{"content": "?", "content_type": "input_select",
				"content_attributes": map[string]any{"items": []map[string]string{{"value": "1"}}}}, errorBody{400, "invalid", "content_attributes.items[0].title"}},
			{"cards", map[string]any{"content": "?", "content_type": "cards"}, errorBody{422, "unprocessable", "content_type"}},
		} {
			st, raw := e.call("POST", path("1/conversations/%d/messages", conv), aliceToken, tc.body, nil)
			if d := cmp.Diff(tc.want, failure(t, st, raw)); d != "" {
				t.Errorf("%s (-want +got):\n%s", tc.name, d)
			}
		}
		got = received(2)
		if d := cmp.Diff([]string{ourApp + ": Alice here", ourApp + ": Which one?"}, got); d != "" {
			t.Errorf("the customer received (-want +got):\n%s", d)
		}

		var toggled map[string]any
		e.must("POST", path("1/conversations/%d/toggle_status", conv), aliceToken, map[string]string{"status": "resolved"}, &toggled)
		e.flush()
		if owner := e.sim.Thread(pageID, "psid-m").OwnerAppID; owner != botApp {
			t.Errorf("after resolving, Facebook's thread owner is %q, want the bot %q", owner, botApp)
		}
		e.must("GET", path("1/conversations/%d", conv), aliceToken, nil, &v)
		if v.Status != inbox.StatusResolved {
			t.Errorf("status %q, want resolved", v.Status)
		}
	})
}

// TestReplyOutsideWindow: once the customer's last message is older than
// Messenger's 7-day human agent window, a reply is refused (422 naming
// content) and nothing is stored; a private note is still taken. (The
// thread's idle expiry may land meanwhile as an activity message: only
// what agents and customers wrote is compared.)
func TestReplyOutsideWindow(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.ingest(toUs(e.customer(pageID, "psid-w", "m.w", "are you there?")))
		conv := e.conversationOf(pageID, "psid-w")
		e.clock.Advance(8 * 24 * time.Hour)
		var v inbox.ConversationView
		e.must("GET", path("1/conversations/%d", conv), aliceToken, nil, &v)
		if v.CanReply {
			t.Error("can_reply after 8 days, want false")
		}
		written := func() []shownMessage {
			var out []shownMessage
			for _, m := range e.shownMessages(aliceToken, 1, conv) {
				if m.Type != 2 {
					out = append(out, m)
				}
			}
			return out
		}
		before := written()
		st, raw := e.call("POST", path("1/conversations/%d/messages", conv), aliceToken, map[string]any{"content": "sorry, late"}, nil)
		if d := cmp.Diff(errorBody{422, "unprocessable", "content"}, failure(t, st, raw)); d != "" {
			t.Errorf("late reply (-want +got):\n%s", d)
		}
		if d := cmp.Diff(before, written()); d != "" {
			t.Errorf("the refused reply was stored (-want +got):\n%s", d)
		}
		e.must("POST", path("1/conversations/%d/messages", conv), aliceToken, map[string]any{"content": "call them", "private": true}, nil)
		want := append(before, shownMessage{Type: 1, Content: "call them", Sender: "agent:alice"})
		if d := cmp.Diff(want, written()); d != "" {
			t.Errorf("after the note (-want +got):\n%s", d)
		}
	})
}
