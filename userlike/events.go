package userlike

import (
	"bytes"
	"encoding/json"
	"math"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/internal/jsoncheck"
)

// EventName is the name of an event a bot triggers (packet.name).
type EventName string

// Events a bot may trigger.
const (
	EventMessage            EventName = "message"             // text, up to 5,000 characters
	EventBubbles            EventName = "bubbles"             // text with options to click
	EventCarousel           EventName = "carousel"            // options with images
	EventButtonTemplate     EventName = "button_template"     // header, body, footer, up to 3 options
	EventListTemplate       EventName = "list_template"       // up to 10 options behind a button
	EventButtons            EventName = "buttons"             // URL buttons
	EventButton             EventName = "button"              // one URL button (deprecated by Userlike)
	EventMedia              EventName = "media"               // a file by URL
	EventNavigate           EventName = "navigate"            // send the customer to a URL
	EventContactUpdate      EventName = "contact_update"      // set contact fields
	EventConversationUpdate EventName = "conversation_update" // set conversation fields
	EventNoteCreate         EventName = "note_create"         // an internal note
	EventDelay              EventName = "delay"               // typing indicator; delays the events after it
	EventAbort              EventName = "abort"               // stop the bot; normal routing to humans
	EventEnd                EventName = "end"                 // end the conversation
	EventForwardGroup       EventName = "forward_group"       // hand over to a group
	EventForwardSkills      EventName = "forward_skills"      // hand over to an agent with all skills
	EventForwardAny         EventName = "forward_any"         // hand over to any agent
	EventAddonDispatch      EventName = "addon_dispatch"      // send the conversation to an add-on when it ends
	EventEmailDispatch      EventName = "email_dispatch"      // email the transcript when it ends
)

// EventNames lists every event a bot may trigger.
var EventNames = []EventName{EventMessage, EventBubbles, EventCarousel, EventButtonTemplate, EventListTemplate,
	EventButtons, EventButton, EventMedia, EventNavigate, EventContactUpdate, EventConversationUpdate,
	EventNoteCreate, EventDelay, EventAbort, EventEnd, EventForwardGroup, EventForwardSkills, EventForwardAny,
	EventAddonDispatch, EventEmailDispatch}

// ShowsCustomer reports whether the event sends something to the customer
// (ToMessenger returns messages for it).
func (n EventName) ShowsCustomer() bool {
	switch n {
	case EventMessage, EventBubbles, EventCarousel, EventButtonTemplate, EventListTemplate,
		EventButtons, EventButton, EventMedia, EventNavigate:
		return true
	}
	return false
}

// EndsSession reports whether the event ends the bot's session (abort, end
// and the forwards).
func (n EventName) EndsSession() bool {
	switch n {
	case EventAbort, EventEnd, EventForwardGroup, EventForwardSkills, EventForwardAny:
		return true
	}
	return false
}

// Limits on what a bot sends.
const (
	// MaxTextLength is the most characters in a message body (the seed's
	// 5,000), applied to every text a bot sends.
	MaxTextLength = 5000
	// MaxEvents is the most events in one body.
	MaxEvents = 100
	// MaxDelay is the longest delay event.
	MaxDelay = time.Minute
	// maxButtonTemplateOptions is the seed's "up to three buttons".
	maxButtonTemplateOptions = 3
	// maxListTemplateOptions is the seed's "up to ten options".
	maxListTemplateOptions = 10
	// maxOptions bounds bubbles and carousels.
	maxOptions = 100
	// maxShort bounds labels, values, ids and other short strings.
	maxShort = 1000
)

// On-failure behaviours of the forward events.
const (
	// OnFailureFeedback sends a forward_failed packet when no agent is
	// available, and the bot keeps the conversation.
	OnFailureFeedback = "feedback"
	// OnFailureUnassign (and "") unassigns the conversation when no agent
	// is available; the bot gets no more updates. This is the seed's
	// default.
	OnFailureUnassign = "unassign"
)

// Recipient types of email_dispatch.
const (
	RecipientOperator = "operator" // an operator (agent), optionally named by operator_id
	RecipientContact  = "contact"  // the conversation's contact, whose email must be known
)

// Header types of button_template headers.
const (
	HeaderText     = "text"     // a text headline (WhatsApp only; dropped on Messenger)
	HeaderImage    = "image"    // an image by link (the only header Facebook supports)
	HeaderVideo    = "video"    // a video by link (WhatsApp only)
	HeaderDocument = "document" // a document by link (WhatsApp only)
)

