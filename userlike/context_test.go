package userlike

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// contextOfSize returns a compact JSON object of exactly n bytes.
func contextOfSize(n int) string {
	return `{"k":"` + strings.Repeat("x", n-len(`{"k":""}`)) + `"}`
}

func TestMergeContext(t *testing.T) {
	old := json.RawMessage(`{"state":"name"}`)
	tests := []struct {
		name   string
		old    json.RawMessage
		update string
		want   string // "" for nil
		field  string // error field, "" for no error
		msg    string
	}{
		{"no update keeps old", old, "", `{"state":"name"}`, "", ""},
		{"null keeps old", old, "null", `{"state":"name"}`, "", ""},
		{"empty object keeps old", old, "{}", `{"state":"name"}`, "", ""},
		{"empty object with spaces keeps old", old, " { \n } ", `{"state":"name"}`, "", ""},
		{"new replaces old completely", old, `{"step":2}`, `{"step":2}`, "", ""},
		{"compacted", nil, "{ \"a\" : [ 1, 2 ] ,\n \"b\": {\"c\": null} }", `{"a":[1,2],"b":{"c":null}}`, "", ""},
		{"empty update without old", nil, "{}", "", "", ""},
		{"exactly 10 KB", nil, contextOfSize(MaxContextBytes), contextOfSize(MaxContextBytes), "", ""},
		{"10 KB counted compact", nil, strings.Replace(contextOfSize(MaxContextBytes), `"k":`, ` "k" : `, 1), contextOfSize(MaxContextBytes), "", ""},
		{"one byte over 10 KB", old, contextOfSize(MaxContextBytes + 1), "", "context", "must not be bigger than 10 KB"},
		{"a list", old, `[1,2]`, "", "context", "JSON object"},
		{"a string", old, `"state"`, "", "context", "JSON object"},
		{"a number", old, `1`, "", "context", "JSON object"},
		{"not JSON", old, `{"a":`, "", "context", "JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MergeContext(tt.old, json.RawMessage(tt.update))
			if tt.field != "" {
				if err == nil {
					t.Fatalf("MergeContext = %s, want an error", got)
				}
				field, msg := invalidField(t, err)
				if field != tt.field || !strings.Contains(msg, tt.msg) {
					t.Errorf("error = %v, want field %q and %q", err, tt.field, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want json.RawMessage
			if tt.want != "" {
				want = json.RawMessage(tt.want)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("context (-want +got):\n%s", diff)
			}
		})
	}
}

// TestContextAcrossSeedSample folds the contexts of the seed's Python sample
// the way the runtime does: each event's context in order, empty ones kept
// out.
func TestContextAcrossSeedSample(t *testing.T) {
	var ctx json.RawMessage
	want := []string{`{"state":"name"}`, `{"state":"email"}`, `{"state":"email"}`}
	for i, file := range []string{"python_start_reply.json", "python_name_reply.json", "python_email_reply.json"} {
		events, err := ParseEvents(readSeed(t, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range events {
			if ctx, err = MergeContext(ctx, ev.Context); err != nil {
				t.Fatal(err)
			}
		}
		if string(ctx) != want[i] {
			t.Errorf("after %s context = %s, want %s", file, ctx, want[i])
		}
	}
}
