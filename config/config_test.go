package config_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/config"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

var goodEnv = map[string]string{"APP_SECRET": "s3cret", "SUFFIX": "x1", "PAGE_TOKEN": "EAAB-page", "BOT_TOKEN": "bot-token-0123456789"}

func TestParseGood(t *testing.T) {
	b, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse(b, env(goodEnv))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &config.Config{
		Listen:   "127.0.0.1:9000",
		Database: "postgres://handoverd@db:5432/handoverd",
		Graph:    config.Graph{URL: "http://127.0.0.1:9090/", Version: "v21.0", Timeout: 3 * time.Second},
		App:      config.App{ID: "111", Secret: "s3cret", VerifyToken: "vt-x1"},
		Pages: []config.Page{
			{ID: "1001", AccessToken: "EAAB-page", DefaultApp: "bot", BotAppID: "222", ClientID: 1},
			{ID: "1002", AccessToken: "tok2", DefaultApp: "none", ClientID: 2},
		},
		Users: []config.User{
			{Name: "support-bot", Role: "bot", Token: "bot-token-0123456789", ClientID: 1},
			{Name: "alice", Role: "agent", TokenSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", ClientID: 1},
			{Name: "root", Role: "admin", Token: "admin-token-0123456789"},
		},
		Threads:   config.Threads{IdleAfter: 12 * time.Hour, SweepEvery: 30 * time.Second},
		Handover:  config.Handover{ControlTimeout: 2 * time.Minute, InterventionIdle: time.Hour, WorkEvery: time.Second, OfferTimeout: 5 * time.Minute},
		Reconcile: config.Reconcile{Rate: 2.5, Interval: 30 * time.Second},
		Inbox:     config.Inbox{GiveUpAfter: 24 * time.Hour, DeliveryTimeout: 10 * time.Second},
		Claims:    config.Claims{Grace: 5 * time.Second, RatePerSecond: 20, Burst: 40},
		Log:       config.Log{Level: "info"},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := c.Pages[0].DefaultAppID("111"); got != "222" {
		t.Errorf("DefaultAppID = %q", got)
	}
}

func TestParseBad(t *testing.T) {
	base := `app: {id: "111", secret: s, verify_token: v}
pages: [{id: "1001", access_token: t, client_id: 1}]
`
	tests := []struct {
		name, doc, wantKey string
	}{
		{"missing env var", strings.Replace(base, "secret: s", `secret: "${NOPE}"`, 1), "environment variables not set: app.secret needs NOPE (line 1)"},
		{"every missing env var", strings.Replace(strings.Replace(base, "secret: s", `secret: "${NOPE}"`, 1), "access_token: t", `access_token: "${NADA}"`, 1),
			"app.secret needs NOPE (line 1); pages[0].access_token needs NADA (line 2)"},
		{"unknown key", base + "listen_addr: x\n", "line 3: listen_addr: unknown key (the top level takes listen, admin_listen"},
		{"unknown nested key, its path and line", base + "\n\nusers:\n  - name: a\n    rol: agent\n", "line 7: users[0].rol: unknown key (users[0] takes name, role, token, token_sha256, client_id)"},
		{"bad duration by key path", base + "threads:\n  idle_after: a day\n", `line 4: threads.idle_after: want a duration such as 30s, 5m or 24h, got "a day"`},
		{"bad number by key path", strings.Replace(base, "client_id: 1}", "client_id: one}", 1), `line 2: pages[0].client_id: want a number, got "one"`},
		{"a list where a mapping belongs", base + "log: [info]\n", "line 3: log: want a mapping of keys (level)"},
		{"bad default_app", strings.Replace(base, "client_id: 1}", "client_id: 1, default_app: robot}", 1), "pages[0].default_app"},
		{"bot default without bot id", strings.Replace(base, "client_id: 1}", "client_id: 1, default_app: bot}", 1), "pages[0].bot_app_id"},
		{"no pages", `app: {id: "111", secret: s, verify_token: v}`, "pages: at least one"},
		{"no app id", strings.Replace(base, `id: "111", `, "", 1), "app.id"},
		{"non-numeric page", strings.Replace(base, `"1001"`, "page", 1), "pages[0].id"},
		{"bad database", base + "database: mysql://x\n", "database: must start with"},
		{"bad version", base + "graph: {version: latest}\n", "graph.version"},
		{"negative reconcile rate", base + "reconcile: {rate: -1}\n", "reconcile.rate: must be positive"},
		{"negative reconcile interval", base + "reconcile: {interval: -1m}\n", "reconcile.interval: must be positive"},
		{"bad role", base + "users: [{name: a, role: boss, token: abcdefghijklmnopq, client_id: 1}]\n", "users[0].role"},
		{"short token", base + "users: [{name: a, role: agent, token: short, client_id: 1}]\n", "users[0].token: must be at least"},
		{"bad digest", base + "users: [{name: a, role: agent, token_sha256: abc, client_id: 1}]\n", "users[0].token_sha256"},
		{"both tokens", base + "users: [{name: a, role: agent, token: abcdefghijklmnopq, token_sha256: abc, client_id: 1}]\n", "not both"},
		{"user without client", base + "users: [{name: a, role: agent, token: abcdefghijklmnopq}]\n", "users[0].client_id"},
		{"bad log level", base + "log: {level: loud}\n", "log.level"},
		{"team without name", base + "inbox: {teams: [{id: 1, account_id: 1}]}\n", "inbox.teams[0].name"},
		{"team twice", base + "inbox: {teams: [{id: 1, name: a, account_id: 1}, {id: 1, name: b, account_id: 1}]}\n", "inbox.teams[1].id"},
		{"team of unknown user", base + "inbox: {teams: [{id: 1, name: a, account_id: 1, members: [zed]}]}\n", "inbox.teams[0].members[0]"},
		{"bad public url", base + "inbox: {public_url: example.com}\n", "inbox.public_url"},
		{"bot webhook without secret", strings.Replace(base, "client_id: 1}", "client_id: 1, bot_webhook: {url: 'https://bot.example.com/h'}}", 1), "pages[0].bot_webhook.secret"},
		{"bot webhook not http", strings.Replace(base, "client_id: 1}", "client_id: 1, bot_webhook: {url: 'ftp://x', secret: k}}", 1), "pages[0].bot_webhook.url"},
		{"negative offer timeout", base + "handover: {offer_timeout: -1m}\n", "handover.offer_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.doc), env(nil))
			if err == nil || !strings.Contains(err.Error(), tt.wantKey) {
				t.Fatalf("err = %v, want one naming %q", err, tt.wantKey)
			}
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	c := config.App{ID: "1", Secret: "hunter2", VerifyToken: "tok"}
	b, _ := json.Marshal(c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c.Secret), string(b)} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "tok\"") {
			t.Errorf("secret printed: %s", s)
		}
	}
	if c.Secret.Reveal() != "hunter2" {
		t.Error("Reveal lost the value")
	}
}
