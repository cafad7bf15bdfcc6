package jsoncheck_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/internal/jsoncheck"
)

func TestValue(t *testing.T) {
	l := jsoncheck.Limits{MaxID: 8, MaxString: 16}
	tests := []struct {
		name, in string
		want     *jsoncheck.Problem
	}{
		{"object", `{"a":"x","b":[1,"y",{"c":null}]}`, nil},
		{"scalar", ` "x" `, nil},
		{"trailing object", `{"a":1}{"b":2}`, &jsoncheck.Problem{Field: "body", Message: jsoncheck.ErrTrailing}},
		{"trailing garbage", `{"a":1} xyz`, &jsoncheck.Problem{Field: "body", Message: jsoncheck.ErrTrailing}},
		{"trailing scalar", `1 2`, &jsoncheck.Problem{Field: "body", Message: jsoncheck.ErrTrailing}},
		{"nul value", `{"a":{"b":"x\u0000"}}`, &jsoncheck.Problem{Field: "a.b", Message: "contains a NUL character"}},
		{"nul key", `{"a":{"b\u0000":1}}`, &jsoncheck.Problem{Field: "a", Message: "contains a NUL character"}},
		{"invalid utf-8", "{\"a\":[\"ok\",\"\xff\"]}", &jsoncheck.Problem{Field: "a[1]", Message: "is not valid UTF-8"}},
		{"long id", `{"sender":{"id":"123456789"}}`, &jsoncheck.Problem{Field: "sender.id", Message: "is over 8 bytes"}},
		{"long id in list", `{"mids":["1","123456789"]}`, &jsoncheck.Problem{Field: "mids[1]", Message: "is over 8 bytes"}},
		{"long app id", `{"new_owner_app_id":"123456789"}`, &jsoncheck.Problem{Field: "new_owner_app_id", Message: "is over 8 bytes"}},
		{"long text", `{"text":"` + strings.Repeat("x", 17) + `"}`, &jsoncheck.Problem{Field: "text", Message: "is over 16 bytes"}},
		{"text may be longer than an id", `{"text":"123456789"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, jsoncheck.Value([]byte(tt.in), l)); diff != "" {
				t.Errorf("Value(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
	for _, bad := range []string{``, `{`, `{"a":}`, `[1,]`} {
		if p := jsoncheck.Value([]byte(bad), l); p == nil || p.Field != "body" {
			t.Errorf("Value(%q) = %v, want a body problem", bad, p)
		}
	}
	// Short texts take the fast path: the same answers.
	for in, want := range map[string]string{
		`{"a":"x\u0000"}`:  "a",
		"{\"a\":\"\xff\"}": "a",
		`{"a":1}{}`:        "body",
		`{"a":"\\u0000"}`:  "",
		`{"a":"ok"}`:       "",
	} {
		p := jsoncheck.Value([]byte(in), jsoncheck.Default)
		if got := ""; p != nil {
			got = p.Field
			if got != want {
				t.Errorf("Value(%q) names %q, want %q", in, got, want)
			}
		} else if want != "" {
			t.Errorf("Value(%q) = nil, want a problem at %q", in, want)
		}
	}
}
