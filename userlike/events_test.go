package userlike

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/handoverd/handoverd/apperr"
)

// body makes one event object for cid c1 with the given name and payload
// (payload "" leaves the key out).
func body(name, payload string) string {
	if payload == "" {
		return `{"info":{"cid":"c1"},"packet":{"name":"` + name + `"}}`
	}
	return `{"info":{"cid":"c1"},"packet":{"name":"` + name + `","payload":` + payload + `}}`
}

// invalidField returns the Field of an Invalid *apperr.Error, failing the
// test for anything else.
func invalidField(t *testing.T, err error) (field, msg string) {
	t.Helper()
	var ae *apperr.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *apperr.Error", err, err)
	}
	if ae.Code != apperr.Invalid {
		t.Fatalf("code = %s, want invalid (%v)", ae.Code, err)
	}
	return ae.Field, ae.Message
}

func TestParseEventsValid(t *testing.T) {
	long := strings.Repeat("é", MaxTextLength)
	tests := []struct {
		name string
		body string
		want Event
	}{
		{"message", body("message", `{"body":"Welcome!"}`),
			Event{Name: EventMessage, CID: "c1", Message: &Message{Body: "Welcome!"}}},
		{"message text_format", body("message", `{"body":"**Hi**","text_format":"markdown_v1"}`),
			Event{Name: EventMessage, CID: "c1", Message: &Message{Body: "**Hi**", TextFormat: TextFormatMarkdown}}},
		{"message other text_format passes", body("message", `{"body":"Hi","text_format":"plain"}`),
			Event{Name: EventMessage, CID: "c1", Message: &Message{Body: "Hi", TextFormat: "plain"}}},
		{"message 5000 characters", body("message", `{"body":"`+long+`"}`),
			Event{Name: EventMessage, CID: "c1", Message: &Message{Body: long}}},
		{"message unknown keys ignored", body("message", `{"body":"Hi","future":true}`),
			Event{Name: EventMessage, CID: "c1", Message: &Message{Body: "Hi"}}},
		{"context", `{"info":{"cid":"c1","context":{ "state" : "name" }},"packet":{"name":"message","payload":{"body":"Hi"}}}`,
			Event{Name: EventMessage, CID: "c1", Context: json.RawMessage(`{"state":"name"}`), Message: &Message{Body: "Hi"}}},
		{"empty context ignored", `{"info":{"cid":"c1","context":{}},"packet":{"name":"message","payload":{"body":"Hi"}}}`,
			Event{Name: EventMessage, CID: "c1", Message: &Message{Body: "Hi"}}},
		{"null context ignored", `{"info":{"cid":"c1","context":null},"packet":{"name":"message","payload":{"body":"Hi"}}}`,
			Event{Name: EventMessage, CID: "c1", Message: &Message{Body: "Hi"}}},
		{"bubbles", body("bubbles", `{"body":"How can I help?","fallback":"Please answer with a number:","options":[{"label":"Delivery status of an order","value":"delivery"},{"label":"Returns"},{"label":"Other","value":7}]}`),
			Event{Name: EventBubbles, CID: "c1", Choice: &Choice{Body: "How can I help?", Fallback: "Please answer with a number:",
				Options: []Option{{Label: "Delivery status of an order", Value: "delivery"}, {Label: "Returns"}, {Label: "Other", Value: "7"}}}}},
		{"carousel without body", body("carousel", `{"fallback":"Pick one:","options":[{"label":"Red","value":"r","image_url":"https://example.com/r.png"},{"label":"Blue"}]}`),
			Event{Name: EventCarousel, CID: "c1", Choice: &Choice{Fallback: "Pick one:",
				Options: []Option{{Label: "Red", Value: "r", ImageURL: "https://example.com/r.png"}, {Label: "Blue"}}}}},
		{"button_template image header", body("button_template", `{"header":{"type":"image","link":"https://example.com/h.jpg"},"body":"Your order","footer":"Shop","fallback":"Choose:","options":[{"label":"Track"},{"label":"Cancel"},{"label":"Help"}]}`),
			Event{Name: EventButtonTemplate, CID: "c1", Choice: &Choice{Header: &Header{Type: HeaderImage, Link: "https://example.com/h.jpg"},
				Body: "Your order", Footer: "Shop", Fallback: "Choose:", Options: []Option{{Label: "Track"}, {Label: "Cancel"}, {Label: "Help"}}}}},
		{"button_template text header as string", body("button_template", `{"header":"Order 42","body":"b","fallback":"f","options":[{"label":"A"}]}`),
			Event{Name: EventButtonTemplate, CID: "c1", Choice: &Choice{Header: &Header{Type: HeaderText, Text: "Order 42"},
				Body: "b", Fallback: "f", Options: []Option{{Label: "A"}}}}},
		{"list_template ten options", body("list_template", `{"header":"Menu","body":"b","footer":"ft","button":"Open","title":"Dishes","fallback":"f","options":[`+options(10, `"description":"d"`)+`]}`),
			Event{Name: EventListTemplate, CID: "c1", Choice: &Choice{Header: &Header{Type: HeaderText, Text: "Menu"}, Body: "b", Footer: "ft",
				Button: "Open", Title: "Dishes", Fallback: "f", Options: optionList(10, "d")}}},
		{"buttons", body("buttons", `{"body":"Links","buttons":[{"label":"Docs","link":"https://example.com/docs"},{"label":"Blog","link":"http://example.com/blog"}]}`),
			Event{Name: EventButtons, CID: "c1", Buttons: &Buttons{Body: "Links", Buttons: []LinkButton{
				{Label: "Docs", Link: "https://example.com/docs"}, {Label: "Blog", Link: "http://example.com/blog"}}}}},
		{"deprecated button", body("button", `{"body":"See","link":"https://example.com"}`),
			Event{Name: EventButton, CID: "c1", Buttons: &Buttons{Body: "See", Buttons: []LinkButton{{Label: "https://example.com", Link: "https://example.com"}}}}},
		{"media", body("media", `{"link":"https://example.com/a.pdf","mime_type":"application/pdf","filename":"a.pdf"}`),
			Event{Name: EventMedia, CID: "c1", Media: &Media{Link: "https://example.com/a.pdf", MimeType: "application/pdf", Filename: "a.pdf"}}},
		{"navigate", body("navigate", `{"url":"https://example.com/checkout"}`),
			Event{Name: EventNavigate, CID: "c1", Navigate: &Navigate{URL: "https://example.com/checkout"}}},
		{"contact_update all fields", body("contact_update", `{"name":"Jane Doe","email":"jane@example.com","mobile_number":"+4917612345678","external_customer_id":12345,"custom_fields":{ "tier" : "gold" }}`),
			Event{Name: EventContactUpdate, CID: "c1", ContactUpdate: &ContactUpdate{Name: "Jane Doe", Email: "jane@example.com",
				MobileNumber: "+4917612345678", ExternalCustomerID: "12345", CustomFields: json.RawMessage(`{"tier":"gold"}`)}}},
		{"contact_update one field", body("contact_update", `{"name":"Jane"}`),
			Event{Name: EventContactUpdate, CID: "c1", ContactUpdate: &ContactUpdate{Name: "Jane"}}},
		{"conversation_update", body("conversation_update", `{"subject":"Refund","topics":["billing",12],"locale":"de_DE","custom_fields":{"order":42}}`),
			Event{Name: EventConversationUpdate, CID: "c1", ConversationUpdate: &ConversationUpdate{Subject: "Refund",
				Topics: []string{"billing", "12"}, Locale: "de_DE", CustomFields: json.RawMessage(`{"order":42}`)}}},
		{"conversation_update clears topics", body("conversation_update", `{"topics":[]}`),
			Event{Name: EventConversationUpdate, CID: "c1", ConversationUpdate: &ConversationUpdate{Topics: []string{}}}},
		{"note_create on conversation", body("note_create", `{"body":"VIP"}`),
			Event{Name: EventNoteCreate, CID: "c1", Note: &Note{Body: "VIP"}}},
		{"note_create on contact", body("note_create", `{"body":"VIP","contact_identity_id":987}`),
			Event{Name: EventNoteCreate, CID: "c1", Note: &Note{Body: "VIP", ContactIdentityID: "987"}}},
		{"delay", body("delay", `{"duration":1.5}`),
			Event{Name: EventDelay, CID: "c1", Delay: &Delay{Duration: 1500 * time.Millisecond, Typing: true}}},
		{"delay without typing", body("delay", `{"duration":60,"typing_indicator":false}`),
			Event{Name: EventDelay, CID: "c1", Delay: &Delay{Duration: time.Minute}}},
		{"abort without payload", body("abort", ""), Event{Name: EventAbort, CID: "c1"}},
		{"end with null payload", body("end", "null"), Event{Name: EventEnd, CID: "c1"}},
		{"end with empty payload", body("end", "{}"), Event{Name: EventEnd, CID: "c1"}},
		{"forward_group", body("forward_group", `{"group_id":3,"on_failure":"feedback"}`),
			Event{Name: EventForwardGroup, CID: "c1", Forward: &Forward{GroupID: "3", OnFailure: OnFailureFeedback}}},
		{"forward_skills", body("forward_skills", `{"skills":["german","billing"]}`),
			Event{Name: EventForwardSkills, CID: "c1", Forward: &Forward{Skills: []string{"german", "billing"}}}},
		{"forward_any", body("forward_any", `{}`), Event{Name: EventForwardAny, CID: "c1", Forward: &Forward{}}},
		{"forward_any unassign", body("forward_any", `{"on_failure":"unassign"}`),
			Event{Name: EventForwardAny, CID: "c1", Forward: &Forward{OnFailure: OnFailureUnassign}}},
		{"addon_dispatch", body("addon_dispatch", `{"type":"salesforce"}`),
			Event{Name: EventAddonDispatch, CID: "c1", AddonDispatch: &AddonDispatch{Type: "salesforce"}}},
		{"email_dispatch operator", body("email_dispatch", `{"recipient_type":"operator","operator_id":17}`),
			Event{Name: EventEmailDispatch, CID: "c1", EmailDispatch: &EmailDispatch{RecipientType: RecipientOperator, OperatorID: "17"}}},
		{"email_dispatch contact", body("email_dispatch", `{"recipient_type":"contact"}`),
			Event{Name: EventEmailDispatch, CID: "c1", EmailDispatch: &EmailDispatch{RecipientType: RecipientContact}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEvents([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParseEvents: %v", err)
			}
			if diff := cmp.Diff([]Event{tt.want}, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			// The same event as a one-element list parses the same.
			list, err := ParseEvents([]byte("[" + tt.body + "]"))
			if err != nil {
				t.Fatalf("ParseEvents(list): %v", err)
			}
			if diff := cmp.Diff(got, list); diff != "" {
				t.Errorf("list differs (-single +list):\n%s", diff)
			}
		})
	}
}

// options returns n option objects, with extra JSON members.
func options(n int, extra string) string {
	var parts []string
	for i := range n {
		o := fmt.Sprintf(`{"label":"Option %d","value":"v%d"`, i+1, i+1)
		if extra != "" {
			o += "," + extra
		}
		parts = append(parts, o+"}")
	}
	return strings.Join(parts, ",")
}

// optionList is what options(n, description) parses to.
func optionList(n int, description string) []Option {
	var out []Option
	for i := range n {
		out = append(out, Option{Label: fmt.Sprintf("Option %d", i+1), Value: fmt.Sprintf("v%d", i+1), Description: description})
	}
	return out
}

func TestParseEventsInvalid(t *testing.T) {
	bigContext := `{"k":"` + strings.Repeat("x", MaxContextBytes) + `"}`
	var many []string
	for range MaxEvents + 1 {
		many = append(many, body("end", ""))
	}
	tests := []struct {
		name  string
		body  string
		field string // the error's Field
		msg   string // a part of its Message
	}{
		{"not JSON", `{"info":`, "", "not valid JSON"},
		{"a number", `42`, "", "event object or a JSON list"},
		{"a string", `"hello"`, "", "event object or a JSON list"},
		{"list item not an object", `[1]`, "events[0]", "event object"},
		{"too many events", "[" + strings.Join(many, ",") + "]", "events", "at most 100"},
		{"no info", `{"packet":{"name":"end"}}`, "info", "required"},
		{"info not an object", `{"info":[],"packet":{"name":"end"}}`, "info", "JSON object"},
		{"no cid", `{"info":{},"packet":{"name":"end"}}`, "info.cid", "required"},
		{"cid not a string", `{"info":{"cid":5},"packet":{"name":"end"}}`, "info.cid", "string"},
		{"no packet", `{"info":{"cid":"c1"}}`, "packet", "required"},
		{"no name", `{"info":{"cid":"c1"},"packet":{}}`, "packet.name", "required"},
		{"name not a string", `{"info":{"cid":"c1"},"packet":{"name":1}}`, "packet.name", "string"},
		{"unknown event", body("dance", `{}`), "packet.name", `unknown event "dance"`},
		{"webhook-only event start", body("start", `{}`), "packet.name", "unknown event"},
		{"webhook-only event click", body("click", `{}`), "packet.name", "unknown event"},
		{"payload not an object", body("message", `"hi"`), "packet.payload", "JSON object"},
		{"context not an object", `{"info":{"cid":"c1","context":[1]},"packet":{"name":"end"}}`, "info.context", "JSON object"},
		{"context over 10 KB", `{"info":{"cid":"c1","context":` + bigContext + `},"packet":{"name":"end"}}`, "info.context", "10 KB"},
		{"unknown event in list", "[" + body("message", `{"body":"a"}`) + "," + body("end", "") + "," + body("typing", "{}") + "]", "events[2].packet.name", "unknown event"},
		{"bad payload in list", "[" + body("message", `{"body":"a"}`) + "," + body("message", `{"text":"b"}`) + "]", "events[1].packet.payload.body", "required"},
		{"NUL in a message", body("message", `{"body":"a\u0000b"}`), "packet.payload.body", "NUL"},
		{"invalid UTF-8 in a list", "[" + body("message", `{"body":"a"}`) + "," + body("message", "{\"body\":\"\xff\"}") + "]", "events[1].packet.payload.body", "UTF-8"},
		{"trailing object", body("end", "") + `{}`, "", "not valid JSON"},
		{"mixed cids", "[" + body("end", "") + `,{"info":{"cid":"c2"},"packet":{"name":"end"}}]`, "events[1].info.cid", "same cid"},

		{"message without body", body("message", `{"text":"Hi"}`), "packet.payload.body", "required"},
		{"message without payload", body("message", ""), "packet.payload.body", "required"},
		{"message blank body", body("message", `{"body":"  \n "}`), "packet.payload.body", "required"},
		{"message body a number", body("message", `{"body":5}`), "packet.payload.body", "string"},
		{"message over 5000", body("message", `{"body":"`+strings.Repeat("a", MaxTextLength+1)+`"}`), "packet.payload.body", "at most 5000 characters, got 5001"},
		{"message text_format a number", body("message", `{"body":"a","text_format":1}`), "packet.payload.text_format", "string"},

		{"bubbles without fallback", body("bubbles", `{"body":"b","options":[{"label":"A"}]}`), "packet.payload.fallback", "required"},
		{"bubbles without body", body("bubbles", `{"fallback":"f","options":[{"label":"A"}]}`), "packet.payload.body", "required"},
		{"bubbles without options", body("bubbles", `{"body":"b","fallback":"f"}`), "packet.payload.options", "at least one"},
		{"bubbles empty options", body("bubbles", `{"body":"b","fallback":"f","options":[]}`), "packet.payload.options", "at least one"},
		{"bubbles options not a list", body("bubbles", `{"body":"b","fallback":"f","options":{}}`), "packet.payload.options", "list"},
		{"bubbles option without label", body("bubbles", `{"body":"b","fallback":"f","options":[{"label":"A"},{"value":"x"}]}`), "packet.payload.options[1].label", "required"},
		{"bubbles option a string", body("bubbles", `{"body":"b","fallback":"f","options":["A"]}`), "packet.payload.options[0]", "JSON object"},
		{"bubbles option value an object", body("bubbles", `{"body":"b","fallback":"f","options":[{"label":"A","value":{}}]}`), "packet.payload.options[0].value", "string or an integer"},
		{"bubbles option value a fraction", body("bubbles", `{"body":"b","fallback":"f","options":[{"label":"A","value":1.5}]}`), "packet.payload.options[0].value", "string or an integer"},
		{"carousel bad image", body("carousel", `{"fallback":"f","options":[{"label":"A","image_url":"ftp://x/y.png"}]}`), "packet.payload.options[0].image_url", "http(s) URL"},
		{"button_template four options", body("button_template", `{"body":"b","fallback":"f","options":[`+options(4, "")+`]}`), "packet.payload.options", "at most 3 options, got 4"},
		{"button_template header type", body("button_template", `{"header":{"type":"gif"},"body":"b","fallback":"f","options":[{"label":"A"}]}`), "packet.payload.header.type", "text, image, video or document"},
		{"button_template header without type", body("button_template", `{"header":{"text":"x"},"body":"b","fallback":"f","options":[{"label":"A"}]}`), "packet.payload.header.type", "required"},
		{"button_template image header without link", body("button_template", `{"header":{"type":"image"},"body":"b","fallback":"f","options":[{"label":"A"}]}`), "packet.payload.header.link", "required"},
		{"button_template text header without text", body("button_template", `{"header":{"type":"text"},"body":"b","fallback":"f","options":[{"label":"A"}]}`), "packet.payload.header.text", "required"},
		{"list_template eleven options", body("list_template", `{"body":"b","fallback":"f","options":[`+options(11, "")+`]}`), "packet.payload.options", "at most 10 options, got 11"},

		{"buttons without buttons", body("buttons", `{"body":"b"}`), "packet.payload.buttons", "at least one"},
		{"buttons without link", body("buttons", `{"buttons":[{"label":"A","link":"https://a.example"},{"label":"B"}]}`), "packet.payload.buttons[1].link", "required"},
		{"buttons relative link", body("buttons", `{"buttons":[{"label":"A","link":"/docs"}]}`), "packet.payload.buttons[0].link", "http(s) URL"},
		{"buttons without label", body("buttons", `{"buttons":[{"link":"https://a.example"}]}`), "packet.payload.buttons[0].label", "required"},
		{"button without link", body("button", `{"body":"b"}`), "packet.payload.link", "required"},

		{"media without link", body("media", `{"mime_type":"image/png"}`), "packet.payload.link", "required"},
		{"media javascript link", body("media", `{"link":"javascript:alert(1)"}`), "packet.payload.link", "http(s) URL"},
		{"media link too long", body("media", `{"link":"https://example.com/`+strings.Repeat("a", maxURL)+`"}`), "packet.payload.link", "at most 2000"},
		{"media bad mime type", body("media", `{"link":"https://example.com/a","mime_type":"png"}`), "packet.payload.mime_type", "image/png"},
		{"navigate without url", body("navigate", `{}`), "packet.payload.url", "required"},
		{"navigate link key", body("navigate", `{"link":"https://example.com"}`), "packet.payload.url", "required"},

		{"contact_update empty", body("contact_update", `{}`), "packet.payload", "at least one of name, email"},
		{"contact_update bad email", body("contact_update", `{"email":"Jane <jane@example.com>"}`), "packet.payload.email", "email address"},
		{"contact_update custom_fields a list", body("contact_update", `{"custom_fields":[1]}`), "packet.payload.custom_fields", "JSON object"},
		{"contact_update external id a bool", body("contact_update", `{"external_customer_id":true}`), "packet.payload.external_customer_id", "string or an integer"},
		{"conversation_update empty", body("conversation_update", `{"custom_fields":{}}`), "packet.payload", "at least one of subject"},
		{"conversation_update topics a string", body("conversation_update", `{"topics":"a"}`), "packet.payload.topics", "list"},
		{"conversation_update empty topic", body("conversation_update", `{"topics":["a",""]}`), "packet.payload.topics[1]", "empty"},
		{"note_create without body", body("note_create", `{"contact_identity_id":"1"}`), "packet.payload.body", "required"},

		{"delay without duration", body("delay", `{}`), "packet.payload.duration", "required"},
		{"delay zero", body("delay", `{"duration":0}`), "packet.payload.duration", "more than 0"},
		{"delay negative", body("delay", `{"duration":-1}`), "packet.payload.duration", "more than 0"},
		{"delay over a minute", body("delay", `{"duration":61}`), "packet.payload.duration", "at most 60 seconds"},
		{"delay in milliseconds", body("delay", `{"duration":2000}`), "packet.payload.duration", "at most 60 seconds"},
		{"delay a string", body("delay", `{"duration":"2s"}`), "packet.payload.duration", "number"},
		{"delay typing a string", body("delay", `{"duration":1,"typing_indicator":"yes"}`), "packet.payload.typing_indicator", "true or false"},

		{"forward_group without group", body("forward_group", `{}`), "packet.payload.group_id", "required"},
		{"forward_any bad on_failure", body("forward_any", `{"on_failure":"feeback"}`), "packet.payload.on_failure", "feedback or unassign"},
		{"forward_skills without skills", body("forward_skills", `{"skills":[]}`), "packet.payload.skills", "at least one"},
		{"forward_skills blank skill", body("forward_skills", `{"skills":["de"," "]}`), "packet.payload.skills[1]", "required"},
		{"addon_dispatch without type", body("addon_dispatch", `{}`), "packet.payload.type", "required"},
		{"email_dispatch without recipient", body("email_dispatch", `{}`), "packet.payload.recipient_type", "required"},
		{"email_dispatch bad recipient", body("email_dispatch", `{"recipient_type":"boss"}`), "packet.payload.recipient_type", "operator or contact"},
		{"email_dispatch contact with operator", body("email_dispatch", `{"recipient_type":"contact","operator_id":3}`), "packet.payload.operator_id", "only used"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEvents([]byte(tt.body))
			if err == nil {
				t.Fatalf("ParseEvents = %+v, want an error", got)
			}
			if got != nil {
				t.Errorf("events = %+v, want none with an error", got)
			}
			field, msg := invalidField(t, err)
			if field != tt.field {
				t.Errorf("field = %q, want %q (%v)", field, tt.field, err)
			}
			if !strings.Contains(msg, tt.msg) {
				t.Errorf("message = %q, want it to contain %q", msg, tt.msg)
			}
		})
	}
}

func TestParseEventsEmptyBodies(t *testing.T) {
	for _, b := range []string{"", "  \n", "null", "[]"} {
		got, err := ParseEvents([]byte(b))
		if err != nil {
			t.Errorf("ParseEvents(%q): %v", b, err)
		}
		if len(got) != 0 {
			t.Errorf("ParseEvents(%q) = %+v, want no events", b, got)
		}
	}
}

func TestParseEventsList(t *testing.T) {
	b := `[` + body("delay", `{"duration":2}`) + `,` + body("message", `{"body":"Hello"}`) + `,` +
		`{"info":{"cid":"c1","context":{"step":2}},"packet":{"name":"forward_any","payload":{"on_failure":"feedback"}}}]`
	got, err := ParseEvents([]byte(b))
	if err != nil {
		t.Fatal(err)
	}
	want := []Event{
		{Name: EventDelay, CID: "c1", Delay: &Delay{Duration: 2 * time.Second, Typing: true}},
		{Name: EventMessage, CID: "c1", Message: &Message{Body: "Hello"}},
		{Name: EventForwardAny, CID: "c1", Context: json.RawMessage(`{"step":2}`), Forward: &Forward{OnFailure: OnFailureFeedback}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if !got[2].Forward.Feedback() || (Forward{}).Feedback() {
		t.Error("Feedback() wrong")
	}
}

func TestEventNameKinds(t *testing.T) {
	shows := map[EventName]bool{EventMessage: true, EventBubbles: true, EventCarousel: true, EventButtonTemplate: true,
		EventListTemplate: true, EventButtons: true, EventButton: true, EventMedia: true, EventNavigate: true}
	ends := map[EventName]bool{EventAbort: true, EventEnd: true, EventForwardGroup: true, EventForwardSkills: true, EventForwardAny: true}
	for _, n := range EventNames {
		if n.ShowsCustomer() != shows[n] {
			t.Errorf("%s.ShowsCustomer() = %v", n, n.ShowsCustomer())
		}
		if n.EndsSession() != ends[n] {
			t.Errorf("%s.EndsSession() = %v", n, n.EndsSession())
		}
	}
}

// TestSeedEvents parses the events recorded from the seed.
func TestSeedEvents(t *testing.T) {
	const cid = "chatbot::258:a56785fb6fb84edd890905913b0c0821"
	tests := []struct {
		file string
		want []Event
	}{
		{"event_message.json", []Event{{Name: EventMessage, CID: cid, Message: &Message{Body: "Welcome!", TextFormat: TextFormatMarkdown}}}},
		{"python_start_reply.json", []Event{{Name: EventMessage, CID: cid, Context: json.RawMessage(`{"state":"name"}`),
			Message: &Message{Body: "Welcome! I am a Bot. What is your name?"}}}},
		{"python_name_reply.json", []Event{
			{Name: EventContactUpdate, CID: cid, ContactUpdate: &ContactUpdate{Name: "Jane Doe"}},
			{Name: EventMessage, CID: cid, Context: json.RawMessage(`{"state":"email"}`), Message: &Message{Body: "Hello Jane Doe! Could you tell me your email as well?"}},
		}},
		{"python_email_reply.json", []Event{
			{Name: EventContactUpdate, CID: cid, ContactUpdate: &ContactUpdate{Email: "jane@example.com"}},
			{Name: EventMessage, CID: cid, Message: &Message{Body: "Thanks! I'll forward you to a human now..."}},
			{Name: EventForwardAny, CID: cid, Forward: &Forward{}},
		}},
		{"python_returning_reply.json", []Event{{Name: EventForwardAny, CID: cid, Forward: &Forward{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseEvents(readSeed(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOffsets(t *testing.T) {
	events, err := ParseEvents([]byte(`[` +
		body("message", `{"body":"one"}`) + `,` +
		body("delay", `{"duration":2}`) + `,` +
		body("message", `{"body":"two"}`) + `,` +
		body("delay", `{"duration":0.5,"typing_indicator":false}`) + `,` +
		body("bubbles", `{"body":"three","fallback":"f","options":[{"label":"A"}]}`) + `,` +
		body("end", "") + `]`))
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{0, 0, 2 * time.Second, 2 * time.Second, 2500 * time.Millisecond, 2500 * time.Millisecond}
	if diff := cmp.Diff(want, Offsets(events)); diff != "" {
		t.Errorf("offsets (-want +got):\n%s", diff)
	}
	if got := Offsets(nil); len(got) != 0 {
		t.Errorf("Offsets(nil) = %v", got)
	}
	// A trailing delay delays nothing; a delay first delays everything.
	first, _ := ParseEvents([]byte(`[` + body("delay", `{"duration":1}`) + `,` + body("message", `{"body":"x"}`) + `]`))
	if diff := cmp.Diff([]time.Duration{0, time.Second}, Offsets(first)); diff != "" {
		t.Errorf("offsets (-want +got):\n%s", diff)
	}
}
