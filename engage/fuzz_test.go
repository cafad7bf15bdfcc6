package engage_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/engage"
	"github.com/handoverd/handoverd/httpapi"
	"github.com/handoverd/handoverd/internal/jsoncheck"
)

// FuzzEngageHandoverParams: the Engage handover's query, checked at the
// edge and parsed, never panics; an accepted request holds only storable
// values and survives encoding it back into a query.
func FuzzEngageHandoverParams(f *testing.F) {
	for _, q := range []string{
		"access_token=bot-token&identity_foreign_id=5001&from=bot&to=agent&type=messenger",
		"access_token=t&identity_foreign_id=5001&from=agent&to=bot&app_id=222&page_id=1001",
		"identity_foreign_id=%00&from=bot&to=agent",
		"identity_foreign_id=%FF&from=agent&to=bot&app_id=x",
		"from=bot&to=bot&type=whatsapp",
		"access_token=t&identity_foreign_id=5001&from=bot&to=agent&mode=offer&reason=customer_asked&metadata=%7B%22topic%22%3A%22billing%22%7D",
		"identity_foreign_id=5001&from=bot&to=agent&metadata=%7B%22a%22%3A%7B%7D%7D&reason=nope&mode=later",
		"identity_foreign_id=5001&from=bot&to=agent&metadata=%7B%22%5Cu0000%22%3A1%7D",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := &http.Request{Method: http.MethodPost, URL: &url.URL{Path: "/1.0/bots/handover", RawQuery: raw}}
		if httpapi.CheckInput(r, nil) != nil {
			return
		}
		token, req := engage.ParseQuery(r.URL.Query())
		if req.Validate() != nil {
			return
		}
		for _, v := range []string{token, req.PSID, req.From, req.To, req.Type, req.AppID, req.PageID, req.Mode, req.Reason} {
			if msg := jsoncheck.String(v, 1024); msg != "" {
				t.Fatalf("accepted a value that cannot be stored (%s): %q", msg, v)
			}
		}
		againToken, again := engage.ParseQuery(mustParse(t, engage.Query(token, req).Encode()))
		if diff := cmp.Diff(req, again); diff != "" {
			t.Fatalf("round trip (-accepted +again):\n%s", diff)
		}
		if againToken != token {
			t.Fatalf("round trip: token %q came back as %q", token, againToken)
		}
		if err := again.Validate(); err != nil {
			t.Fatalf("the re-encoded request is refused: %v", err)
		}
	})
}

func mustParse(t *testing.T, q string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
