package auth_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/config"
)

func TestGrantAuthenticatesUntilRevoked(t *testing.T) {
	users, err := auth.NewUsers([]config.User{{Name: "alice", Role: config.RoleAgent, Token: "alice-token-0123456789", ClientID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	alice, ok := users.ByName("alice")
	if !ok {
		t.Fatal("ByName(alice) found nobody")
	}
	if _, ok := users.ByName("bob"); ok {
		t.Error("ByName(bob) found someone")
	}
	token, revoke := users.Grant(alice)
	other, revokeOther := users.Grant(alice)
	defer revokeOther()
	if token == other {
		t.Error("two grants share a credential")
	}
	got, err := users.Require(token, config.RoleAgent)
	if err != nil {
		t.Fatalf("Require(grant) = %v", err)
	}
	if diff := cmp.Diff(alice, got); diff != "" {
		t.Errorf("grant principal (-want +got):\n%s", diff)
	}
	if _, err := users.Require(token, config.RoleBot); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("a grant keeps its user's role: Require(bot) = %v", err)
	}
	revoke()
	if _, err := users.Authenticate(token); apperr.CodeOf(err) != apperr.Unauthorized {
		t.Errorf("revoked grant: Authenticate = %v, want unauthorized", err)
	}
	if _, err := users.Authenticate(other); err != nil {
		t.Errorf("revoking one grant ended another: %v", err)
	}
}

// TestPrincipalPage: a caller acts on a configured Page of its own client
// (an admin without a client on any); another client's Page is
// Forbidden, an unknown one NotFound.
func TestPrincipalPage(t *testing.T) {
	pages := map[string]config.Page{"p1": {ID: "p1", ClientID: 1}, "p2": {ID: "p2", ClientID: 2}}
	agent := auth.Principal{Name: "alice", Role: config.RoleAgent, ClientID: 1}
	admin := auth.Principal{Name: "root", Role: config.RoleAdmin}
	for _, tc := range []struct {
		p        auth.Principal
		page     string
		wantID   string
		wantCode apperr.Code
	}{
		{agent, "p1", "p1", ""},
		{agent, "p2", "", apperr.Forbidden},
		{agent, "p3", "", apperr.NotFound},
		{admin, "p2", "p2", ""},
	} {
		page, err := tc.p.Page(pages, tc.page)
		if diff := cmp.Diff([]any{tc.wantID, tc.wantCode}, []any{page.ID, apperr.CodeOf(err)}); diff != "" {
			t.Errorf("%s on %s (-want +got):\n%s", tc.p.Name, tc.page, diff)
		}
	}
}
