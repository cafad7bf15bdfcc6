package handover

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/handoverd/handoverd/apperr"
)

// Reason is why a control operation (pass, take, request, release, offer,
// accept, resolve, timeout) happened: a closed set, recorded with the
// operation, in thread history, inbox activity messages and webhooks.
type Reason string

// Reasons.
const (
	// ReasonBotRequested: the bot handed the conversation over (or offered it).
	ReasonBotRequested Reason = "bot_requested"
	// ReasonCustomerAsked: the customer asked for a human.
	ReasonCustomerAsked Reason = "customer_asked"
	// ReasonBotFailed: the bot could not go on (error, no answer).
	ReasonBotFailed Reason = "bot_failed"
	// ReasonAgentTookOver: an agent took the conversation (took over,
	// replied, accepted an offer).
	ReasonAgentTookOver Reason = "agent_took_over"
	// ReasonAgentResolved: an agent resolved the conversation or handed it
	// back to the bot.
	ReasonAgentResolved Reason = "agent_resolved"
	// ReasonIdleTimeout: nobody was active for the configured time.
	ReasonIdleTimeout Reason = "idle_timeout"
	// ReasonOfferExpired: an offer was not accepted in time.
	ReasonOfferExpired Reason = "offer_expired"
	// ReasonMetaEvent: Meta's webhook told of a change handoverd did not make.
	ReasonMetaEvent Reason = "meta_event"
	// ReasonReconciled: handoverd corrected its state from Graph's thread_owner.
	ReasonReconciled Reason = "reconciled"
)

// Reasons lists every reason, for validation and documentation.
var Reasons = []Reason{ReasonBotRequested, ReasonCustomerAsked, ReasonBotFailed, ReasonAgentTookOver,
	ReasonAgentResolved, ReasonIdleTimeout, ReasonOfferExpired, ReasonMetaEvent, ReasonReconciled}

// ParseReason checks a reason given at the API ("" stays "": the caller's
// default applies). An unknown one is an Invalid error naming field.
func ParseReason(field, s string) (Reason, error) {
	if s == "" || slices.Contains(Reasons, Reason(s)) {
		return Reason(s), nil
	}
	names := make([]string, len(Reasons))
	for i, r := range Reasons {
		names[i] = string(r)
	}
	return "", apperr.Field(field, "unknown reason %q (want one of %s)", s, strings.Join(names, ", "))
}

// MaxMetadataBytes bounds a control operation's metadata, as JSON.
const MaxMetadataBytes = 4096

// MetaMetadataMax is the length Meta allows for the metadata string of
// pass/take/request/release_thread_control.
const MetaMetadataMax = 1000

// Metadata is a control operation's caller-supplied context: a flat JSON
// object (string, number, boolean or null values), at most 4 KB.
type Metadata map[string]any

// ParseMetadata checks raw (a JSON object, or empty/null for none) and
// returns it; anything else is an Invalid error naming field.
func ParseMetadata(field string, raw []byte) (Metadata, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if len(raw) > MaxMetadataBytes {
		return nil, apperr.Field(field, "is over %d bytes", MaxMetadataBytes)
	}
	if !utf8.Valid(raw) || bytes.IndexByte(raw, 0) >= 0 {
		return nil, apperr.Field(field, "must be valid UTF-8 without NUL")
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, apperr.Field(field, "must be a JSON object")
	}
	if dec.More() {
		return nil, apperr.Field(field, "has data after the JSON object")
	}
	for k, v := range m {
		switch x := v.(type) {
		case string, bool, nil:
		case json.Number:
			f, err := x.Float64()
			if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, apperr.Field(field, "%q: number out of range", k)
			}
		default:
			return nil, apperr.Field(field, "%q: must be flat (string, number, boolean or null values, no objects or lists)", k)
		}
		if strings.ContainsRune(k, 0) {
			return nil, apperr.Field(field, "keys must not contain NUL")
		}
	}
	if len(m) == 0 {
		return nil, nil
	}
	return Metadata(m), nil
}

// JSON is the metadata as compact JSON ("" when there is none).
func (m Metadata) JSON() string {
	if len(m) == 0 {
		return ""
	}
	b, err := json.Marshal(map[string]any(m))
	if err != nil {
		return ""
	}
	return string(b)
}

// metadataFromJSON reads what JSON wrote (nil for "").
func metadataFromJSON(s string) Metadata {
	if s == "" {
		return nil
	}
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if dec.Decode(&m) != nil || len(m) == 0 {
		return nil
	}
	return Metadata(m)
}

// metaMetadata is the compact metadata string sent to Graph with a control
// call (≤ 1,000 characters): "handoverd:{direction}", then, when a reason
// was given, " {reason}" and as many of the metadata's keys (in key order)
// as fit, as compact JSON.
func metaMetadata(dir Direction, why Why) string {
	s := "handoverd:" + string(dir)
	if !why.explicit || why.Reason == "" {
		return s
	}
	s += " " + string(why.Reason)
	if len(why.Metadata) == 0 {
		return s
	}
	keys := make([]string, 0, len(why.Metadata))
	for k := range why.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fit := Metadata{}
	best := ""
	for _, k := range keys {
		fit[k] = why.Metadata[k]
		cand := s + " " + fit.JSON()
		if utf8.RuneCountInString(cand) > MetaMetadataMax {
			delete(fit, k)
			continue
		}
		best = cand
	}
	if best == "" {
		return s
	}
	return best
}

// Why is the reason and metadata a control operation records.
type Why struct {
	// Reason is the closed-enum reason.
	Reason Reason
	// Metadata is the caller's flat JSON context.
	Metadata Metadata
	// explicit: the caller gave the reason (it then also goes to Meta).
	explicit bool
}

type whyKey struct{}

// WithReason returns ctx carrying the reason and metadata of the control
// operations made with it; without one, each operation records its default
// reason.
func WithReason(ctx context.Context, reason Reason, md Metadata) context.Context {
	if reason == "" && len(md) == 0 {
		return ctx
	}
	return context.WithValue(ctx, whyKey{}, Why{Reason: reason, Metadata: md, explicit: reason != ""})
}

// whyFrom returns the reason ctx carries, else def (with ctx's metadata).
func whyFrom(ctx context.Context, def Reason) Why {
	w, _ := ctx.Value(whyKey{}).(Why)
	if w.Reason == "" {
		w.Reason = def
	}
	return w
}
