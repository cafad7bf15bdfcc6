package userlike

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParseEvents: ParseEvents never panics; every event it accepts
// survives the round trip through JSON by which relay actions are stored.
func FuzzParseEvents(f *testing.F) {
	files, err := filepath.Glob("testdata/seed/*.json")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`[` + body("message", `{"body":"a"}`) + `,` + body("bubbles", `{"text":"pick","options":[{"label":"a","value":"1"}]}`) + `]`))
	f.Add([]byte(body("conversation_update", `{"subject":"x","tags":["a"]}`)))
	f.Add([]byte(body("contact_update", `{"name":"n","email":"a@b.c"}`)))
	f.Fuzz(func(t *testing.T, b []byte) {
		events, err := ParseEvents(b)
		if err != nil {
			return
		}
		for _, ev := range events {
			stored, err := json.Marshal(ev)
			if err != nil {
				t.Fatalf("an accepted event does not encode: %v", err)
			}
			var back Event
			if err := json.Unmarshal(stored, &back); err != nil {
				t.Fatalf("a stored event does not decode: %v: %s", err, stored)
			}
			if diff := cmp.Diff(ev, back, rawEqual); diff != "" {
				t.Fatalf("round trip (-accepted +stored):\n%s", diff)
			}
		}
	})
}

// rawEqual compares JSON values; absent (nil) and null are the same.
var rawEqual = cmp.Comparer(func(a, b json.RawMessage) bool {
	norm := func(r json.RawMessage) string {
		if len(r) == 0 {
			return "null"
		}
		return string(r)
	}
	return norm(a) == norm(b)
})
