package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/store/storetest"
)

// TestCustomerIDsAreEncoded: a PSID with JSON's special characters is
// stored as data in the contact's attributes, never as JSON syntax.
func TestCustomerIDsAreEncoded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		for _, psid := range []string{`x"},"injected":{"a":"1`, `back\slash`, "tab\there", `quote"d`} {
			h.customerSays(psid, "hi")
			var raw string
			if err := h.srv.DB().Reader().QueryRow(`SELECT additional_attributes FROM contacts WHERE identifier = $1`, psid).Scan(&raw); err != nil {
				t.Fatalf("contact of %q: %v", psid, err)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(raw), &got); err != nil {
				t.Fatalf("attributes of %q are not JSON: %v: %s", psid, err, raw)
			}
			want := map[string]any{"social_profiles": map[string]any{"facebook": psid}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("attributes of %q (-want +got):\n%s", psid, diff)
			}
			if n := h.count(`SELECT count(*) FROM conversations WHERE psid = $1`, psid); n != 1 {
				t.Errorf("conversations of %q = %d, want 1", psid, n)
			}
		}
		if st, _ := h.api(http.MethodGet, "/conversations", nil); st != 200 {
			t.Errorf("list conversations = %d", st)
		}
	})
}