// Event is one event a bot triggered. Name says which payload field is set;
// abort and end have none.
type Event struct {
	// Name is the event's name.
	Name EventName
	// CID is the chatbot session the event is for (info.cid).
	CID string
	// Context is the bot's new context object, compacted; nil when the event
	// carried none (absent, null or {}), which keeps the stored one.
	Context json.RawMessage
	// Message is set for message.
	Message *Message
	// Choice is set for bubbles, carousel, button_template and list_template.
	Choice *Choice
	// Buttons is set for buttons and button.
	Buttons *Buttons
	// Media is set for media.
	Media *Media
	// Navigate is set for navigate.
	Navigate *Navigate
	// ContactUpdate is set for contact_update.
	ContactUpdate *ContactUpdate
	// ConversationUpdate is set for conversation_update.
	ConversationUpdate *ConversationUpdate
	// Note is set for note_create.
	Note *Note
	// Delay is set for delay.
	Delay *Delay
	// Forward is set for forward_group, forward_skills and forward_any.
	Forward *Forward
	// AddonDispatch is set for addon_dispatch.
	AddonDispatch *AddonDispatch
	// EmailDispatch is set for email_dispatch.
	EmailDispatch *EmailDispatch
}

// Message is a text message.
type Message struct {
	// Body is the text.
	Body string
	// TextFormat is the text's format; "markdown_v1" is rendered for
	// Messenger, anything else is sent as it is.
	TextFormat string
}

// TextFormatMarkdown is the seed's markdown text format.
const TextFormatMarkdown = "markdown_v1"

// Choice is a message with options: bubbles, carousel, button_template or
// list_template.
type Choice struct {
	// Body is the message text (optional for carousel).
	Body string
	// Fallback is the text shown with a numbered list of the options where
	// they cannot be buttons (required by the seed).
	Fallback string
	// Options are the options, in order.
	Options []Option
	// Header is the button_template header, or the list_template headline
	// (as a text header).
	Header *Header
	// Footer is the button_template or list_template footer.
	Footer string
	// Button is the list_template button that opens the options.
	Button string
	// Title is the list_template headline above the options.
	Title string
}

// Option is one option of a choice message.
type Option struct {
	// Label is what the customer sees.
	Label string `json:"label"`
	// Value is what the bot gets in the click ("" means the label).
	Value string `json:"value,omitempty"`
	// Description is a list_template option's description.
	Description string `json:"description,omitempty"`
	// ImageURL is a carousel option's image.
	ImageURL string `json:"image_url,omitempty"`
}

// value returns the option's value, the label when it has none.
func (o Option) value() string {
	if o.Value == "" {
		return o.Label
	}
	return o.Value
}

// Header is a button_template header.
type Header struct {
	// Type is text, image, video or document.
	Type string
	// Text is a text header's text.
	Text string
	// Link is a media header's URL.
	Link string
}

// Buttons are URL buttons with a text; the customer's taps are not reported.
type Buttons struct {
	// Body is the text above the buttons (may be empty).
	Body string
	// Buttons are the buttons, in order.
	Buttons []LinkButton
}

// LinkButton is a button that opens a URL.
type LinkButton struct {
	// Label is the button's text.
	Label string
	// Link is the URL it opens.
	Link string
}

// Media is a file sent by URL.
type Media struct {
	// Link is the file's URL.
	Link string
	// MimeType is the file's MIME type, if the bot gave it.
	MimeType string
	// Filename is the file's name, if the bot gave it.
	Filename string
}

// Navigate sends the customer to a URL.
type Navigate struct {
	// URL is where to go.
	URL string
}

// ContactUpdate sets contact fields; empty fields are left unchanged.
type ContactUpdate struct {
	// Name is the contact's name.
	Name string
	// Email is the contact's email address.
	Email string
	// MobileNumber is the contact's mobile number.
	MobileNumber string
	// ExternalCustomerID is the bot's or CRM's id for the contact.
	ExternalCustomerID string
	// CustomFields is a JSON object of custom fields to merge (nil: none).
	CustomFields json.RawMessage
}

// ConversationUpdate sets conversation fields; empty fields are left
// unchanged.
type ConversationUpdate struct {
	// Subject is the conversation's subject.
	Subject string
	// Topics replace the conversation's topics when not nil.
	Topics []string
	// Locale is the conversation's locale.
	Locale string
	// CustomFields is a JSON object of custom fields to merge (nil: none).
	CustomFields json.RawMessage
}

