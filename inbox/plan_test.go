package inbox

import (
	"database/sql"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/handover"
)

// TestNewConversationStatus: a new Messenger conversation starts pending
// when a bot will answer, open when the agents own the thread.
func TestNewConversationStatus(t *testing.T) {
	for _, tc := range []struct {
		name       string
		owner      handover.Owner
		botAnswers bool
		pageHasBot bool
		want       string
	}{
		{"agents own it", handover.OwnerAgent, false, true, StatusOpen},
		{"the bot owns it", handover.OwnerBot, false, false, StatusPending},
		{"a relay bot answers though the agents own it", handover.OwnerAgent, true, false, StatusPending},
		{"nobody owns it, a Page with a bot app", handover.OwnerIdle, false, true, StatusPending},
		{"Page Inbox owns it, no bot app", handover.OwnerPageInbox, false, false, StatusOpen},
		{"nobody owns it, a relay bot answers", handover.OwnerIdle, true, false, StatusPending},
	} {
		if d := cmp.Diff(tc.want, newConversationStatus(tc.owner, tc.botAnswers, tc.pageHasBot)); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
}

// TestParseMessage: a message's input is checked before anything is read.
func TestParseMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   MessageInput
		want parsedMessage
		err  *apperr.Error
	}{
		{"text by default", MessageInput{Content: "hi"}, parsedMessage{messageType: Outgoing, contentType: "text", attrs: map[string]any{}}, nil},
		{"incoming by number", MessageInput{Content: "hi", MessageType: json.RawMessage(`0`)}, parsedMessage{messageType: Incoming, contentType: "text", attrs: map[string]any{}}, nil},
		{"attributes kept", MessageInput{Content: "x", ContentAttributes: json.RawMessage(`{"a":1}`)},
			parsedMessage{messageType: Outgoing, contentType: "text", attrs: map[string]any{"a": float64(1)}}, nil},
		{"files without text", MessageInput{Files: []Upload{{Filename: "a"}}}, parsedMessage{messageType: Outgoing, contentType: "text", attrs: map[string]any{}}, nil},
		{"empty text", MessageInput{Content: " "}, parsedMessage{}, &apperr.Error{Code: apperr.Invalid, Field: "content", Message: "is required"}},
		{"too long", MessageInput{Content: string(make([]rune, 5001))}, parsedMessage{}, &apperr.Error{Code: apperr.Invalid, Field: "content", Message: "is over 5000 characters"}},
		{"content type", MessageInput{Content: "x", ContentType: "video"}, parsedMessage{}, &apperr.Error{Code: apperr.Invalid, Field: "content_type", Message: `unknown content_type "video"`}},
		{"attributes not an object", MessageInput{Content: "x", ContentAttributes: json.RawMessage(`[1]`)}, parsedMessage{}, &apperr.Error{Code: apperr.Invalid, Field: "content_attributes", Message: "must be a JSON object"}},
	} {
		got, err := parseMessage(tc.in)
		if d := cmp.Diff(tc.want, got, cmp.AllowUnexported(parsedMessage{})); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
		if d := cmp.Diff(tc.err, errorOf(err)); d != "" {
			t.Errorf("%s: error (-want +got):\n%s", tc.name, d)
		}
	}
}

// errorOf is err's code, field and message, nil for nil.
func errorOf(err error) *apperr.Error {
	if err == nil {
		return nil
	}
	e := apperr.As(err)
	return &apperr.Error{Code: e.Code, Field: e.Field, Message: e.Message}
}

// TestPlanMessage: what a new message is — its sender, whether it is a
// reply on Messenger, what goes out, whether it opens the conversation —
// and the refusals that need the conversation or the customer's last
// message.
func TestPlanMessage(t *testing.T) {
	now := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	recent, old := now.Add(-time.Hour), now.Add(-handover.HumanAgentWindow-time.Second)
	api := conversation{id: 7, contactID: 3, status: StatusOpen}
	fb := conversation{id: 8, contactID: 4, status: StatusPending, pageID: "1001", psid: "5001"}
	fbOpen := fb
	fbOpen.status = StatusOpen
	text := parsedMessage{messageType: Outgoing, contentType: "text"}
	incoming := parsedMessage{messageType: Incoming, contentType: "text"}
	agent := func(conv conversation, content string) newMessage {
		return newMessage{convID: conv.id, messageType: Outgoing, content: content, contentType: "text", senderType: SenderAgent, senderName: "alice"}
	}
	queued := func(m newMessage) newMessage { m.status = MsgQueued; return m }
	for _, tc := range []struct {
		name string
		pm   parsedMessage
		in   MessageInput
		conv conversation
		f    messageFacts
		want messagePlan
		err  *apperr.Error
	}{
		{"an agent's message in an API conversation", text, MessageInput{Content: "hi"}, api, messageFacts{},
			messagePlan{m: agent(api, "hi")}, nil},
		{"the contact's message in an API conversation", incoming, MessageInput{Content: "hi"}, api, messageFacts{contactName: "Ada"},
			messagePlan{m: newMessage{convID: 7, messageType: Incoming, content: "hi", contentType: "text", senderType: SenderContact,
				senderID: sql.NullInt64{Int64: 3, Valid: true}, senderName: "Ada"}}, nil},
		{"a reply on Messenger opens a pending conversation", text, MessageInput{Content: "hi"}, fb, messageFacts{lastCustomerAt: &recent},
			messagePlan{m: queued(agent(fb, "hi")), reply: true, opens: true, sends: []map[string]any{{"text": "hi"}}}, nil},
		{"a reply in an open conversation", text, MessageInput{Content: "hi"}, fbOpen, messageFacts{lastCustomerAt: &recent},
			messagePlan{m: queued(agent(fbOpen, "hi")), reply: true, sends: []map[string]any{{"text": "hi"}}}, nil},
		{"a reply of files only sends no text", text, MessageInput{Files: []Upload{{Filename: "a.png"}}}, fbOpen, messageFacts{lastCustomerAt: &recent},
			messagePlan{m: queued(agent(fbOpen, "")), reply: true}, nil},
		{"a private note on Messenger is no reply", text, MessageInput{Content: "note", Private: true}, fb, messageFacts{},
			messagePlan{m: func() newMessage { m := agent(fb, "note"); m.private = true; return m }()}, nil},
		{"incoming on Messenger", incoming, MessageInput{Content: "hi"}, fb, messageFacts{}, messagePlan{},
			&apperr.Error{Code: apperr.Unprocessable, Field: "message_type", Message: "incoming Messenger messages come from Messenger"}},
		{"outside the human agent window", text, MessageInput{Content: "hi"}, fb, messageFacts{lastCustomerAt: &old}, messagePlan{},
			&apperr.Error{Code: apperr.Unprocessable, Field: "content", Message: "outside Messenger's 7-day human agent window: the customer must write first"}},
		{"the customer never wrote", text, MessageInput{Content: "hi"}, fb, messageFacts{}, messagePlan{},
			&apperr.Error{Code: apperr.Unprocessable, Field: "content", Message: "outside Messenger's 7-day human agent window: the customer must write first"}},
	} {
		got, err := planMessage(tc.pm, tc.in, tc.conv, "alice", tc.f, now)
		if d := cmp.Diff(tc.want, got, cmp.AllowUnexported(messagePlan{}, newMessage{})); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
		if d := cmp.Diff(tc.err, errorOf(err)); d != "" {
			t.Errorf("%s: error (-want +got):\n%s", tc.name, d)
		}
	}
}
