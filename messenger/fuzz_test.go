package messenger_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/messenger"
)

// seedFiles adds every file matching pattern as a seed.
func seedFiles(f *testing.F, pattern string) {
	f.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds match %s: %v", pattern, err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzParseWebhook: ParseWebhook never panics; every event it accepts
// holds only storable strings and parses again, from its Raw item alone,
// into the same event.
func FuzzParseWebhook(f *testing.F) {
	seedFiles(f, "testdata/*.json")
	f.Add([]byte(`{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"timestamp":"1e30","message":{"mid":"m"}}]}]}`))
	f.Add([]byte(`{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":"2\u0000"},"timestamp":1700000000000,"message":{"mid":"m"}}]}]}{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := messenger.ParseWebhook(body)
		if err != nil {
			return
		}
		for _, ev := range b.Events {
			for _, s := range []string{ev.PageID, ev.PSID} {
				if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 || len(s) > 1024 {
					t.Fatalf("accepted an id that cannot be stored: %q", s)
				}
			}
			if y := ev.Time.Year(); !ev.Time.IsZero() && (y < 2004 || y > 2100) {
				t.Fatalf("accepted an absurd time %v", ev.Time)
			}
			var env bytes.Buffer
			enc := json.NewEncoder(&env)
			enc.SetEscapeHTML(false) // the item as received, byte for byte
			entry := map[string]any{"id": ev.PageID, string(ev.Channel): []json.RawMessage{ev.Raw}}
			if !ev.Time.IsZero() {
				entry["time"] = ev.Time.UnixMilli() // an item without a timestamp takes its entry's
			}
			if err := enc.Encode(map[string]any{"object": "page", "entry": []any{entry}}); err != nil {
				t.Fatal(err)
			}
			again, err := messenger.ParseWebhook(env.Bytes())
			if err != nil || len(again.Events) != 1 {
				t.Fatalf("the accepted item %s does not parse again: %v %+v", ev.Raw, err, again)
			}
			a := again.Events[0]
			a.Raw, ev.Raw = compact(t, a.Raw), compact(t, ev.Raw)
			if diff := cmp.Diff(ev, a); diff != "" {
				t.Fatalf("round trip (-first +again):\n%s", diff)
			}
		}
	})
}

func compact(t *testing.T, raw json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		t.Fatalf("Raw is not JSON: %v", err)
	}
	return buf.Bytes()
}

// BenchmarkParseWebhook parses a 100-message batch (the edge checks included).
func BenchmarkParseWebhook(b *testing.B) {
	var items []string
	for i := range 100 {
		items = append(items, `{"sender":{"id":"5001"},"recipient":{"id":"1001"},"timestamp":1700000000000,"message":{"mid":"m_`+strings.Repeat("x", 60)+string(rune('a'+i%26))+`","text":"`+strings.Repeat("hello ", 30)+`"}}`)
	}
	body := []byte(`{"object":"page","entry":[{"id":"1001","time":1700000000000,"messaging":[` + strings.Join(items, ",") + `]}]}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := messenger.ParseWebhook(body); err != nil {
			b.Fatal(err)
		}
	}
}
