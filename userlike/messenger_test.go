package userlike

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// opts makes n options whose labels have the given length in characters.
func opts(n, labelLen int) []Option {
	var out []Option
	for i := range n {
		label := fmt.Sprintf("%d", i+1)
		label += strings.Repeat("ä", max(labelLen-len(label), 0))
		out = append(out, Option{Label: label, Value: fmt.Sprintf("v%d", i+1)})
	}
	return out
}

// pb is the postback payload of an option.
func pb(label, value string) string {
	return PostbackPrefix + `{"label":"` + label + `","value":"` + value + `"}`
}

// messengerJSON marshals ToMessenger's messages the way the Send API gets
// them, for comparison with expected JSON.
func messengerJSON(t *testing.T, msgs []map[string]any) any {
	t.Helper()
	if msgs == nil {
		return nil
	}
	b, err := json.Marshal(msgs)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, b)
}

func TestToMessengerChoices(t *testing.T) {
	bubbles := func(o []Option) Event {
		return Event{Name: EventBubbles, CID: "c", Choice: &Choice{Body: "Pick", Fallback: "Answer with a number:", Options: o}}
	}
	numbered := func(o []Option) string {
		lines := []string{"Answer with a number:"}
		for i, x := range o {
			lines = append(lines, fmt.Sprintf("%d. %s", i+1, x.Label))
		}
		b, _ := json.Marshal([]map[string]string{{"text": strings.Join(lines, "\n")}})
		return string(b)
	}
	quick := func(text string, o []Option) string {
		var qr []map[string]string
		for _, x := range o {
			qr = append(qr, map[string]string{"content_type": "text", "title": x.Label, "payload": pb(x.Label, x.Value)})
		}
		b, _ := json.Marshal([]map[string]any{{"text": text, "quick_replies": qr}})
		return string(b)
	}
	buttons := func(text string, o []Option) string {
		var bs []map[string]string
		for _, x := range o {
			bs = append(bs, map[string]string{"type": "postback", "title": x.Label, "payload": pb(x.Label, x.Value)})
		}
		b, _ := json.Marshal([]map[string]any{{"attachment": map[string]any{"type": "template", "payload": map[string]any{
			"template_type": "button", "text": text, "buttons": bs}}}})
		return string(b)
	}
	long641 := strings.Repeat("x", 641)
	tests := []struct {
		name    string
		ev      Event
		want    string // the messages as JSON
		pending bool
	}{
		{"1 option: button template", bubbles(opts(1, 5)), buttons("Pick", opts(1, 5)), false},
		{"3 options: button template", bubbles(opts(3, 5)), buttons("Pick", opts(3, 5)), false},
		{"4 options: quick replies", bubbles(opts(4, 5)), quick("Pick", opts(4, 5)), false},
		{"13 options: quick replies", bubbles(opts(13, 5)), quick("Pick", opts(13, 5)), false},
		{"14 options: numbered text", bubbles(opts(14, 5)), numbered(opts(14, 5)), true},
		{"20 characters: button template", bubbles(opts(3, 20)), buttons("Pick", opts(3, 20)), false},
		{"21 characters with 3 options: numbered text", bubbles(opts(3, 21)), numbered(opts(3, 21)), true},
		{"20 characters with 13 options: quick replies", bubbles(opts(13, 20)), quick("Pick", opts(13, 20)), false},
		{"21 characters with 13 options: numbered text", bubbles(opts(13, 21)), numbered(opts(13, 21)), true},
		{"one long label spoils all", bubbles(append(opts(2, 5), Option{Label: strings.Repeat("l", 21)})), numbered(append(opts(2, 5), Option{Label: strings.Repeat("l", 21)})), true},
		{"text over 640: quick replies", Event{Name: EventBubbles, Choice: &Choice{Body: long641, Fallback: "Answer with a number:", Options: opts(2, 5)}},
			quick(long641, opts(2, 5)), false},
		{"text over 2000: numbered text", Event{Name: EventBubbles, Choice: &Choice{Body: strings.Repeat("x", 2001), Fallback: "Answer with a number:", Options: opts(2, 5)}},
			numbered(opts(2, 5)), true},
		{"payload over 1000 bytes: numbered text", bubbles([]Option{{Label: "Big", Value: strings.Repeat("v", 980)}}),
			numbered([]Option{{Label: "Big"}}), true},
		{"value defaults to label", bubbles([]Option{{Label: "Yes"}, {Label: "No"}}),
			`[{"attachment":{"type":"template","payload":{"template_type":"button","text":"Pick","buttons":[
				{"type":"postback","title":"Yes","payload":"relay:{\"label\":\"Yes\",\"value\":\"Yes\"}"},
				{"type":"postback","title":"No","payload":"relay:{\"label\":\"No\",\"value\":\"No\"}"}]}}}]`, false},
		{"button_template with image header and footer", Event{Name: EventButtonTemplate, Choice: &Choice{
			Header: &Header{Type: HeaderImage, Link: "https://example.com/h.jpg"}, Body: "Your order", Footer: "Shop Inc.",
			Fallback: "f", Options: []Option{{Label: "Track", Value: "t"}}}},
			`[{"attachment":{"type":"image","payload":{"url":"https://example.com/h.jpg"}}},
			  {"attachment":{"type":"template","payload":{"template_type":"button","text":"Your order\nShop Inc.","buttons":[
				{"type":"postback","title":"Track","payload":"relay:{\"label\":\"Track\",\"value\":\"t\"}"}]}}}]`, false},
		{"button_template text header is dropped", Event{Name: EventButtonTemplate, Choice: &Choice{
			Header: &Header{Type: HeaderText, Text: "Order 42"}, Body: "b", Fallback: "f", Options: []Option{{Label: "A", Value: "a"}}}},
			buttons("b", []Option{{Label: "A", Value: "a"}}), false},
		{"button_template over limits keeps image", Event{Name: EventButtonTemplate, Choice: &Choice{
			Header: &Header{Type: HeaderImage, Link: "https://example.com/h.jpg"}, Body: "b", Fallback: "Choose:",
			Options: []Option{{Label: strings.Repeat("w", 25)}}}},
			`[{"attachment":{"type":"image","payload":{"url":"https://example.com/h.jpg"}}},{"text":"Choose:\n1. ` + strings.Repeat("w", 25) + `"}]`, true},
		{"list_template with 2 options: quick replies, no header or footer", Event{Name: EventListTemplate, Choice: &Choice{
			Header: &Header{Type: HeaderText, Text: "Menu"}, Body: "What would you like?", Footer: "ft", Button: "Open", Fallback: "f",
			Options: []Option{{Label: "Pizza", Value: "p", Description: "Hot"}, {Label: "Salad", Value: "s"}}}},
			quick("What would you like?", []Option{{Label: "Pizza", Value: "p"}, {Label: "Salad", Value: "s"}}), false},
		{"list_template over limits: numbered with descriptions", Event{Name: EventListTemplate, Choice: &Choice{
			Body: "b", Fallback: "Reply with a number:", Options: []Option{{Label: "A very long pizza name indeed", Description: "Hot"}, {Label: "Salad"}}}},
			`[{"text":"Reply with a number:\n1. A very long pizza name indeed: Hot\n2. Salad"}]`, true},
		{"carousel: numbered with image links", Event{Name: EventCarousel, Choice: &Choice{Body: "ignored", Fallback: "Which colour?",
			Options: []Option{{Label: "Red", Value: "r", ImageURL: "https://example.com/r.png"}, {Label: "Blue", Value: "b"}}}},
			`[{"text":"Which colour?\n1. Red: https://example.com/r.png\n2. Blue"}]`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, pending, err := ToMessenger(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(decode(t, []byte(tt.want)), messengerJSON(t, msgs)); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			if (pending != nil) != tt.pending {
				t.Fatalf("pending = %+v, want pending %v", pending, tt.pending)
			}
			if pending != nil {
				if diff := cmp.Diff(tt.ev.Choice.Options, pending.Options); diff != "" {
					t.Errorf("pending options (-want +got):\n%s", diff)
				}
			}
			// Every tap maps back to the bot's option.
			for _, m := range msgs {
				for _, p := range payloads(m) {
					click, ok := ParsePostback(p)
					if !ok {
						t.Errorf("ParsePostback(%q) failed", p)
						continue
					}
					var c ClickPayload
					_ = json.Unmarshal(click.Payload, &c)
					found := false
					for _, o := range tt.ev.Choice.Options {
						if c.Label == o.Label && c.Value == o.value() {
							found = true
						}
					}
					if click.Name != PacketClick || !found {
						t.Errorf("ParsePostback(%q) = %s %s, not one of the options", p, click.Name, click.Payload)
					}
				}
			}
		})
	}
}

