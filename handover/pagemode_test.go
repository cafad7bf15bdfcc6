package handover

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/config"
)

// TestDetectMode: the newer evidence decides; app_roles with a primary
// receiver are the Handover Protocol, without one zero-config; a
// thread_owner answer showing the default app is Conversation Routing.
func TestDetectMode(t *testing.T) {
	t1, t2 := time.UnixMilli(1000), time.UnixMilli(2000)
	primary := map[string][]string{"333": {"primary_receiver"}, "111": {"secondary_receiver"}}
	secondary := map[string][]string{"222": {"secondary_receiver"}}
	tests := []struct {
		name     string
		roles    map[string][]string
		rolesAt  *time.Time
		graphApp string
		graphAt  *time.Time
		want     MetaRouting
	}{
		{"nothing seen", nil, nil, "", nil, MetaRouting{Mode: ModeUnknown}},
		{"primary receiver", primary, &t1, "", nil, MetaRouting{Mode: ModeHandoverProtocol, DefaultAppID: "333", Roles: primary, Source: "app_roles", LearnedAt: &t1}},
		{"no primary receiver", secondary, &t1, "", nil, MetaRouting{Mode: ModeZeroConfig, Roles: secondary, Source: "app_roles", LearnedAt: &t1}},
		{"thread_owner only", nil, nil, "111", &t1, MetaRouting{Mode: ModeConversationRouting, DefaultAppID: "111", Source: "thread_owner", LearnedAt: &t1}},
		{"thread_owner newer", primary, &t1, "111", &t2, MetaRouting{Mode: ModeConversationRouting, DefaultAppID: "111", Roles: primary, Source: "thread_owner", LearnedAt: &t2}},
		{"app_roles newer", primary, &t2, "111", &t1, MetaRouting{Mode: ModeHandoverProtocol, DefaultAppID: "333", Roles: primary, Source: "app_roles", LearnedAt: &t2}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, detectMode(tt.roles, tt.rolesAt, tt.graphApp, tt.graphAt)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

// TestDisagreement: the configured default app against the one Meta shows.
func TestDisagreement(t *testing.T) {
	s := &Service{appID: "111"}
	bot := config.Page{ID: "1001", DefaultApp: config.DefaultAppBot, BotAppID: "222"}
	none := config.Page{ID: "1002", DefaultApp: config.DefaultAppNone, BotAppID: "222"}
	agent := config.Page{ID: "1003", DefaultApp: config.DefaultAppAgent}
	tests := []struct {
		name string
		page config.Page
		meta MetaRouting
		want string
	}{
		{"unknown never disagrees", bot, MetaRouting{Mode: ModeUnknown}, ""},
		{"bot primary, config bot", bot, MetaRouting{Mode: ModeHandoverProtocol, DefaultAppID: "222"}, ""},
		{"other primary, config bot", bot, MetaRouting{Mode: ModeHandoverProtocol, DefaultAppID: "333"},
			"page 1001: config says default_app: bot (the bot (app 222)), but Meta's app_roles make app 333 the primary receiver"},
		{"zero-config, config bot", bot, MetaRouting{Mode: ModeZeroConfig},
			"page 1001: config says default_app: bot (the bot (app 222)), but Meta's app_roles name no primary receiver (no default app: zero-config)"},
		{"zero-config, config none", none, MetaRouting{Mode: ModeZeroConfig}, ""},
		{"bot primary, config none", none, MetaRouting{Mode: ModeHandoverProtocol, DefaultAppID: "222"},
			"page 1002: config says default_app: none, but Meta's app_roles make the bot (app 222) the primary receiver"},
		{"handoverd default, config agent", agent, MetaRouting{Mode: ModeConversationRouting, DefaultAppID: "111"}, ""},
		{"Page Inbox primary, config agent", agent, MetaRouting{Mode: ModeHandoverProtocol, DefaultAppID: config.PageInboxAppID},
			"page 1003: config says default_app: agent (handoverd (app 111)), but Meta's app_roles make the Page Inbox (app 263902037430900) the primary receiver"},
	}
	for _, tt := range tests {
		if got := s.disagreement(tt.page, tt.meta); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}
