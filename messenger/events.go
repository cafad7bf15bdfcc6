// Package messenger speaks Meta's Messenger Platform wire format: it parses
// and verifies the Page webhooks Meta sends (the webhook edge) and calls the
// Graph API (Send API and thread control) through huandu/facebook.
//
// Parsing is defensive in the ways Meta's payloads demand: every entry and
// every messaging[] and standby[] item is read, app ids may be numbers or
// strings (or null), and timestamps may be numbers or strings in
// milliseconds or seconds.
package messenger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/handoverd/handoverd/internal/jsoncheck"
)

// Kind is what a webhook event is about.
type Kind string

// Event kinds.
const (
	KindMessage  Kind = "message"                // a customer's message
	KindEcho     Kind = "echo"                   // a message the Page sent (is_echo)
	KindPostback Kind = "postback"               // a button or Get Started tap
	KindReferral Kind = "referral"               // m.me link, ad or QR entry into an existing thread
	KindDelivery Kind = "delivery"               // delivery receipt
	KindRead     Kind = "read"                   // read receipt
	KindPass     Kind = "pass_thread_control"    // control passed to an app
	KindTake     Kind = "take_thread_control"    // control taken by an app
	KindRequest  Kind = "request_thread_control" // an app asks the owner for control
	KindAppRoles Kind = "app_roles"              // a Page admin changed app roles
	KindUnknown  Kind = "unknown"                // anything else; acknowledged and counted
)

// Kinds lists every known kind (for metrics initialisation).
var Kinds = []Kind{KindMessage, KindEcho, KindPostback, KindReferral, KindDelivery, KindRead,
	KindPass, KindTake, KindRequest, KindAppRoles, KindUnknown}

// Channel is the webhook array an event arrived in.
type Channel string

// Channels: messaging for the thread owner (or everyone in zero-config),
// standby for the other apps.
const (
	ChannelMessaging Channel = "messaging"
	ChannelStandby   Channel = "standby"
)

// Event is one typed webhook event.
type Event struct {
	// Kind says which payload field is set.
	Kind Kind
	// Channel is messaging or standby.
	Channel Channel
	// PageID is the Page (entry.id).
	PageID string
	// PSID is the customer's page-scoped id ("" for Page-level events).
	PSID string
	// Time is the event's timestamp.
	Time time.Time
	// Message is set for KindMessage and KindEcho.
	Message *Message
	// Postback is set for KindPostback.
	Postback *Postback
	// Referral is set for KindReferral (and may accompany a postback).
	Referral *Referral
	// Watermark is set for KindDelivery and KindRead.
	Watermark time.Time
	// MIDs lists delivered message ids for KindDelivery (may be empty).
	MIDs []string
	// Handover is set for KindPass, KindTake and KindRequest.
	Handover *Handover
	// AppRoles maps app id to roles for KindAppRoles.
	AppRoles map[string][]string
	// UnknownKeys names the payload keys of a KindUnknown event.
	UnknownKeys []string
	// Raw is the item exactly as received.
	Raw json.RawMessage
}

// Message is a message or an echo.
type Message struct {
	// MID is Meta's message id.
	MID string `json:"mid"`
	// Text is the message text, if any.
	Text string `json:"text,omitempty"`
	// QuickReplyPayload is the payload of a tapped quick reply.
	QuickReplyPayload string `json:"quick_reply_payload,omitempty"`
	// Attachments are the message's attachments.
	Attachments []Attachment `json:"attachments,omitempty"`
	// ReplyToMID is the message this one replies to.
	ReplyToMID string `json:"reply_to_mid,omitempty"`
	// IsEcho is true for messages the Page sent.
	IsEcho bool `json:"is_echo,omitempty"`
	// AppID is the app that sent an echo ("" when the Page sent it without an app).
	AppID string `json:"app_id,omitempty"`
	// Metadata is the string the sending app attached.
	Metadata string `json:"metadata,omitempty"`
}