// Note is an internal note for agents.
type Note struct {
	// Body is the note's text.
	Body string
	// ContactIdentityID, when set, makes it a note on the contact rather than
	// on the conversation.
	ContactIdentityID string
}

// Delay holds back the events after it in the same body.
type Delay struct {
	// Duration is how long.
	Duration time.Duration
	// Typing says whether the customer sees a typing indicator meanwhile.
	Typing bool
}

// Forward ends the bot's session and hands the conversation to an agent.
type Forward struct {
	// GroupID is forward_group's group.
	GroupID string
	// Skills are forward_skills' skills; the agent must have all of them.
	Skills []string
	// OnFailure is "", OnFailureUnassign or OnFailureFeedback.
	OnFailure string
}

// Feedback reports whether a failed forward should be reported to the bot
// with a forward_failed packet.
func (f Forward) Feedback() bool { return f.OnFailure == OnFailureFeedback }

// AddonDispatch sends the conversation to an add-on after it ends.
type AddonDispatch struct {
	// Type is the add-on type.
	Type string
}

// EmailDispatch emails the transcript after the conversation ends.
type EmailDispatch struct {
	// RecipientType is RecipientOperator or RecipientContact.
	RecipientType string
	// OperatorID names the operator (with RecipientOperator), if given.
	OperatorID string
}

// Offsets returns, for each event of one body, how long after the body
// arrived it is to be carried out: the sum of the delay events before it,
// since a delay holds back only the events after it in the same body. During
// a delay whose Typing is set the customer is shown a typing indicator.
func Offsets(events []Event) []time.Duration {
	out := make([]time.Duration, len(events))
	var at time.Duration
	for i, ev := range events {
		out[i] = at
		if ev.Name == EventDelay && ev.Delay != nil {
			at += ev.Delay.Duration
		}
	}
	return out
}

// ParseEvents decodes a bot's webhook response body or a body it posted to
// the API URL: one event object, a JSON list of them, or nothing (an empty
// body, whitespace or null, which gives no events). The whole body is
// validated before anything is returned: the first problem is an
// *apperr.Error of code Invalid whose Field is the offending path, e.g.
// "packet.payload.body" for one event or "events[2].packet.name" in a list.
// All events of one body must carry the same cid.
func ParseEvents(body []byte) ([]Event, error) {
	t := bytes.TrimSpace(body)
	if len(t) == 0 || string(t) == "null" {
		return nil, nil
	}
	if !json.Valid(t) {
		return nil, apperr.New(apperr.Invalid, "the body is not valid JSON")
	}
	// What a store cannot hold is refused before anything is read.
	if p := jsoncheck.Value(t, jsoncheck.Default); p != nil {
		field := p.Field
		if strings.HasPrefix(field, "[") {
			field = "events" + field
		}
		return nil, apperr.Field(field, "%s", p.Message)
	}
	var raws []json.RawMessage
	prefix := func(int) string { return "" }
	switch t[0] {
	case '{':
		raws = []json.RawMessage{t}
	case '[':
		if err := json.Unmarshal(t, &raws); err != nil {
			return nil, apperr.New(apperr.Invalid, "the body is not valid JSON")
		}
		prefix = func(i int) string { return index("events", i) }
	default:
		return nil, apperr.New(apperr.Invalid, "the body must be an event object or a JSON list of events")
	}
	if len(raws) > MaxEvents {
		return nil, apperr.Field("events", "at most %d events in one body, got %d", MaxEvents, len(raws))
	}
	events := make([]Event, 0, len(raws))
	for i, raw := range raws {
		ev, err := parseEvent(raw, prefix(i))
		if err != nil {
			return nil, err
		}
		if i > 0 && ev.CID != events[0].CID {
			return nil, apperr.Field(join(prefix(i), "info.cid"), "all events in one body must be for the same cid (%q), got %q", events[0].CID, ev.CID)
		}
		events = append(events, ev)
	}
	return events, nil
}

