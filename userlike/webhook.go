package userlike

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/handoverd/handoverd/apperr"
)

// Approach modes (info.approach_mode). The seed: "proactive" if the
// messenger opened automatically, otherwise "normal". On Messenger the
// customer always writes first, so handoverd sends ApproachNormal.
const (
	ApproachNormal    = "normal"    // the customer opened the conversation
	ApproachProactive = "proactive" // the messenger opened automatically
)

// ChannelFacebook is info.conversation.contact_channel.type for Messenger
// conversations (one of the seed's "web" | "facebook" | "telegram" |
// "threema" | "sms" | "whatsapp_business" | "custom").
const ChannelFacebook = "facebook"

// Packet names handoverd sends to a bot's webhook.
const (
	PacketStart         = "start"          // a session starts; carries the customer's first message
	PacketMessage       = "message"        // the customer wrote text
	PacketClick         = "click"          // the customer chose an option of a choice message
	PacketMedia         = "media"          // the customer uploaded a file
	PacketLocation      = "location"       // the customer shared a location
	PacketForwardFailed = "forward_failed" // a forward with on_failure feedback found no agent
)

// Packets lists every packet name handoverd sends.
var Packets = []string{PacketStart, PacketMessage, PacketClick, PacketMedia, PacketLocation, PacketForwardFailed}

// Call is one webhook call: what Build encodes.
type Call struct {
	// Info describes the session.
	Info Info `json:"info"`
	// Packet is the event.
	Packet Packet `json:"packet"`
}

// Info is the webhook call's info object. Keys are in the seed's order.
type Info struct {
	// ApproachMode is ApproachNormal or ApproachProactive ("" sends normal).
	ApproachMode string `json:"approach_mode"`
	// CID identifies the chatbot session; the bot echoes it in its events.
	CID string `json:"cid"`
	// Contact is what is known about the customer.
	Contact Contact `json:"contact"`
	// Context is the bot's stored context object (nil sends {}).
	Context json.RawMessage `json:"context"`
	// Conversation describes the conversation and its channel.
	Conversation Conversation `json:"conversation"`
	// Widget describes the Userlike widget; handoverd has none, so nil
	// sends {} for bots that read it.
	Widget json.RawMessage `json:"widget"`
}

// Contact is info.contact. Unknown fields are sent as null (the seed's
// Python sample reads contact["name"] and contact["email"] unguarded, so the
// keys are always present) and custom_fields as {}.
type Contact struct {
	// ID is handoverd's id for the contact ("" sends null).
	ID string
	// Name is the contact's name.
	Name string
	// Email is the contact's email address.
	Email string
	// MobileNumber is the contact's mobile number.
	MobileNumber string
	// ExternalCustomerID is the bot's or CRM's id for the contact.
	ExternalCustomerID string
	// CustomFields is a JSON object of custom fields (nil sends {}).
	CustomFields json.RawMessage
}