// payloads returns the postback and quick reply payloads of a message.
func payloads(m map[string]any) []string {
	var out []string
	for _, q := range asSlice(m["quick_replies"]) {
		out = append(out, q["payload"].(string))
	}
	if a, ok := m["attachment"].(map[string]any); ok {
		if p, ok := a["payload"].(map[string]any); ok {
			for _, b := range asSlice(p["buttons"]) {
				if s, ok := b["payload"].(string); ok {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

func asSlice(v any) []map[string]any {
	s, _ := v.([]map[string]any)
	return s
}

func TestToMessengerOther(t *testing.T) {
	long := strings.Repeat("word ", 900) // 4,500 characters
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{"message", Event{Name: EventMessage, Message: &Message{Body: "Hello!"}}, `[{"text":"Hello!"}]`},
		{"message markdown", Event{Name: EventMessage, Message: &Message{Body: "**Hi** see [docs](https://x.example/d)", TextFormat: TextFormatMarkdown}},
			`[{"text":"*Hi* see docs (https://x.example/d)"}]`},
		{"message markdown only with markdown_v1", Event{Name: EventMessage, Message: &Message{Body: "**Hi**"}}, `[{"text":"**Hi**"}]`},
		{"message split", Event{Name: EventMessage, Message: &Message{Body: long}},
			fmt.Sprintf(`[{"text":%q},{"text":%q},{"text":%q}]`, strings.Repeat("word ", 399)+"word", strings.Repeat("word ", 399)+"word", strings.Repeat("word ", 100))},
		{"media image by mime type", Event{Name: EventMedia, Media: &Media{Link: "https://x.example/a", MimeType: "image/png"}},
			`[{"attachment":{"type":"image","payload":{"url":"https://x.example/a"}}}]`},
		{"media video by extension", Event{Name: EventMedia, Media: &Media{Link: "https://x.example/a.mp4?sig=1"}},
			`[{"attachment":{"type":"video","payload":{"url":"https://x.example/a.mp4?sig=1"}}}]`},
		{"media audio by mime type", Event{Name: EventMedia, Media: &Media{Link: "https://x.example/a", MimeType: "Audio/OGG"}},
			`[{"attachment":{"type":"audio","payload":{"url":"https://x.example/a"}}}]`},
		{"media file", Event{Name: EventMedia, Media: &Media{Link: "https://x.example/a.pdf", MimeType: "application/pdf"}},
			`[{"attachment":{"type":"file","payload":{"url":"https://x.example/a.pdf"}}}]`},
		{"media unknown", Event{Name: EventMedia, Media: &Media{Link: "https://x.example/blob"}},
			`[{"attachment":{"type":"file","payload":{"url":"https://x.example/blob"}}}]`},
		{"buttons as template", Event{Name: EventButtons, Buttons: &Buttons{Body: "Read more", Buttons: []LinkButton{{Label: "Docs", Link: "https://x.example/d"}}}},
			`[{"attachment":{"type":"template","payload":{"template_type":"button","text":"Read more","buttons":[{"type":"web_url","url":"https://x.example/d","title":"Docs"}]}}}]`},
		{"buttons over 3 as text", Event{Name: EventButtons, Buttons: &Buttons{Body: "Links", Buttons: []LinkButton{
			{Label: "A", Link: "https://a.example"}, {Label: "B", Link: "https://b.example"}, {Label: "C", Link: "https://c.example"}, {Label: "D", Link: "https://d.example"}}}},
			`[{"text":"Links\nA: https://a.example\nB: https://b.example\nC: https://c.example\nD: https://d.example"}]`},
		{"buttons without body as text", Event{Name: EventButton, Buttons: &Buttons{Buttons: []LinkButton{{Label: "https://a.example", Link: "https://a.example"}}}},
			`[{"text":"https://a.example"}]`},
		{"buttons with a long label as text", Event{Name: EventButtons, Buttons: &Buttons{Body: "See", Buttons: []LinkButton{{Label: "The complete documentation", Link: "https://a.example"}}}},
			`[{"text":"See\nThe complete documentation: https://a.example"}]`},
		{"navigate", Event{Name: EventNavigate, Navigate: &Navigate{URL: "https://www.example.com/checkout?x=1"}},
			`[{"attachment":{"type":"template","payload":{"template_type":"button","text":"https://www.example.com/checkout?x=1","buttons":[{"type":"web_url","url":"https://www.example.com/checkout?x=1","title":"example.com"}]}}}]`},
		{"navigate long host", Event{Name: EventNavigate, Navigate: &Navigate{URL: "https://shop.very-long-hostname.example/"}},
			`[{"attachment":{"type":"template","payload":{"template_type":"button","text":"https://shop.very-long-hostname.example/","buttons":[{"type":"web_url","url":"https://shop.very-long-hostname.example/","title":"shop.very-long-host…"}]}}}]`},
		{"navigate very long URL as text", Event{Name: EventNavigate, Navigate: &Navigate{URL: "https://x.example/" + strings.Repeat("p", 700)}},
			`[{"text":"https://x.example/` + strings.Repeat("p", 700) + `"}]`},
	}
	for _, name := range EventNames {
		if !name.ShowsCustomer() {
			tests = append(tests, struct {
				name string
				ev   Event
				want string
			}{string(name) + " sends nothing", Event{Name: name}, "null"})
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, pending, err := ToMessenger(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if pending != nil {
				t.Errorf("pending = %+v", pending)
			}
			if diff := cmp.Diff(decode(t, []byte(tt.want)), messengerJSON(t, msgs)); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
		})
	}
}

func TestToMessengerErrors(t *testing.T) {
	for _, ev := range []Event{{Name: "dance"}, {Name: EventMessage}, {Name: EventBubbles}, {Name: EventButtons}, {Name: EventMedia}, {Name: EventNavigate}} {
		if _, _, err := ToMessenger(ev); err == nil {
			t.Errorf("ToMessenger(%+v) succeeded", ev)
		}
	}
}

// TestToMessengerParsed runs parsed events through ToMessenger, end to end.
func TestToMessengerParsed(t *testing.T) {
	events, err := ParseEvents([]byte(`[` +
		body("message", `{"body":"Welcome!"}`) + `,` +
		body("bubbles", `{"body":"How can I help?","fallback":"Please answer with a number:","options":[{"label":"Delivery status","value":"delivery"},{"label":"Returns","value":"returns"}]}`) + `]`))
	if err != nil {
		t.Fatal(err)
	}
	var all []map[string]any
	for _, ev := range events {
		msgs, _, err := ToMessenger(ev)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, msgs...)
	}
	want := `[{"text":"Welcome!"},{"attachment":{"type":"template","payload":{"template_type":"button","text":"How can I help?","buttons":[
		{"type":"postback","title":"Delivery status","payload":"relay:{\"label\":\"Delivery status\",\"value\":\"delivery\"}"},
		{"type":"postback","title":"Returns","payload":"relay:{\"label\":\"Returns\",\"value\":\"returns\"}"}]}}}]`
	if diff := cmp.Diff(decode(t, []byte(want)), messengerJSON(t, all)); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}

func TestPendingChoiceAnswer(t *testing.T) {
	p := PendingChoice{Options: []Option{{Label: "Red", Value: "r"}, {Label: "Green"}, {Label: "Blue", Value: "b"}}}
	tests := []struct {
		text string
		want string // the click's payload, "" for no click
	}{
		{"1", `{"label":"Red","value":"r"}`},
		{"2", `{"label":"Green","value":"Green"}`},
		{"3", `{"label":"Blue","value":"b"}`},
		{"  3\n", `{"label":"Blue","value":"b"}`},
		{"03", `{"label":"Blue","value":"b"}`},
		{"0", ""},
		{"4", ""},
		{"-1", ""},
		{"+1", ""},
		{"1.", ""},
		{"1 2", ""},
		{"1,5", ""},
		{"one", ""},
		{"Red", ""},
		{"", ""},
		{"   ", ""},
		{"١", ""}, // an Arabic-Indic digit one
		{"１", ""}, // a fullwidth digit one
		{"99999999999999999999", ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.text), func(t *testing.T) {
			click, ok := p.Answer(tt.text)
			if ok != (tt.want != "") {
				t.Fatalf("ok = %v, click %+v", ok, click)
			}
			if !ok {
				return
			}
			if click.Name != PacketClick {
				t.Errorf("name = %q", click.Name)
			}
			if diff := cmp.Diff(decode(t, []byte(tt.want)), decode(t, click.Payload)); diff != "" {
				t.Errorf("payload (-want +got):\n%s", diff)
			}
		})
	}
	if _, ok := (PendingChoice{}).Answer("1"); ok {
		t.Error("an empty choice answered")
	}
}

// TestTextPacketSession plays the seed's rule: only an immediate valid number
// is a click; once the customer wrote something else, a number is a message.
func TestTextPacketSession(t *testing.T) {
	_, pending, err := ToMessenger(Event{Name: EventCarousel, Choice: &Choice{Fallback: "Which?", Options: []Option{{Label: "A", Value: "a"}, {Label: "B", Value: "b"}}}})
	if err != nil || pending == nil {
		t.Fatalf("no pending choice: %v", err)
	}
	// The runtime stores the pending choice as JSON between messages.
	stored, _ := json.Marshal(pending)

	type step struct {
		text string
		want Packet
	}
	sessions := map[string][]step{
		"immediate answer": {{"2", ClickPacket(Option{Label: "B", Value: "b"})}, {"1", MessagePacket("1")}},
		"out of range":     {{"3", MessagePacket("3")}, {"1", MessagePacket("1")}},
		"after a message":  {{"hmm, not sure", MessagePacket("hmm, not sure")}, {"1", MessagePacket("1")}},
	}
	for name, steps := range sessions {
		t.Run(name, func(t *testing.T) {
			var p *PendingChoice
			if err := json.Unmarshal(stored, &p); err != nil {
				t.Fatal(err)
			}
			for i, s := range steps {
				got := TextPacket(p, s.text)
				p = nil // used up by every customer message
				if diff := cmp.Diff(s.want, got); diff != "" {
					t.Errorf("message %d %q (-want +got):\n%s", i, s.text, diff)
				}
			}
		})
	}
}

func TestParsePostback(t *testing.T) {
	tests := []struct {
		payload string
		want    string // click payload, "" for not ours
	}{
		{pb("Returns", "returns"), `{"label":"Returns","value":"returns"}`},
		{PostbackPrefix + `{"label":"Ünïcödé ✓","value":"ü"}`, `{"label":"Ünïcödé ✓","value":"ü"}`},
		{PostbackPrefix + `{"value":"v"}`, `{"label":"","value":"v"}`},
		{"GET_STARTED", ""},
		{"relay:", ""},
		{"relay:returns", ""},
		{PostbackPrefix + `{}`, ""},
		{PostbackPrefix + `[1]`, ""},
		{"other:" + `{"label":"a","value":"b"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.payload, func(t *testing.T) {
			got, ok := ParsePostback(tt.payload)
			if ok != (tt.want != "") {
				t.Fatalf("ok = %v, got %+v", ok, got)
			}
			if !ok {
				return
			}
			if got.Name != PacketClick {
				t.Errorf("name = %q", got.Name)
			}
			if diff := cmp.Diff(decode(t, []byte(tt.want)), decode(t, got.Payload)); diff != "" {
				t.Errorf("payload (-want +got):\n%s", diff)
			}
		})
	}
	// A label or value with characters JSON escapes survives the round trip.
	o := Option{Label: `say "hi" \ <b>`, Value: "a\nb"}
	got, ok := ParsePostback(postbackPayload(o))
	if !ok || cmp.Diff(ClickPacket(o), got) != "" {
		t.Errorf("round trip: %v %s", ok, got.Payload)
	}
}

func TestSplitText(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		limit int
		want  []string
	}{
		{"empty", "", 10, nil},
		{"blank", " \n ", 10, nil},
		{"short", "hello", 10, []string{"hello"}},
		{"exactly the limit", "0123456789", 10, []string{"0123456789"}},
		{"one over, at a space", "01234 6789a", 10, []string{"01234", "6789a"}},
		{"space right at the limit", "0123456789 abc", 10, []string{"0123456789", "abc"}},
		{"last space wins", "aa bb cc dd ee", 10, []string{"aa bb cc", "dd ee"}},
		{"runs of spaces dropped", "aaaa    bbbb   cccc", 10, []string{"aaaa", "bbbb", "cccc"}},
		{"no space: hard cut", "abcdefghijklmnopqrstuvwxy", 10, []string{"abcdefghij", "klmnopqrst", "uvwxy"}},
		{"line break in the second half preferred", "aaa bbb\nccc ddd eee", 10, []string{"aaa bbb", "ccc ddd", "eee"}},
		{"line break too early: last space", "a\nbbb ccc dd eee", 10, []string{"a\nbbb ccc", "dd eee"}},
		{"characters, not bytes", "ääää ööö üüü", 8, []string{"ääää ööö", "üüü"}},
		{"emoji count as one", "😀😀😀😀😀 😀", 5, []string{"😀😀😀😀😀", "😀"}},
		{"leading space kept", "  ab", 10, []string{"  ab"}},
		{"no limit", "abc def", 0, []string{"abc def"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SplitText(tt.text, tt.limit)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("SplitText (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSplitTextMessenger checks the 2,000-character limit on a long mixed
// text: no piece over the limit, no word cut, nothing lost.
func TestSplitTextMessenger(t *testing.T) {
	var b strings.Builder
	for i := range 1500 {
		fmt.Fprintf(&b, "wörd%d ", i)
		if i%37 == 0 {
			b.WriteString("\n")
		}
	}
	text := b.String()
	pieces := SplitText(text, MessengerTextLimit)
	if len(pieces) < 5 {
		t.Fatalf("%d pieces", len(pieces))
	}
	for i, p := range pieces {
		if n := len([]rune(p)); n > MessengerTextLimit {
			t.Errorf("piece %d has %d characters", i, n)
		}
	}
	if diff := cmp.Diff(strings.Fields(text), strings.Fields(strings.Join(pieces, " "))); diff != "" {
		t.Errorf("words differ (-text +pieces):\n%s", diff)
	}
}

func TestRenderMarkdown(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"**bold** and __bold__", "*bold* and *bold*"},
		{"*italic* text", "_italic_ text"},
		{"_italic_ stays", "_italic_ stays"},
		{"~~gone~~", "~gone~"},
		{"[our shop](https://shop.example)", "our shop (https://shop.example)"},
		{"[https://shop.example](https://shop.example)", "https://shop.example"},
		{"**bold** then *italic*", "*bold* then _italic_"},
		{"2 * 3 * 4", "2 * 3 * 4"},
		{"* item one\n* item two", "* item one\n* item two"},
		{"snake_case_name", "snake_case_name"},
		{"**snake_case**", "*snake_case*"},
	}
	for _, tt := range tests {
		if got := RenderMarkdown(tt.in); got != tt.want {
			t.Errorf("RenderMarkdown(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
