package console_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/console"
	"github.com/handoverd/handoverd/internal/clocktest"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/store/storetest"
)

var (
	users = []config.User{
		{Name: "alice", Role: config.RoleAgent, Token: "alice-token-0123456789", ClientID: 1},
		{Name: "bob", Role: config.RoleAdmin, Token: "bob-token-0123456789", ClientID: 1},
		{Name: "carol", Role: config.RoleAgent, Token: "carol-token-0123456789", ClientID: 2},
		{Name: "root", Role: config.RoleAdmin, Token: "root-token-0123456789"},
		{Name: "bot", Role: config.RoleBot, Token: "bot-token-0123456789", ClientID: 1},
	}
	pages = []config.Page{{ID: "1001", ClientID: 1}, {ID: "1002", ClientID: 1}, {ID: "2001", ClientID: 2}}
	start = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
)

func newConsole(t *testing.T, db *store.DB, clock *clocktest.Fake, cfg []config.User) *console.Console {
	t.Helper()
	u, err := auth.NewUsers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return console.New(console.Options{DB: db, Users: u, Config: cfg, Pages: pages, Now: clock.Now})
}

// TestSessionsSeeTheirClient signs each kind of user in and checks what the
// page learns: an agent and an admin of a client see that client's Pages
// and agents, an admin without a client sees every Page.
func TestSessionsSeeTheirClient(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		db := b.Open(t)
		ctx := context.Background()
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			for _, n := range []string{"alice", "bob", "carol", "root"} {
				if _, err := tx.ExecContext(ctx, `INSERT INTO agents (name) VALUES ($1)`, n); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		clock := clocktest.New(start)
		c := newConsole(t, db, clock, users)
		type view struct {
			Role     string
			Accounts []console.AccountView
			Agents   []string
			Mine     bool
		}
		cases := []struct {
			token string
			want  view
		}{
			{"alice-token-0123456789", view{"agent", []console.AccountView{{ID: 1, Pages: []string{"1001", "1002"}}}, []string{"alice", "bob", "root"}, true}},
			{"bob-token-0123456789", view{"admin", []console.AccountView{{ID: 1, Pages: []string{"1001", "1002"}}}, []string{"alice", "bob", "root"}, true}},
			{"carol-token-0123456789", view{"agent", []console.AccountView{{ID: 2, Pages: []string{"2001"}}}, []string{"carol", "root"}, true}},
			{"root-token-0123456789", view{"admin", []console.AccountView{{ID: 1, Pages: []string{"1001", "1002"}}, {ID: 2, Pages: []string{"2001"}}},
				[]string{"alice", "bob", "carol", "root"}, true}},
		}
		for _, tc := range cases {
			s, id, err := c.SignIn(ctx, tc.token)
			if err != nil {
				t.Fatalf("SignIn(%s): %v", tc.token, err)
			}
			back, err := c.Lookup(ctx, id)
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			v, err := c.View(ctx, back)
			if err != nil {
				t.Fatal(err)
			}
			got := view{Role: v.Role, Accounts: v.Accounts, Mine: v.AgentID != 0 && v.CSRFToken == s.CSRF && v.ServerTime.Equal(start)}
			for _, a := range v.Agents {
				got.Agents = append(got.Agents, a.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", s.Principal.Name, diff)
			}
		}
	})
}

// TestSignInRefusals: no token, a wrong token and a bot's token open no
// session, each with its reason; sessions end at their lifetime and when
// their user leaves the configuration; sign-out ends one session only.
func TestSignInRefusals(t *testing.T) {
	db := storetest.SQLite(t).Open(t)
	ctx := context.Background()
	clock := clocktest.New(start)
	c := newConsole(t, db, clock, users)
	type refusal struct{ Code, Field, Message string }
	cases := []struct {
		token string
		want  refusal
	}{
		{"", refusal{"invalid", "token", "is required: paste your agent API token"}},
		{"  ", refusal{"invalid", "token", "is required: paste your agent API token"}},
		{"nope-nope-nope", refusal{"unauthorized", "token", "this token is not a handoverd user's token"}},
		{"bot-token-0123456789", refusal{"forbidden", "token", "only agents and admins can sign in to the console"}},
	}
	for _, tc := range cases {
		_, _, err := c.SignIn(ctx, tc.token)
		e := apperr.As(err)
		if diff := cmp.Diff(tc.want, refusal{string(e.Code), e.Field, e.Message}); diff != "" {
			t.Errorf("SignIn(%q) (-want +got):\n%s", tc.token, diff)
		}
	}
	var n int
	if err := db.Reader().QueryRow(`SELECT count(*) FROM console_sessions`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("refused sign-ins left %d sessions (%v)", n, err)
	}

	_, first, err := c.SignIn(ctx, "alice-token-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	_, second, err := c.SignIn(ctx, "alice-token-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SignOut(ctx, first); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(ctx, first); apperr.CodeOf(err) != apperr.Unauthorized {
		t.Errorf("a signed-out session: Lookup = %v", err)
	}
	if _, err := c.Lookup(ctx, second); err != nil {
		t.Errorf("signing out one session ended another: %v", err)
	}
	// Alice leaves the configuration: her session opens nothing.
	without := newConsole(t, db, clock, users[1:])
	if _, err := without.Lookup(ctx, second); apperr.CodeOf(err) != apperr.Unauthorized {
		t.Errorf("a removed user's session: Lookup = %v", err)
	}
	clock.Advance(console.DefaultTTL - time.Second)
	if _, err := c.Lookup(ctx, second); err != nil {
		t.Errorf("a session before its end: %v", err)
	}
	clock.Advance(time.Second)
	if _, err := c.Lookup(ctx, second); apperr.CodeOf(err) != apperr.Unauthorized {
		t.Errorf("an expired session: Lookup = %v", err)
	}
	// The next sign-in sweeps expired sessions away.
	if _, _, err := c.SignIn(ctx, "bob-token-0123456789"); err != nil {
		t.Fatal(err)
	}
	if err := db.Reader().QueryRow(`SELECT count(*) FROM console_sessions`).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d sessions after the sweep, want 1 (%v)", n, err)
	}
}
