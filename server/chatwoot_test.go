package server_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/handoverd/handoverd/store/storetest"
)

// convID returns the id of the only conversation listed with status.
func (h *harness) onlyConversation(status string) int {
	h.t.Helper()
	st, list := h.api(http.MethodGet, "/conversations?status="+status, nil)
	convs, _ := list["data"].(map[string]any)["payload"].([]any)
	if st != 200 || len(convs) != 1 {
		h.t.Fatalf("%s conversations = %d %v, want one", status, st, list)
	}
	return int(convs[0].(map[string]any)["id"].(float64))
}

// TestResolveWithoutInterventionGivesThreadBack: the bot passes the thread
// to the agents, nobody replies, an agent resolves the conversation: the
// thread goes back (to the bot when it is the Page's default app, else it
// is released), and the customer's next message is the bot's again.
func TestResolveWithoutInterventionGivesThreadBack(t *testing.T) {
	for _, tt := range []struct {
		defaultApp, wantOwner, nextStatus string
	}{
		{"bot", botApp, "pending"},
		{"agent", "", "open"}, // the agents are the default app: released
	} {
		t.Run(tt.defaultApp, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, b storetest.Backend) {
				h := newHarness(t, b, tt.defaultApp)
				const psid = "6201"
				h.customerSays(psid, "I want a human")
				if tt.defaultApp == "bot" {
					if err := h.bot.PassThreadControl(context.Background(), h.botPage(), psid, ourApp, "to the agents"); err != nil {
						t.Fatal(err)
					}
					h.flush()
				}
				convID := h.onlyConversation("open")
				if th, _ := h.thread(psid); th.Owner != "agent" {
					t.Fatalf("owner before resolve = %q, want agent", th.Owner)
				}
				st, res := h.api(http.MethodPost, fmt.Sprintf("/conversations/%d/toggle_status", convID), map[string]string{"status": "resolved"})
				if st != 200 || res["payload"].(map[string]any)["current_status"] != "resolved" {
					t.Fatalf("resolve = %d %v", st, res)
				}
				h.flush()
				if got := h.sim.Thread(pageID, psid).OwnerAppID; got != tt.wantOwner {
					t.Errorf("Messenger owner after resolve = %q, want %q", got, tt.wantOwner)
				}
				if th, _ := h.thread(psid); th.Owner == "agent" {
					t.Errorf("handoverd owner after resolve = %q, want the thread given back", th.Owner)
				}
				h.customerSays(psid, "one more thing")
				if n := h.onlyConversation(tt.nextStatus); n == convID {
					t.Errorf("the next message reopened conversation %d", convID)
				}
			})
		})
	}
}
