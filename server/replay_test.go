package server_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/messenger/simulator"
	"github.com/handoverd/handoverd/store/storetest"
)

// realworld is where the recorded payloads live (see its README.md).
const realworld = "../messenger/testdata/realworld"

var timeRef = regexp.MustCompile(`\{\{T([+-][0-9]+)?\}\}`)

// replay posts a recorded payload, its placeholders filled in, signed with
// our app secret, and fails unless handoverd acknowledges it.
func (h *harness) replay(file, psid string) {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(realworld, file))
	if err != nil {
		h.t.Fatal(err)
	}
	t0 := h.clock.Now().UnixMilli()
	body := timeRef.ReplaceAllStringFunc(string(b), func(ref string) string {
		off, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(ref, "{{T"), "}}"), 10, 64)
		return strconv.FormatInt(t0+off, 10)
	})
	body = strings.NewReplacer("{{PAGE_ID}}", pageID, "{{PSID}}", psid, "{{OUR_APP_ID}}", ourApp, "{{BOT_APP_ID}}", botApp,
		`"mid.`, `"mid.`+psid+"-").Replace(body) // one customer's mids are not another's
	raw := []byte(strings.TrimSpace(body))
	if status, answer := h.postWebhook(raw, "sha256="+simulator.Sign256(ourSecret, raw)); status != http.StatusOK {
		h.t.Fatalf("%s: webhook = %d %s", file, status, answer)
	}
	// Nothing was set aside as unreadable.
	if n := h.count(`SELECT count(*) FROM webhook_events WHERE psid = $1 AND outcome NOT IN ('applied', 'stale', 'duplicate')`, psid); n != 0 {
		h.t.Errorf("%s: %d events not applied", file, n)
	}
}

// conversation returns the agents' inbox view of the customer's current
// conversation: its status and its messages as "type sender: text [status]".
func (h *harness) conversation(psid string) (string, []string) {
	h.t.Helper()
	_, list := h.api(http.MethodGet, "/conversations?status=all", nil)
	payload, _ := list["data"].(map[string]any)["payload"].([]any)
	for _, c := range payload {
		c := c.(map[string]any)
		if c["psid"] != psid {
			continue
		}
		_, msgs := h.api(http.MethodGet, fmt.Sprintf("/conversations/%d/messages", int(c["id"].(float64))), nil)
		var lines []string
		for _, m := range msgs["payload"].([]any) {
			m := m.(map[string]any)
			if m["message_type"] == float64(2) { // activity
				continue
			}
			sender := ""
			if s, ok := m["sender"].(map[string]any); ok {
				sender = fmt.Sprint(s["name"])
			}
			lines = append(lines, fmt.Sprintf("%v %s: %v [%v]", m["message_type"], sender, m["content"], m["status"]))
		}
		return fmt.Sprint(c["status"]), lines
	}
	return "", nil
}

func (h *harness) owner(psid string) (handover.Owner, string) {
	h.t.Helper()
	v, st := h.thread(psid)
	if st != http.StatusOK {
		h.t.Fatalf("thread %s = %d", psid, st)
	}
	return v.Owner, v.OwnerAppID
}

