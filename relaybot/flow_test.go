package relaybot_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store/storetest"
	"github.com/handoverd/handoverd/userlike"
)

// TestRelayConversation: the seed's sample flow through the relay bots —
// the first message starts a session (a start call), the bot's answers
// become queued messages, its context comes back in the next call, and
// its contact update, note and forward reach the agents' inbox.
func TestRelayConversation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFlow(t, b, nil)
		f.bot.answer(
			func(cid string) (int, any) {
				return 200, event(cid, map[string]any{"state": "name"}, "message", map[string]any{"body": "What is your name?"})
			},
			func(cid string) (int, any) {
				return 200, []any{
					event(cid, map[string]any{}, "contact_update", map[string]any{"name": "Ada", "email": "ada@example.com"}),
					event(cid, nil, "note_create", map[string]any{"body": "asked for a human"}),
					event(cid, nil, "message", map[string]any{"body": "Forwarding you, Ada"}),
					event(cid, nil, "forward_any", map[string]any{}),
				}
			},
		)
		f.says(psid, "hi")
		if st := f.conversation(psid).Status; st != "pending" {
			t.Errorf("while the bot has it the conversation is %q, want pending", st)
		}
		f.work()
		f.says(psid, "Ada")
		f.work()

		want := []botCall{
			{Packet: userlike.PacketStart, Body: "hi"},
			{Packet: userlike.PacketMessage, Body: "Ada", State: "name"},
		}
		if d := cmp.Diff(want, f.bot.received()); d != "" {
			t.Errorf("the bot received (-want +got):\n%s", d)
		}
		if d := cmp.Diff([]string{hookToken, hookToken}, f.bot.header); d != "" {
			t.Errorf("webhook headers (-want +got):\n%s", d)
		}
		if d := cmp.Diff([]string{"What is your name?", "Forwarding you, Ada"}, f.queued(psid)); d != "" {
			t.Errorf("queued for the customer (-want +got):\n%s", d)
		}
		status, reason, _ := f.session(psid)
		if d := cmp.Diff([]string{"forwarded", "forward"}, []string{status, reason}); d != "" {
			t.Errorf("session (-want +got):\n%s", d)
		}
		wantConv := conversation{Status: "open", Contact: "Ada", Email: "ada@example.com", Messages: []string{
			"in: hi", "activity: Thread control: idle → agents (customer_message), reason meta_event", "in: Ada", "note by sample: asked for a human", "activity: Forwarded to the agents by the bot sample",
		}}
		if d := cmp.Diff(wantConv, f.conversation(psid)); d != "" {
			t.Errorf("the agents see (-want +got):\n%s", d)
		}
		// Held by the agents now: the next message goes to no bot.
		f.says(psid, "hello?")
		f.work()
		if n := len(f.bot.received()); n != 2 {
			t.Errorf("the bot got %d calls after the forward, want still 2", n)
		}
	})
}

// TestRelayBotDown: a bot that keeps failing is retried with a doubling
// delay; after the last attempt the agents get the conversation, which
// says why.
func TestRelayBotDown(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFlow(t, b, nil)
		down := func(string) (int, any) { return http.StatusServiceUnavailable, nil }
		f.bot.answer(down, down, down)
		f.says(psid, "hi")
		f.work()
		f.work() // not due yet: no second call
		if n := len(f.bot.received()); n != 1 {
			t.Fatalf("%d calls before the retry delay, want 1", n)
		}
		f.clock.Advance(time.Second)
		f.work()
		f.clock.Advance(time.Second) // the third attempt waits 2 s
		f.work()
		if n := len(f.bot.received()); n != 2 {
			t.Fatalf("%d calls 1 s into a 2 s delay, want 2", n)
		}
		f.clock.Advance(time.Second)
		f.work()
		status, reason, _ := f.session(psid)
		if d := cmp.Diff([]string{"forwarded", "bot_down"}, []string{status, reason}); d != "" {
			t.Errorf("session (-want +got):\n%s", d)
		}
		want := conversation{Status: "open", Contact: "Messenger user " + psid, Messages: []string{
			"in: hi", "activity: Thread control: idle → agents (customer_message), reason meta_event",
			"activity: The bot sample did not answer (HTTP 503): forwarded to the agents"}}
		if d := cmp.Diff(want, f.conversation(psid)); d != "" {
			t.Errorf("the agents see (-want +got):\n%s", d)
		}
	})
}

