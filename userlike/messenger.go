package userlike

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/handoverd/handoverd/apperr"
)

// Messenger's limits on what a Page sends.
const (
	// MessengerTextLimit is the most characters in one Messenger text message.
	MessengerTextLimit = 2000
	// buttonTextLimit is the most characters in a button template's text.
	buttonTextLimit = 640
	// titleLimit is the most characters in a button or quick reply title
	// (the seed: "Facebook also only allows up to 20 characters").
	titleLimit = 20
	// maxTemplateButtons is the most buttons in a button template; the seed
	// uses a button template for "three or less options".
	maxTemplateButtons = 3
	// maxQuickReplies is the most quick replies (the seed: "up to 13").
	maxQuickReplies = 13
	// payloadLimit is the most bytes in a postback or quick reply payload.
	payloadLimit = 1000
)

// PostbackPrefix starts every postback and quick reply payload ToMessenger
// makes, so the runtime can tell relay taps from other postbacks.
const PostbackPrefix = "relay:"

// PendingChoice is a choice sent as numbered text: the options awaiting the
// customer's numeric answer. The runtime keeps it for the conversation until
// the customer's next message, which it passes to Answer, and then drops it
// whatever the answer was: per the seed only an immediate valid number counts
// as a click. A later choice replaces an earlier one. It marshals to JSON
// for storage.
type PendingChoice struct {
	// Options are the options in the order they were numbered, from 1.
	Options []Option `json:"options"`
}

// Answer turns the customer's text into a click when it is, after trimming
// white space, a number from 1 to the number of options (ASCII digits only).
// ok is false for anything else, which the runtime sends on as a normal
// message.
func (p PendingChoice) Answer(text string) (click Packet, ok bool) {
	s := strings.TrimSpace(text)
	if s == "" || len(s) > 9 || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return Packet{}, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > len(p.Options) {
		return Packet{}, false
	}
	return ClickPacket(p.Options[n-1]), true
}

// TextPacket is the packet for a text the customer wrote, given the
// conversation's pending choice (nil when none): a click when the text
// answers it, else a message. Either way the pending choice is used up, so
// the caller drops it: a number sent after another message is just a
// message.
func TextPacket(pending *PendingChoice, text string) Packet {
	if pending != nil {
		if click, ok := pending.Answer(text); ok {
			return click
		}
	}
	return MessagePacket(text)
}

// ParsePostback turns the payload of a postback or quick reply that
// ToMessenger made back into the click packet for the bot's option. ok is
// false for payloads it did not make. Whether a tap still counts as a click
// is the runtime's call (the seed: only the first tap on a choice, and only
// while the session lasts); ClickAsMessage gives the message otherwise.
func ParsePostback(payload string) (Packet, bool) {
	rest, found := strings.CutPrefix(payload, PostbackPrefix)
	if !found {
		return Packet{}, false
	}
	var c ClickPayload
	if err := json.Unmarshal([]byte(rest), &c); err != nil || (c.Label == "" && c.Value == "") {
		return Packet{}, false
	}
	return packet(PacketClick, c), true
}

// postbackPayload encodes an option for a postback or quick reply.
func postbackPayload(o Option) string {
	b, _ := json.Marshal(ClickPayload{Label: o.Label, Value: o.value()})
	return PostbackPrefix + string(b)
}

// ToMessenger converts an event into the Send API message objects (the
// SendRequest.Message of each call, in order) that show it on Messenger.
// Events that show the customer nothing (contact_update, delay, forwards,
// ...) give none. A choice that falls back to numbered text also gives the
// PendingChoice to keep; otherwise pending is nil.
//
// Choice messages follow the seed's Facebook rules: bubbles and
// button_template with at most 3 options become a button template, with at
// most 13 a text with quick replies, each option title having at most 20
// characters; list_template becomes quick replies under the same limits
// (without header and footer); carousels and everything over the limits
// become the fallback text with a numbered list ("1. …\n2. …"), carousel
// options followed by their image link. A text too long for a button
// template (640 characters) uses quick replies; a text over 2,000 characters
// is split into several messages on word boundaries.
func ToMessenger(ev Event) (messages []map[string]any, pending *PendingChoice, err error) {
	missing := func() error {
		return apperr.New(apperr.Invalid, "%s event without its payload", ev.Name)
	}
	switch ev.Name {
	case EventMessage:
		if ev.Message == nil {
			return nil, nil, missing()
		}
		body := ev.Message.Body
		if ev.Message.TextFormat == TextFormatMarkdown {
			body = RenderMarkdown(body)
		}
		return textMessages(body), nil, nil
	case EventBubbles, EventCarousel, EventButtonTemplate, EventListTemplate:
		if ev.Choice == nil {
			return nil, nil, missing()
		}
		m, p := choiceMessages(ev.Name, *ev.Choice)
		return m, p, nil
	case EventButtons, EventButton:
		if ev.Buttons == nil {
			return nil, nil, missing()
		}
		return buttonsMessages(*ev.Buttons), nil, nil
	case EventMedia:
		if ev.Media == nil {
			return nil, nil, missing()
		}
		return []map[string]any{attachment(mediaType(*ev.Media), ev.Media.Link)}, nil, nil
	case EventNavigate:
		if ev.Navigate == nil {
			return nil, nil, missing()
		}
		u := ev.Navigate.URL
		if utf8.RuneCountInString(u) > buttonTextLimit {
			return textMessages(u), nil, nil
		}
		return []map[string]any{buttonTemplate(u, []map[string]any{webURLButton(linkTitle(u), u)})}, nil, nil
	}
	if !slices.Contains(EventNames, ev.Name) {
		return nil, nil, apperr.Field("packet.name", "unknown event %q", ev.Name)
	}
	return nil, nil, nil
}