// parseEvent decodes one event found at path.
func parseEvent(raw json.RawMessage, path string) (Event, *apperr.Error) {
	r := &reader{}
	root := r.object(raw, path, true)
	if r.err != nil {
		return Event{}, apperr.Field(path, "must be an event object with info and packet")
	}
	info := root.child("info", true)
	ev := Event{CID: info.str("cid")}
	if ev.CID == "" {
		r.fail(info.key("cid"), "is required")
	}
	if r.err == nil {
		ctx, err := normalizeContext(info.raw("context"), info.key("context"))
		if err != nil {
			return Event{}, err
		}
		ev.Context = ctx
	}
	pk := root.child("packet", true)
	name := pk.str("name")
	if r.err == nil && name == "" {
		r.fail(pk.key("name"), "is required")
	}
	if r.err != nil {
		return Event{}, r.err
	}
	ev.Name = EventName(name)
	if !slices.Contains(EventNames, ev.Name) {
		return Event{}, apperr.Field(pk.key("name"), "unknown event %q", name)
	}
	p := pk.child("payload", false)
	switch ev.Name {
	case EventMessage:
		ev.Message = &Message{Body: p.text("body", true, MaxTextLength), TextFormat: p.str("text_format")}
	case EventBubbles, EventCarousel, EventButtonTemplate, EventListTemplate:
		ev.Choice = parseChoice(ev.Name, p)
	case EventButtons:
		ev.Buttons = &Buttons{Body: p.text("body", false, MaxTextLength)}
		items := p.list("buttons")
		if len(items) == 0 && r.err == nil {
			r.fail(p.key("buttons"), "needs at least one button")
		}
		for i, item := range items {
			b := r.object(item, index(p.key("buttons"), i), true)
			ev.Buttons.Buttons = append(ev.Buttons.Buttons, LinkButton{Label: b.text("label", true, maxShort), Link: b.link("link", true)})
		}
	case EventButton:
		b := LinkButton{Label: p.text("label", false, maxShort), Link: p.link("link", true)}
		if b.Label == "" {
			b.Label = b.Link
		}
		ev.Buttons = &Buttons{Body: p.text("body", false, MaxTextLength), Buttons: []LinkButton{b}}
	case EventMedia:
		ev.Media = &Media{Link: p.link("link", true), MimeType: p.text("mime_type", false, 255), Filename: p.text("filename", false, 255)}
		if m := ev.Media.MimeType; m != "" && (!strings.Contains(m, "/") || strings.ContainsAny(m, " \r\n")) {
			r.fail(p.key("mime_type"), "must look like image/png, got %q", truncate(m, 50))
		}
	case EventNavigate:
		ev.Navigate = &Navigate{URL: p.link("url", true)}
	case EventContactUpdate:
		u := &ContactUpdate{
			Name:               p.text("name", false, maxShort),
			Email:              p.text("email", false, 320),
			MobileNumber:       p.text("mobile_number", false, 50),
			ExternalCustomerID: p.id("external_customer_id"),
			CustomFields:       p.rawObject("custom_fields"),
		}
		if u.Email != "" {
			if a, err := mail.ParseAddress(u.Email); err != nil || a.Address != u.Email {
				r.fail(p.key("email"), "must be an email address, got %q", truncate(u.Email, 100))
			}
		}
		if r.err == nil && u.Name == "" && u.Email == "" && u.MobileNumber == "" && u.ExternalCustomerID == "" && u.CustomFields == nil {
			r.fail(p.path, "needs at least one of name, email, mobile_number, external_customer_id, custom_fields")
		}
		ev.ContactUpdate = u
	case EventConversationUpdate:
		u := &ConversationUpdate{Subject: p.text("subject", false, maxShort), Locale: p.text("locale", false, 35), CustomFields: p.rawObject("custom_fields")}
		if p.has("topics") {
			u.Topics = []string{}
			for i, t := range p.list("topics") {
				if id := r.id(t, index(p.key("topics"), i)); id != "" {
					u.Topics = append(u.Topics, id)
				} else {
					r.fail(index(p.key("topics"), i), "must not be empty")
				}
			}
		}
		if r.err == nil && u.Subject == "" && u.Topics == nil && u.Locale == "" && u.CustomFields == nil {
			r.fail(p.path, "needs at least one of subject, topics, locale, custom_fields")
		}
		ev.ConversationUpdate = u
	case EventNoteCreate:
		ev.Note = &Note{Body: p.text("body", true, MaxTextLength), ContactIdentityID: p.id("contact_identity_id")}
	case EventDelay:
		d, ok := p.number("duration")
		switch {
		case r.err != nil:
		case !ok:
			r.fail(p.key("duration"), "is required (seconds)")
		case d <= 0 || math.IsInf(d, 0) || d > MaxDelay.Seconds():
			r.fail(p.key("duration"), "must be more than 0 and at most %d seconds, got %v", int(MaxDelay.Seconds()), d)
		}
		ev.Delay = &Delay{Duration: time.Duration(d * float64(time.Second)), Typing: p.boolean("typing_indicator", true)}
	case EventAbort, EventEnd:
	case EventForwardGroup, EventForwardSkills, EventForwardAny:
		f := &Forward{OnFailure: p.str("on_failure")}
		if f.OnFailure != "" && f.OnFailure != OnFailureFeedback && f.OnFailure != OnFailureUnassign {
			r.fail(p.key("on_failure"), "must be %s or %s, got %q", OnFailureFeedback, OnFailureUnassign, truncate(f.OnFailure, 50))
		}
		switch ev.Name {
		case EventForwardGroup:
			if f.GroupID = p.id("group_id"); f.GroupID == "" {
				r.fail(p.key("group_id"), "is required")
			}
		case EventForwardSkills:
			items := p.list("skills")
			if len(items) == 0 {
				r.fail(p.key("skills"), "needs at least one skill")
			}
			for i, raw := range items {
				f.Skills = append(f.Skills, r.text(raw, index(p.key("skills"), i), true, maxShort))
			}
		}
		ev.Forward = f
	case EventAddonDispatch:
		ev.AddonDispatch = &AddonDispatch{Type: p.text("type", true, maxShort)}
	case EventEmailDispatch:
		e := &EmailDispatch{RecipientType: p.str("recipient_type"), OperatorID: p.id("operator_id")}
		switch {
		case r.err != nil:
		case e.RecipientType == "":
			r.fail(p.key("recipient_type"), "is required (%s or %s)", RecipientOperator, RecipientContact)
		case e.RecipientType != RecipientOperator && e.RecipientType != RecipientContact:
			r.fail(p.key("recipient_type"), "must be %s or %s, got %q", RecipientOperator, RecipientContact, truncate(e.RecipientType, 50))
		case e.RecipientType == RecipientContact && e.OperatorID != "":
			r.fail(p.key("operator_id"), "is only used with recipient_type %s", RecipientOperator)
		}
		ev.EmailDispatch = e
	}
	if r.err != nil {
		return Event{}, r.err
	}
	return ev, nil
}

