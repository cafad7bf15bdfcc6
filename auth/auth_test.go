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