// TestRelayEventsAPI: a bot posts events for its session to the API URL:
// a delay holds back what follows it; end resolves the conversation, and
// events for the ended session are refused. (Refusals of bad posts are
// the Userlike adapter's tests.)
func TestRelayEventsAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFlow(t, b, nil)
		f.says(psid, "hi")
		f.work()
		_, _, cid := f.session(psid)

		st, _ := f.post(botAPIToken, []any{
			event(cid, nil, "message", map[string]any{"body": "one moment"}),
			event(cid, nil, "delay", map[string]any{"duration": 5}),
			event(cid, nil, "message", map[string]any{"body": "done"}),
			event(cid, nil, "end", map[string]any{}),
		})
		if st != http.StatusOK {
			t.Fatalf("events: %d", st)
		}
		f.work()
		if d := cmp.Diff([]string{"one moment"}, f.queued(psid)); d != "" {
			t.Errorf("before the delay is over (-want +got):\n%s", d)
		}
		f.clock.Advance(5 * time.Second)
		f.work()
		if d := cmp.Diff([]string{"one moment", "done"}, f.queued(psid)); d != "" {
			t.Errorf("after the delay (-want +got):\n%s", d)
		}
		status, reason, _ := f.session(psid)
		if d := cmp.Diff([]string{"ended", "end"}, []string{status, reason}); d != "" {
			t.Errorf("session (-want +got):\n%s", d)
		}
		if got := f.conversation(psid).Status; got != "resolved" {
			t.Errorf("conversation %q after end, want resolved", got)
		}
		if st, _ := f.post(botAPIToken, event(cid, nil, "message", map[string]any{"body": "late"})); st != http.StatusConflict {
			t.Errorf("events for an ended session: %d, want 409", st)
		}
	})
}

// TestRelayTimeout: a session idle for the bot's conversation_timeout is
// closed by its timeout action (forward: the agents get it).
func TestRelayTimeout(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFlow(t, b, func(b *userlike.Bot) {
			b.ConversationTimeout, b.TimeoutAction = 10*time.Minute, userlike.TimeoutForward
		})
		f.says(psid, "hi")
		f.work()
		f.clock.Advance(9 * time.Minute)
		if n, err := f.bots.TimeOutIdle(t.Context()); err != nil || n != 0 {
			t.Fatalf("TimeOutIdle before the timeout: %d, %v", n, err)
		}
		f.clock.Advance(time.Minute)
		if n, err := f.bots.TimeOutIdle(t.Context()); err != nil || n != 1 {
			t.Fatalf("TimeOutIdle at the timeout: %d, %v", n, err)
		}
		status, reason, _ := f.session(psid)
		if d := cmp.Diff([]string{"forwarded", "timeout"}, []string{status, reason}); d != "" {
			t.Errorf("session (-want +got):\n%s", d)
		}
		c := f.conversation(psid)
		if d := cmp.Diff([]any{"open", "activity: No messages for 10m0s: the bot sample handed the conversation to the agents"},
			[]any{c.Status, c.Messages[len(c.Messages)-1]}); d != "" {
			t.Errorf("the agents see (-want +got):\n%s", d)
		}
	})
}

// TestRelayBotEvents: what each of the bot's events does to its session
// and to what the agents see, one fresh session per case.
func TestRelayBotEvents(t *testing.T) {
	outOfHours := func(b *userlike.Bot) {
		b.Mode = userlike.ModeServiceTime
		b.Schedule = userlike.Schedule{TimeZone: "UTC", Monday: []string{"00:00-00:01"}} // the humans' hours; t0 is a Monday at 09:00
	}
	cases := []struct {
		name    string
		tune    func(*userlike.Bot)
		events  func(cid string) []any
		session string // status:end_reason
		status  string // the conversation's
		last    string // the conversation's last message
		calls   []string
	}{
		{"abort", nil, func(cid string) []any { return []any{event(cid, nil, "abort", map[string]any{})} },
			"forwarded:abort", "open", "activity: The bot sample stepped back: in the agents' queue", nil},
		{"forward to a group", nil, func(cid string) []any {
			return []any{event(cid, nil, "forward_group", map[string]any{"group_id": 7})}
		}, "forwarded:forward", "open", "activity: Forwarded to the agents by the bot sample (group 7)", nil},
		{"forward by skills", nil, func(cid string) []any {
			return []any{event(cid, nil, "forward_skills", map[string]any{"skills": []string{"billing", "de"}})}
		}, "forwarded:forward", "open", "activity: Forwarded to the agents by the bot sample (skills billing, de)", nil},
		{"forward with feedback when no agent can take it", outOfHours, func(cid string) []any {
			return []any{event(cid, nil, "forward_any", map[string]any{"on_failure": "feedback"})}
		}, "active:", "pending", "activity: Thread control: idle → agents (customer_message), reason meta_event", []string{userlike.PacketForwardFailed}},
		{"add-on dispatch", nil, func(cid string) []any {
			return []any{event(cid, nil, "addon_dispatch", map[string]any{"type": "crm"})}
		}, "active:", "pending", "note by sample: The bot sample asked for addon dispatch", nil},
		{"email dispatch", nil, func(cid string) []any {
			return []any{event(cid, nil, "email_dispatch", map[string]any{"recipient_type": "contact"})}
		}, "active:", "pending", "note by sample: The bot sample asked for email dispatch to the contact", nil},
		{"conversation update", nil, func(cid string) []any {
			return []any{event(cid, nil, "conversation_update", map[string]any{"subject": "Refund"})}
		}, "active:", "pending", "activity: Thread control: idle → agents (customer_message), reason meta_event", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, b storetest.Backend) {
				f := newFlow(t, b, c.tune)
				f.says(psid, "hi")
				f.work()
				_, _, cid := f.session(psid)
				if st, field := f.post(botAPIToken, c.events(cid)); st != http.StatusOK {
					t.Fatalf("events: %d (%s)", st, field)
				}
				f.work()
				f.work() // a call the events queued
				status, reason, _ := f.session(psid)
				conv := f.conversation(psid)
				got := []string{status + ":" + reason, conv.Status, conv.Messages[len(conv.Messages)-1]}
				if d := cmp.Diff([]string{c.session, c.status, c.last}, got); d != "" {
					t.Errorf("after the events (-want +got):\n%s", d)
				}
				var calls []string
				for _, call := range f.bot.received()[1:] {
					calls = append(calls, call.Packet)
				}
				if d := cmp.Diff(c.calls, calls); d != "" {
					t.Errorf("calls after the start (-want +got):\n%s", d)
				}
			})
		})
	}
}