// parseChoice reads the payload of a choice message.
func parseChoice(name EventName, p *object) *Choice {
	r := p.r
	c := &Choice{
		Body:     p.text("body", name != EventCarousel, MaxTextLength),
		Fallback: p.text("fallback", true, MaxTextLength),
		Footer:   p.text("footer", false, MaxTextLength),
		Button:   p.text("button", false, maxShort),
		Title:    p.text("title", false, maxShort),
	}
	if p.has("header") {
		c.Header = parseHeader(p)
	}
	items := p.list("options")
	most := maxOptions
	switch name {
	case EventButtonTemplate:
		most = maxButtonTemplateOptions
	case EventListTemplate:
		most = maxListTemplateOptions
	}
	switch {
	case r.err != nil:
	case len(items) == 0:
		r.fail(p.key("options"), "needs at least one option")
	case len(items) > most:
		r.fail(p.key("options"), "%s allows at most %d options, got %d", name, most, len(items))
	}
	for i, item := range items {
		o := r.object(item, index(p.key("options"), i), true)
		opt := Option{
			Label:       o.text("label", true, maxShort),
			Value:       o.id("value"),
			Description: o.text("description", false, maxShort),
			ImageURL:    o.link("image_url", false),
		}
		if len(opt.Value) > maxShort {
			r.fail(o.key("value"), "must be at most %d bytes", maxShort)
		}
		c.Options = append(c.Options, opt)
	}
	return c
}

// parseHeader reads a header given as a string (a text header) or as an
// object {type, text, link}.
func parseHeader(p *object) *Header {
	raw := bytes.TrimSpace(p.raw("header"))
	if raw[0] == '"' {
		return &Header{Type: HeaderText, Text: p.text("header", false, maxShort)}
	}
	o := p.child("header", false)
	h := &Header{Type: o.str("type"), Text: o.text("text", false, maxShort)}
	switch h.Type {
	case HeaderText:
		if h.Text == "" {
			p.r.fail(o.key("text"), "is required for a text header")
		}
	case HeaderImage, HeaderVideo, HeaderDocument:
		h.Link = o.link("link", true)
	case "":
		p.r.fail(o.key("type"), "is required (text, image, video or document)")
	default:
		p.r.fail(o.key("type"), "must be text, image, video or document, got %q", truncate(h.Type, 50))
	}
	return h
}