// Attachment is a message attachment.
type Attachment struct {
	// Type is image, video, audio, file, template, fallback, location, ...
	Type string `json:"type"`
	// URL is payload.url when present.
	URL string `json:"url,omitempty"`
	// Payload is the attachment payload as received.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Postback is a button tap. On standby Meta omits Payload.
type Postback struct {
	// MID is the postback's message id, when Meta gives one.
	MID string
	// Title is the button's title.
	Title string
	// Payload is the button's payload (absent on standby).
	Payload string
}

// Referral says how the customer entered the thread.
type Referral struct {
	// Ref is the ref parameter.
	Ref string
	// Source is SHORTLINK, ADS, ...
	Source string
	// Type is OPEN_THREAD, ...
	Type string
}

// Handover is a thread-control event's payload; app ids are normalised to
// strings and "" stands for null/idle.
type Handover struct {
	// PreviousOwnerAppID is the app that had control ("" when idle or absent).
	PreviousOwnerAppID string
	// NewOwnerAppID is the app that has control now ("" when absent).
	NewOwnerAppID string
	// RequestedOwnerAppID is the app asking for control (request events).
	RequestedOwnerAppID string
	// Metadata is the free-text string the acting app passed.
	Metadata string
}

// Batch is a parsed webhook body.
type Batch struct {
	// Object is the envelope's object ("page").
	Object string
	// Events are all events of all entries, in the order received.
	Events []Event
	// Malformed are the items that could not be read. They are reported,
	// not fatal: one bad item must not make Meta redeliver (and finally
	// drop) the good ones delivered with it.
	Malformed []MalformedItem
}

// MalformedItem is an item of a webhook that could not be read.
type MalformedItem struct {
	// PageID is the entry's Page.
	PageID string
	// Where is the item's position, e.g. entry[0].messaging[2].
	Where string
	// Err says what is wrong.
	Err error
	// Raw is the item as received.
	Raw json.RawMessage
}

// ErrMalformed wraps every parse failure.
var ErrMalformed = errors.New("malformed webhook")

// ParseWebhook decodes a webhook body into typed events. It fails only when
// the envelope itself is unreadable; items that cannot be read are listed
// in Batch.Malformed.
func ParseWebhook(body []byte) (Batch, error) {
	var env struct {
		Object string `json:"object"`
		Entry  []struct {
			ID        flexString        `json:"id"`
			Time      entryTime         `json:"time"`
			Messaging []json.RawMessage `json:"messaging"`
			Standby   []json.RawMessage `json:"standby"`
		} `json:"entry"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&env); err != nil {
		return Batch{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Batch{}, fmt.Errorf("%w: the body %s", ErrMalformed, jsoncheck.ErrTrailing)
	}
	if env.Entry == nil {
		return Batch{}, fmt.Errorf("%w: no entry array", ErrMalformed)
	}
	b := Batch{Object: env.Object}
	for i, e := range env.Entry {
		if e.ID == "" {
			return Batch{}, fmt.Errorf("%w: entry[%d].id is missing", ErrMalformed, i)
		}
		// An entry id that cannot be stored drops the entry's items.
		pageID, badID := string(e.ID), jsoncheck.String(string(e.ID), jsoncheck.Default.MaxID)
		if badID != "" {
			pageID = ""
		}
		for _, list := range []struct {
			ch    Channel
			items []json.RawMessage
		}{{ChannelMessaging, e.Messaging}, {ChannelStandby, e.Standby}} {
			for j, raw := range list.items {
				var ev Event
				var err error
				if badID != "" {
					err = fmt.Errorf("entry[%d].id %s", i, badID)
				} else {
					ev, err = parseItem(pageID, e.Time.Time(), list.ch, raw)
				}
				if err != nil {
					b.Malformed = append(b.Malformed, MalformedItem{PageID: pageID, Where: fmt.Sprintf("entry[%d].%s[%d]", i, list.ch, j),
						Err: fmt.Errorf("%w: %v", ErrMalformed, err), Raw: raw})
					continue
				}
				b.Events = append(b.Events, ev)
			}
		}
	}
	return b, nil
}

// item is the wire shape of one messaging/standby item.
type item struct {
	Sender    *struct{ ID flexString } `json:"sender"`
	Recipient *struct{ ID flexString } `json:"recipient"`
	Timestamp flexTime                 `json:"timestamp"`
	Message   *struct {
		MID         string                    `json:"mid"`
		Text        string                    `json:"text"`
		IsEcho      bool                      `json:"is_echo"`
		AppID       flexString                `json:"app_id"`
		Metadata    string                    `json:"metadata"`
		QuickReply  *struct{ Payload string } `json:"quick_reply"`
		ReplyTo     *struct{ MID string }     `json:"reply_to"`
		Attachments []struct {
			Type    string          `json:"type"`
			Payload json.RawMessage `json:"payload"`
		} `json:"attachments"`
	} `json:"message"`
	Postback *struct {
		MID      string    `json:"mid"`
		Title    string    `json:"title"`
		Payload  string    `json:"payload"`
		Referral *referral `json:"referral"`
	} `json:"postback"`
	Referral *referral `json:"referral"`
	Delivery *struct {
		MIDs      []string `json:"mids"`
		Watermark flexTime `json:"watermark"`
	} `json:"delivery"`
	Read *struct {
		Watermark flexTime `json:"watermark"`
	} `json:"read"`
	Pass    *handover           `json:"pass_thread_control"`
	Take    *handover           `json:"take_thread_control"`
	Request *handover           `json:"request_thread_control"`
	Roles   map[string][]string `json:"app_roles"`
}

type referral struct {
	Ref    string `json:"ref"`
	Source string `json:"source"`
	Type   string `json:"type"`
}

type handover struct {
	PreviousOwnerAppID  flexString `json:"previous_owner_app_id"`
	NewOwnerAppID       flexString `json:"new_owner_app_id"`
	RequestedOwnerAppID flexString `json:"requested_owner_app_id"`
	Metadata            string     `json:"metadata"`
}

// envelopeKeys are item keys that are not the payload.
var envelopeKeys = map[string]bool{"sender": true, "recipient": true, "timestamp": true}

func parseItem(pageID string, entryAt time.Time, ch Channel, raw json.RawMessage) (Event, error) {
	// What either store cannot hold (NUL, invalid UTF-8, an id over an
	// index's limit) is refused here, the same for SQLite and PostgreSQL.
	if p := jsoncheck.Value(raw, jsoncheck.Default); p != nil {
		return Event{}, p
	}
	var it item
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&it); err != nil {
		return Event{}, err
	}
	ev := Event{Channel: ch, PageID: pageID, Time: it.Timestamp.Time(), Raw: append(json.RawMessage(nil), raw...)}
	var sender, recipient string
	if it.Sender != nil {
		sender = string(it.Sender.ID)
	}
	if it.Recipient != nil {
		recipient = string(it.Recipient.ID)
	}
	// The customer is whichever side is not the Page; echoes are sent by the Page.
	switch {
	case sender != "" && sender != pageID:
		ev.PSID = sender
	case recipient != "" && recipient != pageID:
		ev.PSID = recipient
	}
	switch {
	case it.Message != nil:
		m := it.Message
		ev.Message = &Message{MID: m.MID, Text: m.Text, IsEcho: m.IsEcho, AppID: string(m.AppID), Metadata: m.Metadata}
		if m.QuickReply != nil {
			ev.Message.QuickReplyPayload = m.QuickReply.Payload
		}
		if m.ReplyTo != nil {
			ev.Message.ReplyToMID = m.ReplyTo.MID
		}
		for _, a := range m.Attachments {
			att := Attachment{Type: a.Type, Payload: a.Payload}
			var compact bytes.Buffer
			if len(a.Payload) > 0 && json.Compact(&compact, a.Payload) == nil {
				att.Payload = compact.Bytes() // the same however Meta spaced it
			}
			var p struct {
				URL string `json:"url"`
			}
			if len(a.Payload) > 0 && json.Unmarshal(a.Payload, &p) == nil {
				att.URL = p.URL
			}
			ev.Message.Attachments = append(ev.Message.Attachments, att)
		}
		ev.Kind = KindMessage
		if m.IsEcho {
			ev.Kind = KindEcho
		}
		if m.MID == "" {
			return Event{}, errors.New("message.mid is missing")
		}
	case it.Postback != nil:
		ev.Kind = KindPostback
		ev.Postback = &Postback{MID: it.Postback.MID, Title: it.Postback.Title, Payload: it.Postback.Payload}
		if r := it.Postback.Referral; r != nil {
			ev.Referral = &Referral{Ref: r.Ref, Source: r.Source, Type: r.Type}
		}
	case it.Referral != nil:
		ev.Kind = KindReferral
		ev.Referral = &Referral{Ref: it.Referral.Ref, Source: it.Referral.Source, Type: it.Referral.Type}
	case it.Delivery != nil:
		ev.Kind = KindDelivery
		ev.MIDs = it.Delivery.MIDs
		ev.Watermark = it.Delivery.Watermark.Time()
	case it.Read != nil:
		ev.Kind = KindRead
		ev.Watermark = it.Read.Watermark.Time()
	case it.Pass != nil:
		ev.Kind, ev.Handover = KindPass, it.Pass.normalise()
	case it.Take != nil:
		ev.Kind, ev.Handover = KindTake, it.Take.normalise()
	case it.Request != nil:
		ev.Kind, ev.Handover = KindRequest, it.Request.normalise()
	case it.Roles != nil:
		ev.Kind, ev.AppRoles = KindAppRoles, it.Roles
	default:
		ev.Kind = KindUnknown
		var all map[string]json.RawMessage
		_ = json.Unmarshal(raw, &all)
		for k := range all {
			if !envelopeKeys[k] {
				ev.UnknownKeys = append(ev.UnknownKeys, k)
			}
		}
		sort.Strings(ev.UnknownKeys)
	}
	// Meta documents delivery receipts without a timestamp (only
	// delivery.watermark): such an event happened at its watermark, or
	// failing that at the entry's time.
	if ev.Time.IsZero() && (ev.Kind == KindDelivery || ev.Kind == KindRead) {
		ev.Time = ev.Watermark
	}
	if ev.Time.IsZero() {
		ev.Time = entryAt
	}
	if ev.Time.IsZero() && ev.Kind != KindUnknown {
		return Event{}, errors.New("timestamp is missing")
	}
	if ev.PSID == "" && ev.Kind != KindAppRoles && ev.Kind != KindUnknown {
		return Event{}, errors.New("sender.id is missing")
	}
	return ev, nil
}

func (h *handover) normalise() *Handover {
	return &Handover{
		PreviousOwnerAppID:  string(h.PreviousOwnerAppID),
		NewOwnerAppID:       string(h.NewOwnerAppID),
		RequestedOwnerAppID: string(h.RequestedOwnerAppID),
		Metadata:            h.Metadata,
	}
}

// flexString accepts a JSON string, number or null.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	switch {
	case s == "null":
		*f = ""
	case strings.HasPrefix(s, `"`):
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*f = flexString(v)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("want a string or number, got %s", s)
		}
		*f = flexString(n.String())
	}
	return nil
}