// choiceMessages converts a choice message.
func choiceMessages(name EventName, c Choice) ([]map[string]any, *PendingChoice) {
	var out []map[string]any
	text := c.Body
	if name == EventButtonTemplate {
		// Facebook supports only image headers; the footer goes under the body.
		if c.Header != nil && c.Header.Type == HeaderImage && c.Header.Link != "" {
			out = append(out, attachment("image", c.Header.Link))
		}
		if c.Footer != "" {
			text += "\n" + c.Footer
		}
	}
	clickable := name != EventCarousel && !isBlank(text) && len(c.Options) > 0
	for _, o := range c.Options {
		if utf8.RuneCountInString(o.Label) > titleLimit || isBlank(o.Label) || len(postbackPayload(o)) > payloadLimit {
			clickable = false
		}
	}
	n, chars := len(c.Options), utf8.RuneCountInString(text)
	switch {
	case clickable && name != EventListTemplate && n <= maxTemplateButtons && chars <= buttonTextLimit:
		buttons := make([]map[string]any, 0, n)
		for _, o := range c.Options {
			buttons = append(buttons, map[string]any{"type": "postback", "title": o.Label, "payload": postbackPayload(o)})
		}
		return append(out, buttonTemplate(text, buttons)), nil
	case clickable && n <= maxQuickReplies && chars <= MessengerTextLimit:
		replies := make([]map[string]any, 0, n)
		for _, o := range c.Options {
			replies = append(replies, map[string]any{"content_type": "text", "title": o.Label, "payload": postbackPayload(o)})
		}
		return append(out, map[string]any{"text": text, "quick_replies": replies}), nil
	}
	var b strings.Builder
	b.WriteString(c.Fallback)
	for i, o := range c.Options {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%d. %s", i+1, o.Label)
		if o.Description != "" {
			b.WriteString(": " + o.Description)
		}
		if name == EventCarousel && o.ImageURL != "" {
			b.WriteString(": " + o.ImageURL)
		}
	}
	return append(out, textMessages(b.String())...), &PendingChoice{Options: slices.Clone(c.Options)}
}

// buttonsMessages converts URL buttons: a button template when they fit,
// otherwise the text with one "label: link" line per button.
func buttonsMessages(bs Buttons) []map[string]any {
	fits := len(bs.Buttons) > 0 && len(bs.Buttons) <= maxTemplateButtons && !isBlank(bs.Body) &&
		utf8.RuneCountInString(bs.Body) <= buttonTextLimit
	for _, b := range bs.Buttons {
		if isBlank(b.Label) || utf8.RuneCountInString(b.Label) > titleLimit {
			fits = false
		}
	}
	if fits {
		buttons := make([]map[string]any, 0, len(bs.Buttons))
		for _, b := range bs.Buttons {
			buttons = append(buttons, webURLButton(b.Label, b.Link))
		}
		return []map[string]any{buttonTemplate(bs.Body, buttons)}
	}
	lines := []string{}
	if !isBlank(bs.Body) {
		lines = append(lines, bs.Body)
	}
	for _, b := range bs.Buttons {
		if b.Label == "" || b.Label == b.Link {
			lines = append(lines, b.Link)
		} else {
			lines = append(lines, b.Label+": "+b.Link)
		}
	}
	return textMessages(strings.Join(lines, "\n"))
}