// MarshalJSON writes every key, empty strings as null.
func (c Contact) MarshalJSON() ([]byte, error) {
	custom := c.CustomFields
	if isNull(custom) {
		custom = json.RawMessage(`{}`)
	}
	return json.Marshal(struct {
		CustomFields       json.RawMessage `json:"custom_fields"`
		Email              *string         `json:"email"`
		ExternalCustomerID *string         `json:"external_customer_id"`
		ID                 *string         `json:"id"`
		MobileNumber       *string         `json:"mobile_number"`
		Name               *string         `json:"name"`
	}{custom, nullable(c.Email), nullable(c.ExternalCustomerID), nullable(c.ID), nullable(c.MobileNumber), nullable(c.Name)})
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Apply returns the contact with a bot's contact_update applied: each
// non-empty field replaces the stored one and custom fields are merged key
// by key (a key set to null is removed).
func (c Contact) Apply(u ContactUpdate) (Contact, error) {
	for _, f := range []struct {
		dst *string
		src string
	}{{&c.Name, u.Name}, {&c.Email, u.Email}, {&c.MobileNumber, u.MobileNumber}, {&c.ExternalCustomerID, u.ExternalCustomerID}} {
		if f.src != "" {
			*f.dst = f.src
		}
	}
	merged, err := mergeObjects(c.CustomFields, u.CustomFields)
	if err != nil {
		return c, apperr.Wrap(err, apperr.Internal, "stored contact custom fields are not a JSON object")
	}
	c.CustomFields = merged
	return c, nil
}

// Conversation is info.conversation.
type Conversation struct {
	// ContactChannel says where the conversation is held.
	ContactChannel ContactChannel `json:"contact_channel"`
	// Subject is the conversation's subject, as set by conversation_update.
	Subject string `json:"subject,omitempty"`
	// Topics are the conversation's topics, as set by conversation_update.
	Topics []string `json:"topics,omitempty"`
	// Locale is the conversation's locale, as set by conversation_update.
	Locale string `json:"locale,omitempty"`
	// CustomFields is a JSON object of custom fields.
	CustomFields json.RawMessage `json:"custom_fields,omitempty"`
}

// Apply returns the conversation with a bot's conversation_update applied:
// non-empty fields replace the stored ones (topics as a whole) and custom
// fields are merged key by key (a key set to null is removed).
func (c Conversation) Apply(u ConversationUpdate) (Conversation, error) {
	if u.Subject != "" {
		c.Subject = u.Subject
	}
	if u.Topics != nil {
		c.Topics = slices.Clone(u.Topics)
	}
	if u.Locale != "" {
		c.Locale = u.Locale
	}
	merged, err := mergeObjects(c.CustomFields, u.CustomFields)
	if err != nil {
		return c, apperr.Wrap(err, apperr.Internal, "stored conversation custom fields are not a JSON object")
	}
	c.CustomFields = merged
	return c, nil
}

// ContactChannel is info.conversation.contact_channel.
type ContactChannel struct {
	// Type is the channel; "" sends ChannelFacebook.
	Type string `json:"type"`
	// State is the channel's state (the seed shows "valid"); "" leaves it out.
	State string `json:"state,omitempty"`
}

// mergeObjects merges update's keys into old (both JSON objects or empty); a
// null value removes the key. The result is nil when empty.
func mergeObjects(old, update json.RawMessage) (json.RawMessage, error) {
	if isNull(update) {
		return old, nil
	}
	m := map[string]json.RawMessage{}
	if !isNull(old) {
		if err := json.Unmarshal(old, &m); err != nil {
			return nil, err
		}
	}
	var u map[string]json.RawMessage
	if err := json.Unmarshal(update, &u); err != nil {
		return nil, err
	}
	for k, v := range u {
		if isNull(v) {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	if len(m) == 0 {
		return nil, nil
	}
	return json.Marshal(m) // encoding/json sorts map keys
}

// Packet is a webhook call's packet: an event name and its payload.
type Packet struct {
	// Name is one of the Packet* names.
	Name string `json:"name"`
	// Payload is the event's JSON object (nil sends {}).
	Payload json.RawMessage `json:"payload"`
}

// MediaPayload is the payload of a media packet (and of a start packet that
// carries an upload), in the shape of the bot's media event.
type MediaPayload struct {
	// Link is the file's URL.
	Link string `json:"link"`
	// MimeType is the file's MIME type, when known.
	MimeType string `json:"mime_type,omitempty"`
	// Filename is the file's name, when known.
	Filename string `json:"filename,omitempty"`
}

// ClickPayload is the payload of a click packet.
type ClickPayload struct {
	// Label is the chosen option's label.
	Label string `json:"label"`
	// Value is the chosen option's value (the label when the bot gave none).
	Value string `json:"value"`
}

// Location is the payload of a location packet.
type Location struct {
	// Latitude is in degrees.
	Latitude float64 `json:"latitude"`
	// Longitude is in degrees.
	Longitude float64 `json:"longitude"`
	// Name names the place, when known.
	Name string `json:"name,omitempty"`
	// Address is the place's address, when known.
	Address string `json:"address,omitempty"`
}

// packet marshals payload, which is always a plain struct.
func packet(name string, payload any) Packet {
	b, err := json.Marshal(payload)
	if err != nil {
		panic(fmt.Sprintf("relay: marshal %s payload: %v", name, err)) // only plain structs get here
	}
	return Packet{Name: name, Payload: b}
}

// MessagePacket is the customer's text message: {"body": text}.
func MessagePacket(text string) Packet {
	return packet(PacketMessage, struct {
		Body string `json:"body"`
	}{text})
}

// MediaPacket is the customer's upload.
func MediaPacket(m MediaPayload) Packet { return packet(PacketMedia, m) }

// ClickPacket is the customer's choice of an option.
func ClickPacket(o Option) Packet {
	return packet(PacketClick, ClickPayload{Label: o.Label, Value: o.value()})
}

// LocationPacket is a location the customer shared.
func LocationPacket(l Location) Packet { return packet(PacketLocation, l) }

// ForwardFailedPacket says that a forward the bot asked for with on_failure
// feedback found no agent; the seed gives it no payload parameters.
func ForwardFailedPacket() Packet {
	return Packet{Name: PacketForwardFailed, Payload: json.RawMessage(`{}`)}
}

// StartPacket starts a session. On Messenger a session starts with the
// customer's first message, so first (a message, media or location packet)
// gives the start payload; nil gives {} (e.g. a Get Started tap).
func StartPacket(first *Packet) Packet {
	p := Packet{Name: PacketStart, Payload: json.RawMessage(`{}`)}
	if first != nil && !isNull(first.Payload) {
		p.Payload = slices.Clone(first.Payload)
	}
	return p
}

// ClickAsMessage turns a click into the message packet the seed sends for a
// tap that no longer counts as a click (a second tap on a choice, or one
// after the session ended): its label as payload.body.
func ClickAsMessage(click Packet) Packet {
	var c ClickPayload
	_ = json.Unmarshal(click.Payload, &c)
	return MessagePacket(c.Label)
}

// AttachmentPacket converts a Messenger attachment the customer sent into a
// packet: image, video, audio and file become media (with a MIME type guessed
// from the URL's extension), and location becomes location (read from
// payload.coordinates.lat/long). ok is false for other types (templates,
// fallback, ...).
func AttachmentPacket(attachmentType, link string, payload json.RawMessage) (p Packet, ok bool) {
	switch attachmentType {
	case "image", "video", "audio", "file":
		if link == "" {
			return Packet{}, false
		}
		m := MediaPayload{Link: link, MimeType: mimeFromURL(link)}
		if u, err := url.Parse(link); err == nil {
			if base := path.Base(u.Path); base != "." && base != "/" && strings.Contains(base, ".") {
				m.Filename = base
			}
		}
		return MediaPacket(m), true
	case "location":
		var loc struct {
			Title       string `json:"title"`
			Coordinates *struct {
				Lat  *float64 `json:"lat"`
				Long *float64 `json:"long"`
			} `json:"coordinates"`
		}
		if json.Unmarshal(payload, &loc) != nil || loc.Coordinates == nil || loc.Coordinates.Lat == nil || loc.Coordinates.Long == nil {
			return Packet{}, false
		}
		return LocationPacket(Location{Latitude: *loc.Coordinates.Lat, Longitude: *loc.Coordinates.Long, Name: loc.Title}), true
	}
	return Packet{}, false
}

// mimeTypes maps file extensions to MIME types (a fixed table, so results do
// not depend on the machine's mime.types).
var mimeTypes = map[string]string{
	".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif", ".webp": "image/webp",
	".mp4": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
	".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".aac": "audio/aac", ".ogg": "audio/ogg", ".wav": "audio/wav", ".opus": "audio/opus",
	".pdf": "application/pdf", ".txt": "text/plain", ".csv": "text/csv", ".zip": "application/zip",
	".doc": "application/msword", ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	".xls": "application/vnd.ms-excel", ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

// mimeFromURL guesses a MIME type from a URL's path extension ("" if unknown).
func mimeFromURL(link string) string {
	u, err := url.Parse(link)
	if err != nil {
		return ""
	}
	return mimeTypes[strings.ToLower(path.Ext(u.Path))]
}

// Build encodes a webhook call. Zero values get the defaults documented on
// Info's fields; CID is required; the payload and context must be JSON
// objects. Errors are Invalid.
func Build(info Info, p Packet) ([]byte, error) {
	if info.CID == "" {
		return nil, apperr.Field("info.cid", "is required")
	}
	if info.ApproachMode == "" {
		info.ApproachMode = ApproachNormal
	}
	if info.ApproachMode != ApproachNormal && info.ApproachMode != ApproachProactive {
		return nil, apperr.Field("info.approach_mode", "must be normal or proactive, got %q", info.ApproachMode)
	}
	if info.Conversation.ContactChannel.Type == "" {
		info.Conversation.ContactChannel.Type = ChannelFacebook
	}
	var err error
	if info.Context, err = objectOrEmpty(info.Context, "info.context"); err != nil {
		return nil, err
	}
	if info.Widget, err = objectOrEmpty(info.Widget, "info.widget"); err != nil {
		return nil, err
	}
	if info.Contact.CustomFields, err = objectOrEmpty(info.Contact.CustomFields, "info.contact.custom_fields"); err != nil {
		return nil, err
	}
	if !isNull(info.Conversation.CustomFields) {
		if _, err = objectOrEmpty(info.Conversation.CustomFields, "info.conversation.custom_fields"); err != nil {
			return nil, err
		}
	}
	if !slices.Contains(Packets, p.Name) {
		return nil, apperr.Field("packet.name", "unknown packet %q (want one of %s)", p.Name, strings.Join(Packets, ", "))
	}
	if p.Payload, err = objectOrEmpty(p.Payload, "packet.payload"); err != nil {
		return nil, err
	}
	return json.Marshal(Call{Info: info, Packet: p})
}

// objectOrEmpty returns raw when it is a JSON object, {} when it is absent or
// null, and an Invalid error naming field otherwise.
func objectOrEmpty(raw json.RawMessage, field string) (json.RawMessage, error) {
	if isNull(raw) {
		return json.RawMessage(`{}`), nil
	}
	t := bytes.TrimSpace(raw)
	var m map[string]json.RawMessage
	if t[0] != '{' || json.Unmarshal(t, &m) != nil {
		return nil, apperr.Field(field, "must be a JSON object")
	}
	return t, nil
}