// TestRelayChoice: the options of the bot's choice message become
// postback buttons; the customer tapping one is a click with the option's
// label and value.
func TestRelayChoice(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFlow(t, b, nil)
		f.bot.answer(func(cid string) (int, any) {
			return 200, event(cid, nil, "bubbles", map[string]any{"body": "Pick one", "fallback": "Pick one: 1 or 2",
				"options": []map[string]any{{"label": "Tea", "value": "t"}, {"label": "Coffee", "value": "c"}}})
		})
		f.says(psid, "hi")
		f.work()
		var raw string
		if err := f.db.Reader().QueryRowContext(t.Context(), `SELECT message FROM agent_messages WHERE psid = $1 AND sender_kind = 'relay_bot'`, psid).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var m struct {
			Attachment struct {
				Payload struct {
					Text    string `json:"text"`
					Buttons []struct {
						Type    string `json:"type"`
						Title   string `json:"title"`
						Payload string `json:"payload"`
					} `json:"buttons"`
				} `json:"payload"`
			} `json:"attachment"`
		}
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatal(err)
		}
		buttons := []string{m.Attachment.Payload.Text}
		for _, b := range m.Attachment.Payload.Buttons {
			buttons = append(buttons, b.Type+" "+b.Title)
		}
		if d := cmp.Diff([]string{"Pick one", "postback Tea", "postback Coffee"}, buttons); d != "" {
			t.Fatalf("buttons of %s (-want +got):\n%s", raw, d)
		}
		f.mids++
		f.clock.Advance(time.Second)
		tap := messenger.Event{Kind: messenger.KindPostback, Channel: messenger.ChannelMessaging, PageID: page, PSID: psid, Time: f.clock.Now(),
			Postback: &messenger.Postback{MID: "m.tap", Title: "Coffee", Payload: m.Attachment.Payload.Buttons[1].Payload}, Raw: json.RawMessage(`{}`)}
		if err := f.hs.Ingest(t.Context(), []messenger.Event{tap}); err != nil {
			t.Fatal(err)
		}
		f.work()
		want := []botCall{{Packet: userlike.PacketStart, Body: "hi"}, {Packet: userlike.PacketClick, Body: "Coffee=c"}}
		if d := cmp.Diff(want, f.bot.received()); d != "" {
			t.Errorf("the bot received (-want +got):\n%s", d)
		}
	})
}

// TestRelaySeveralProcesses: processes sharing the database call the bot
// together; each customer message reaches it exactly once, each session's
// in order.
func TestRelaySeveralProcesses(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		a := newFlow(t, b, nil)
		other := newRelayProcess(t, b, nil, a.bot, a.botURL)
		customers := []string{"6001", "6002", "6003", "6004"}
		for round := range 3 {
			for _, p := range customers {
				a.says(p, p+"/"+strconv.Itoa(round))
			}
		}
		var wg sync.WaitGroup
		for _, f := range []*flow{a, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 20 {
					if _, err := f.bots.DeliverDue(context.Background()); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		got := map[string][]string{}
		for _, c := range a.bot.received() {
			p, _, _ := strings.Cut(c.Body, "/")
			got[p] = append(got[p], c.Packet+" "+c.Body)
		}
		want := map[string][]string{}
		for _, p := range customers {
			want[p] = []string{"start " + p + "/0", "message " + p + "/1", "message " + p + "/2"}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("the bot received (-want +got):\n%s", d)
		}
	})
}