// flexTime accepts epoch milliseconds or seconds, as a number or a string.
type flexTime int64 // milliseconds

// entryTime is an entry's time: only a fallback for items without their
// own timestamp, so one that cannot be read is no time (zero) rather than
// a reason to refuse the entry.
type entryTime flexTime

func (e *entryTime) UnmarshalJSON(b []byte) error {
	var f flexTime
	if f.UnmarshalJSON(b) != nil {
		f = 0
	}
	*e = entryTime(f)
	return nil
}

// Time is the entry time, zero when there is none.
func (e entryTime) Time() time.Time { return flexTime(e).Time() }

// secondsCutoff: below this a timestamp is taken as seconds (1e11 s is the
// year 5138; 1e11 ms is 1973).
const secondsCutoff = 100_000_000_000

func (f *flexTime) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	if s == "" {
		*f = 0
		return nil
	}
	v, err := strconv.ParseFloat(string(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return fmt.Errorf("bad timestamp %q", truncate(string(s)))
	}
	if v == 0 {
		*f = 0
		return nil
	}
	if v < secondsCutoff {
		v *= 1000
	}
	if v < minMillis || v > maxMillis {
		return fmt.Errorf("timestamp %q is out of range (%d to %d ms)", truncate(string(s)), int64(minMillis), int64(maxMillis))
	}
	*f = flexTime(int64(v))
	return nil
}

// The range of timestamps accepted: Facebook's founding (2004-01-01) to
// 2100-01-01, in milliseconds. Anything else is absurd, not a time.
const (
	minMillis = 1072915200000
	maxMillis = 4102444800000
)

// truncate shortens a value quoted in an error.
func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Time converts to time.Time (zero when absent).
func (f flexTime) Time() time.Time {
	if f == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(f)).UTC()
}
