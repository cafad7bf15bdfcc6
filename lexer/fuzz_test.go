package lexer_test

import (
	"testing"
	"time"

	"github.com/handoverd/handoverd/inbox"
	"github.com/handoverd/handoverd/internal/jsoncheck"
	"github.com/handoverd/handoverd/lexer"
)

// FuzzLexerObject: the Lexer claim and echo bodies never panic the parser;
// an accepted one has a storable object id and account id and a sane time.
func FuzzLexerObject(f *testing.F) {
	for _, b := range []string{
		`{"object_id":"m_1","published_at":"2017-08-01t05:29:44Z","source":"facebook","state":"closed","account_id":"1001"}`,
		`{"object_id":"m_1","published_at":1458692752478,"source":"facebook","account_id":1001}`,
		`{"object_id":"m_1","published_at":"1e30","source":"facebook","account_id":"1001"}`,
		`{"object_id":"m\u0000","published_at":"NaN","source":"facebook","state":"closed","account_id":"1001"}{}`,
	} {
		f.Add(true, []byte(b))
		f.Add(false, []byte(b))
	}
	f.Fuzz(func(t *testing.T, claim bool, body []byte) {
		kind := inbox.KindEcho
		if claim {
			kind = inbox.KindClaim
		}
		o, err := lexer.ParseObject(kind, body)
		if err != nil {
			return
		}
		for _, s := range []string{o.ObjectID, o.AccountID} {
			if msg := jsoncheck.String(s, jsoncheck.Default.MaxID); msg != "" {
				t.Fatalf("accepted %q: %s", s, msg)
			}
		}
		if o.PublishedAt.Before(time.Date(2004, 1, 1, 0, 0, 0, 0, time.UTC)) || o.PublishedAt.Year() >= 2100 {
			t.Fatalf("accepted published_at %v", o.PublishedAt)
		}
	})
}
