package handover

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/apperr"
)

func TestParseMetadata(t *testing.T) {
	tests := []struct {
		name, raw string
		want      Metadata
		field     string // "" when accepted
	}{
		{"none", ``, nil, ""},
		{"null", `null`, nil, ""},
		{"empty object", `{}`, nil, ""},
		{"flat", `{"topic":"billing","score":0.4,"vip":true,"note":null}`, Metadata{"topic": "billing", "score": jsonNumber("0.4"), "vip": true, "note": nil}, ""},
		{"nested object", `{"a":{"b":1}}`, nil, "metadata"},
		{"list", `{"a":[1]}`, nil, "metadata"},
		{"not an object", `"text"`, nil, "metadata"},
		{"trailing data", `{"a":1} {}`, nil, "metadata"},
		{"too big", `{"a":"` + strings.Repeat("x", MaxMetadataBytes) + `"}`, nil, "metadata"},
		{"invalid UTF-8", "{\"a\":\"\xff\"}", nil, "metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMetadata("metadata", []byte(tt.raw))
			if tt.field != "" {
				if e := apperr.As(err); err == nil || e.Code != apperr.Invalid || e.Field != tt.field {
					t.Fatalf("err = %v, want invalid %s", err, tt.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if back := metadataFromJSON(got.JSON()); !cmp.Equal(back, got) {
				t.Errorf("round trip = %v, want %v", back, got)
			}
		})
	}
}

func TestParseReason(t *testing.T) {
	for _, r := range Reasons {
		if got, err := ParseReason("reason", string(r)); err != nil || got != r {
			t.Errorf("ParseReason(%s) = %s, %v", r, got, err)
		}
	}
	if _, err := ParseReason("reason", "because"); apperr.As(err).Field != "reason" {
		t.Errorf("unknown reason: err = %v, want one naming reason", err)
	}
}

// TestMetaMetadata: Graph's metadata string stays as it was without a
// given reason, and otherwise carries the reason and as many metadata
// keys as fit in Meta's 1,000 characters.
func TestMetaMetadata(t *testing.T) {
	big := Metadata{"a": "short", "b": strings.Repeat("é", 990), "c": "also short"}
	tests := []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"no reason given", context.Background(), "handoverd:to_agent"},
		{"a default reason is not sent", withWhy(context.Background(), whyFrom(context.Background(), ReasonIdleTimeout)), "handoverd:to_agent"},
		{"reason", WithReason(context.Background(), ReasonCustomerAsked, nil), "handoverd:to_agent customer_asked"},
		{"reason and metadata", WithReason(context.Background(), ReasonBotFailed, Metadata{"topic": "billing"}),
			`handoverd:to_agent bot_failed {"topic":"billing"}`},
		{"what does not fit is left out", WithReason(context.Background(), ReasonBotFailed, big),
			`handoverd:to_agent bot_failed {"a":"short","c":"also short"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := metaMetadata(ToAgent, whyFrom(tt.ctx, ReasonAgentTookOver))
			if got != tt.want {
				t.Errorf("metaMetadata = %q, want %q", got, tt.want)
			}
			if n := utf8.RuneCountInString(got); n > MetaMetadataMax {
				t.Errorf("%d characters, over Meta's %d", n, MetaMetadataMax)
			}
		})
	}
}

func jsonNumber(s string) any { return json.Number(s) }
