package handover_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/handover"
)

// modeView is what a test checks of a Page's status.
type modeView struct {
	Page         string
	Mode         handover.PageMode
	DefaultAppID string
	Source       string
	Warning      string
}

func (e *simEnv) modes() []modeView {
	e.t.Helper()
	sts, err := e.svc.PageStatuses(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	var out []modeView
	for _, st := range sts {
		out = append(out, modeView{st.Page.ID, st.Meta.Mode, st.Meta.DefaultAppID, st.Meta.Source, st.Warning})
	}
	return out
}

// TestPageModesFromAppRoles: app_roles webhooks (signed, from the
// simulated Meta) tell each Page's routing; the newest event decides, a
// redelivery changes nothing, and a configuration Meta contradicts is
// warned about.
func TestPageModesFromAppRoles(t *testing.T) {
	eachSim(t, func(t *testing.T, e *simEnv) {
		ctx := context.Background()
		setRoles := func(roles map[string][]string) {
			t.Helper()
			e.clock.Advance(time.Second)
			if err := e.sim.SetAppRoles(page, roles); err != nil {
				t.Fatal(err)
			}
			e.flush()
		}
		unknown := modeView{Page: agentPage, Mode: handover.ModeUnknown}
		var got [][]modeView
		got = append(got, e.modes())
		setRoles(map[string][]string{botApp: {"primary_receiver"}, ourApp: {"secondary_receiver"}})
		got = append(got, e.modes())
		agreed := e.sim.Deliveries(ourApp)
		setRoles(map[string][]string{ourApp: {"primary_receiver"}, botApp: {"secondary_receiver"}})
		got = append(got, e.modes())
		// Meta redelivers the older event, late: it is stored once. Older
		// evidence never rolls the mode back.
		e.sim.Deliver(ourApp, agreed[len(agreed)-1].Body)
		// And an older one it never sent before.
		e.sim.Deliver(ourApp, []byte(fmt.Sprintf(`{"object":"page","entry":[{"id":%q,"time":%d,"messaging":[{"recipient":{"id":%q},`+
			`"timestamp":%d,"app_roles":{%q:["primary_receiver"],"333":["secondary_receiver"]}}]}]}`, page, t0.UnixMilli(), page, t0.UnixMilli(), botApp)))
		e.flush()
		got = append(got, e.modes())
		setRoles(map[string][]string{botApp: {"secondary_receiver"}, ourApp: {"secondary_receiver"}})
		got = append(got, e.modes())

		want := [][]modeView{
			{{Page: page, Mode: handover.ModeUnknown}, unknown},
			{{page, handover.ModeHandoverProtocol, botApp, "app_roles", ""}, unknown},
			{{page, handover.ModeHandoverProtocol, ourApp, "app_roles",
				"page 1001: config says default_app: bot (the bot (app 222)), but Meta's app_roles make handoverd (app 111) the primary receiver"}, unknown},
			{{page, handover.ModeHandoverProtocol, ourApp, "app_roles",
				"page 1001: config says default_app: bot (the bot (app 222)), but Meta's app_roles make handoverd (app 111) the primary receiver"}, unknown},
			{{page, handover.ModeZeroConfig, "", "app_roles",
				"page 1001: config says default_app: bot (the bot (app 222)), but Meta's app_roles name no primary receiver (no default app: zero-config)"}, unknown},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("page modes (-want +got):\n%s", diff)
		}
		ws, err := e.svc.PageWarnings(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ws) != 1 || ws[0].PageID != page || !strings.Contains(ws[0].Warning, "zero-config") {
			t.Errorf("warnings %+v, want page 1001's zero-config", ws)
		}
		if err := e.svc.CheckPageModes(ctx); err != nil {
			t.Error(err)
		}
		counted := map[string]float64{}
		for _, r := range []string{"applied", "duplicate"} {
			counted[r] = testutil.ToFloat64(e.m.WebhookEvents.WithLabelValues("app_roles", r))
		}
		if diff := cmp.Diff(map[string]float64{"applied": 4, "duplicate": 1}, counted); diff != "" {
			t.Errorf("app_roles events (-want +got):\n%s", diff)
		}
	})
}

// TestPagesForPrincipal: each admin sees the Pages of their client (a
// global admin every Page), with the configured and the Meta routing,
// the threads by owner and the newest webhook's time.
func TestPagesForPrincipal(t *testing.T) {
	eachSim(t, func(t *testing.T, e *simEnv) {
		ctx := context.Background()
		e.customer(page, "a")
		e.customer(page, "b")
		e.botPasses(page, "b")
		if err := e.sim.SetAppRoles(page, map[string][]string{botApp: {"primary_receiver"}}); err != nil {
			t.Fatal(err)
		}
		e.flush()
		received := e.clock.Now()
		e.clock.Advance(time.Hour) // the view is read later

		type view struct {
			Page      string
			Config    handover.PageConfigView
			Mode      handover.PageMode
			Default   handover.Owner
			Agrees    bool
			Threads   map[handover.Owner]int
			LastHook  *time.Time
			RoleCount int
		}
		list := func(p auth.Principal) []view {
			t.Helper()
			vs, err := e.svc.PagesForPrincipal(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			out := []view{}
			for _, v := range vs {
				out = append(out, view{v.PageID, v.Config, v.Meta.Mode, v.Meta.DefaultApp, v.Agrees, v.Threads, v.LastWebhookAt, len(v.Meta.Roles)})
			}
			return out
		}
		none := map[handover.Owner]int{"agent": 0, "bot": 0, "idle": 0, "other": 0, "page_inbox": 0}
		first := view{Page: page, Config: handover.PageConfigView{DefaultApp: "bot", DefaultAppID: botApp, BotAppID: botApp},
			Mode: handover.ModeHandoverProtocol, Default: handover.OwnerBot, Agrees: true,
			Threads:  map[handover.Owner]int{"agent": 1, "bot": 1, "idle": 0, "other": 0, "page_inbox": 0},
			LastHook: &received, RoleCount: 1}
		second := view{Page: agentPage, Config: handover.PageConfigView{DefaultApp: "agent", DefaultAppID: ourApp, BotAppID: botApp},
			Mode: handover.ModeUnknown, Agrees: true, Threads: none}
		got := map[string][]view{"client 1": list(auth.Principal{Name: "ops", Role: "admin", ClientID: 1}), "everyone": list(root),
			"client 3": list(auth.Principal{Name: "x", Role: "admin", ClientID: 3})}
		want := map[string][]view{"client 1": {first}, "everyone": {first, second}, "client 3": {}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}