// textMessages splits text into text messages.
func textMessages(text string) []map[string]any {
	var out []map[string]any
	for _, s := range SplitText(text, MessengerTextLimit) {
		out = append(out, map[string]any{"text": s})
	}
	return out
}

// buttonTemplate is a button template message.
func buttonTemplate(text string, buttons []map[string]any) map[string]any {
	return map[string]any{"attachment": map[string]any{"type": "template", "payload": map[string]any{
		"template_type": "button", "text": text, "buttons": buttons}}}
}

// webURLButton is a button that opens url.
func webURLButton(title, url string) map[string]any {
	return map[string]any{"type": "web_url", "url": url, "title": title}
}

// attachment is a media message by URL.
func attachment(typ, url string) map[string]any {
	return map[string]any{"attachment": map[string]any{"type": typ, "payload": map[string]any{"url": url}}}
}

// mediaType picks the Messenger attachment type (image, video, audio or
// file) from the MIME type, or else from the link's extension.
func mediaType(m Media) string {
	mt := m.MimeType
	if mt == "" {
		mt = mimeFromURL(m.Link)
	}
	for _, t := range []string{"image", "video", "audio"} {
		if strings.HasPrefix(strings.ToLower(mt), t+"/") {
			return t
		}
	}
	return "file"
}

// linkTitle is a button title for a URL: its host without "www.", cut to
// the title limit.
func linkTitle(link string) string {
	host := link
	if u, err := url.Parse(link); err == nil && u.Host != "" {
		host = strings.TrimPrefix(u.Hostname(), "www.")
	}
	if utf8.RuneCountInString(host) > titleLimit {
		host = string([]rune(host)[:titleLimit-1]) + "…"
	}
	return host
}

// isSpace reports whether r is white space.
func isSpace(r rune) bool { return unicode.IsSpace(r) }

// SplitText splits text into pieces of at most limit characters, cutting at
// white space: at a line break in the second half of a piece if there is
// one, else at the last space, and only inside a word that is longer than a
// whole piece. White space at a cut is dropped; blank text gives none.
func SplitText(text string, limit int) []string {
	if isBlank(text) {
		return nil
	}
	if limit <= 0 || utf8.RuneCountInString(text) <= limit {
		return []string{text}
	}
	var out []string
	r := []rune(text)
	for len(r) > limit {
		cut := -1
		for i := limit; i > limit/2; i-- {
			if r[i] == '\n' {
				cut = i
				break
			}
		}
		for i := limit; cut < 0 && i > 0; i-- {
			if isSpace(r[i]) {
				cut = i
			}
		}
		if cut < 0 {
			cut = limit
		}
		if chunk := strings.TrimRightFunc(string(r[:cut]), isSpace); chunk != "" {
			out = append(out, chunk)
		}
		r = []rune(strings.TrimLeftFunc(string(r[cut:]), isSpace))
	}
	if len(r) > 0 {
		out = append(out, string(r))
	}
	return out
}

var (
	mdLink       = regexp.MustCompile(`\[([^\[\]\n]+)\]\(([^()\s]+)\)`)
	mdBoldStar   = regexp.MustCompile(`\*\*([^*\s](?:[^*\n]*[^*\s])?)\*\*`)
	mdBoldUnder  = regexp.MustCompile(`__([^_\s](?:[^_\n]*[^_\s])?)__`)
	mdItalicStar = regexp.MustCompile(`\*([^*\s](?:[^*\n]*[^*\s])?)\*`)
	mdStrike     = regexp.MustCompile(`~~([^~\s](?:[^~\n]*[^~\s])?)~~`)
)

// boldMark stands in for bold asterisks while the italic rule runs.
const boldMark = "\uE000"

// RenderMarkdown converts the seed's markdown_v1 text to what Messenger
// shows: links [text](url) become "text (url)" (just the URL when both are
// the same), **bold** and __bold__ become *bold*, *italic* becomes _italic_
// and ~~strike~~ becomes ~strike~; anything else is left as it is.
func RenderMarkdown(s string) string {
	s = mdLink.ReplaceAllStringFunc(s, func(m string) string {
		sub := mdLink.FindStringSubmatch(m)
		if sub[1] == sub[2] {
			return sub[2]
		}
		return sub[1] + " (" + sub[2] + ")"
	})
	s = mdBoldStar.ReplaceAllString(s, boldMark+"${1}"+boldMark)
	s = mdBoldUnder.ReplaceAllString(s, boldMark+"${1}"+boldMark)
	s = mdItalicStar.ReplaceAllString(s, "_${1}_")
	s = mdStrike.ReplaceAllString(s, "~${1}~")
	return strings.ReplaceAll(s, boldMark, "*")
}