// TestReplayRecordedPayloads replays, end to end through the signed webhook,
// payloads as Meta's reference, Bottender's fixtures and botbuilder-dotnet
// show them, and asserts the thread state and the inbox each produces.
func TestReplayRecordedPayloads(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		t.Run("receipts without a timestamp", func(t *testing.T) {
			h := newHarness(t, b, "bot")
			for i, delivery := range []string{"meta_message_deliveries.json", "bottender_delivery.json"} {
				psid := fmt.Sprintf("9100%d", i)
				h.replay("meta_standby_message.json", psid)
				if o, app := h.owner(psid); o != handover.OwnerBot || app != botApp {
					t.Errorf("after a standby message: owner %s %s, want bot", o, app)
				}
				h.replay("meta_message_echo.json", psid)
				h.replay(delivery, psid)
				var watermark int64
				if err := h.srv.DB().Reader().QueryRow(`SELECT delivered_watermark FROM threads WHERE psid = $1`, psid).Scan(&watermark); err != nil {
					t.Fatal(err)
				}
				if want := h.clock.Now().UnixMilli() + 2000; watermark != want {
					t.Errorf("%s: delivered watermark = %d, want %d", delivery, watermark, want)
				}
				var at int64
				if err := h.srv.DB().Reader().QueryRow(`SELECT occurred_at FROM webhook_events WHERE psid = $1 AND kind = 'delivery'`, psid).Scan(&at); err != nil || at != watermark {
					t.Errorf("%s: delivery recorded at %d (%v), want its watermark %d", delivery, at, err, watermark)
				}
				status, msgs := h.conversation(psid)
				want := []string{"0 Messenger user " + psid + ": hello, world! [sent]", "1 bot: hello, world! [delivered]"}
				if diff := cmp.Diff(want, msgs); diff != "" || status != "pending" {
					t.Errorf("%s: conversation %s (-want +got):\n%s", delivery, status, diff)
				}
			}
			h.replay("meta_message_reads.json", "91000")
			if _, msgs := h.conversation("91000"); len(msgs) != 2 || !strings.HasSuffix(msgs[1], "[read]") {
				t.Errorf("after the read receipt: %v", msgs)
			}
		})

		t.Run("take without new_owner_app_id: the default app took it", func(t *testing.T) {
			h := newHarness(t, b, "bot")
			const psid = "91010"
			h.replay("meta_pass_thread_control_old.json", psid)
			h.replay("meta_message.json", psid)
			if o, _ := h.owner(psid); o != handover.OwnerAgent {
				t.Fatalf("after the pass and a message: owner %s, want agent", o)
			}
			if status, _ := h.conversation(psid); status != "open" {
				t.Fatalf("conversation with the agents = %s, want open", status)
			}
			h.replay("bottender_take_thread_control.json", psid)
			if o, app := h.owner(psid); o != handover.OwnerBot || app != botApp {
				t.Errorf("after the take: owner %s %q, want bot %s", o, app, botApp)
			}
			if status, _ := h.conversation(psid); status != "pending" {
				t.Errorf("conversation after the bot took the thread = %s, want pending (back with the bot)", status)
			}
		})

		t.Run("take without new_owner_app_id: thread_owner asked once", func(t *testing.T) {
			h := newHarness(t, b, "agent") // handoverd is the default app: the taker is someone else, not known
			const psid = "91020"
			h.replay("meta_pass_thread_control_old.json", psid)
			h.sim.SetOwner(pageID, psid, botApp) // what Facebook knows: the bot took it
			h.sim.ResetCalls()
			h.replay("botbuilder_take_thread_control.json", psid)
			var answer string
			waitFor(t, "the thread_owner answer to be recorded", func() bool {
				_ = h.srv.DB().Reader().QueryRow(`SELECT answer FROM owner_lookups WHERE psid = $1`, psid).Scan(&answer)
				return answer != ""
			})
			if answer != "bot" {
				t.Errorf("recorded answer = %q, want bot", answer)
			}
			if o, _ := h.owner(psid); o != handover.OwnerBot {
				t.Errorf("owner after the lookup = %s, want bot", o)
			}
			v, _ := h.thread(psid)
			last := v.History[len(v.History)-1]
			if last.Cause != handover.CauseThreadOwner || last.ToAppID != botApp {
				t.Errorf("last transition = %+v, want thread_owner → %s", last, botApp)
			}
			// More work ticks ask nothing more.
			time.Sleep(100 * time.Millisecond)
			if diff := cmp.Diff([]string{"111 thread_owner"}, h.calls()); diff != "" {
				t.Errorf("Graph calls (-want +got):\n%s", diff)
			}
		})

		t.Run("Page Inbox echo and standby postback", func(t *testing.T) {
			h := newHarness(t, b, "bot")
			const psid = "91030"
			h.replay("meta_standby_message.json", psid)
			h.replay("meta_page_inbox_echo_standby.json", psid)
			if o, _ := h.owner(psid); o != handover.OwnerPageInbox {
				t.Errorf("after a Page Inbox echo: owner %s, want page_inbox", o)
			}
			const psid2 = "91031"
			h.replay("meta_postback_standby.json", psid2)
			_, msgs := h.conversation(psid2)
			if diff := cmp.Diff([]string{"0 Messenger user " + psid2 + ": Talk to a human [sent]"}, msgs); diff != "" {
				t.Errorf("standby postback in the inbox (-want +got):\n%s", diff)
			}
		})
	})
}
