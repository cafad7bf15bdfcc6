package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/server"
	"github.com/handoverd/handoverd/store/storetest"
)

// interventionMessages lists an intervention's agent messages.
func (h *harness) interventionMessages(id int64) []handover.AgentMessageView {
	h.t.Helper()
	var msgs []handover.AgentMessageView
	if st := h.agentJSON(http.MethodGet, fmt.Sprintf("/1.0/interventions/%d/messages", id), nil, &msgs); st != 200 {
		h.t.Fatalf("list messages of %d = %d", id, st)
	}
	return msgs
}

// openAgentThread has the customer write and an agent open an
// intervention the (cooperative) bot passes control for.
func (h *harness) openAgentThread(psid string) handover.InterventionView {
	h.t.Helper()
	h.customerSays(psid, "hi")
	var iv handover.InterventionView
	if st := h.agentJSON(http.MethodPost, "/1.0/interventions", map[string]string{"identity_foreign_id": psid}, &iv); st != 201 {
		h.t.Fatalf("open intervention on %s = %d", psid, st)
	}
	h.flush()
	if v, _ := h.thread(psid); v.Owner != handover.OwnerAgent {
		h.t.Fatalf("owner of %s = %s, want agent", psid, v.Owner)
	}
	return iv
}

// longTimeouts restarts handoverd with a Graph timeout no held call reaches.
func (h *harness) longTimeouts() {
	h.t.Helper()
	h.cfg.Graph.Timeout = time.Minute
	h.restart()
}

// sendGate holds handoverd's Send API calls in flight until released.
type sendGate struct {
	entered chan string // the recipient of each held send
	release chan struct{}
	once    sync.Once
}

// releaseAll lets every held send, and every later one, through.
func (g *sendGate) releaseAll() { g.once.Do(func() { close(g.release) }) }

// holdSends installs a sendGate. Held sends count against the Graph
// client's timeout, so the test's handoverd must have a long one
// (longTimeouts).
func (h *harness) holdSends() *sendGate {
	g := &sendGate{entered: make(chan string, 16), release: make(chan struct{})}
	hook := func(r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/messages") {
			return
		}
		var to struct{ ID string }
		_ = json.Unmarshal([]byte(requestForm(r).Get("recipient")), &to)
		g.entered <- to.ID
		<-g.release
	}
	h.graphHook.Store(&hook)
	h.t.Cleanup(g.releaseAll) // a failed test holds nothing
	return g
}

// requestForm returns the form of a Graph request handoverd is about to
// send, leaving the request as it is: parsing r itself would consume the
// body the transport has yet to send (a held send would then go out
// empty and fail as unanswered).
func requestForm(r *http.Request) url.Values {
	form := r.URL.Query()
	var raw []byte
	switch {
	case r.GetBody != nil:
		if body, err := r.GetBody(); err == nil {
			raw, _ = io.ReadAll(body)
			body.Close()
		}
	case r.Body != nil:
		raw, _ = io.ReadAll(r.Body)
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(raw))
	}
	if post, err := url.ParseQuery(string(raw)); err == nil {
		for k, vs := range post {
			form[k] = append(form[k], vs...)
		}
	}
	return form
}

// TestClosingCancelsQueuedMessages: an agent message waiting for control
// is cancelled, with the reason, when its intervention closes — even if
// the bot passes control afterwards it never reaches the customer.
func TestClosingCancelsQueuedMessages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		const psid = "7101"
		h.customerSays(psid, "hi")
		h.botPasses.Store(false)
		var iv handover.InterventionView
		h.agentJSON(http.MethodPost, "/1.0/interventions", map[string]string{"identity_foreign_id": psid}, &iv)
		var msg handover.AgentMessageView
		if st := h.agentJSON(http.MethodPost, fmt.Sprintf("/1.0/interventions/%d/messages", iv.ID), map[string]string{"text": "one moment"}, &msg); st != 202 {
			t.Fatalf("send = %d %+v", st, msg)
		}
		if st := h.agentJSON(http.MethodPut, fmt.Sprintf("/1.0/interventions/%d/close", iv.ID), nil, &iv); st != 200 {
			t.Fatalf("close = %d", st)
		}
		msgs := h.interventionMessages(iv.ID)
		if len(msgs) != 1 || msgs[0].Status != "failed" || !strings.HasPrefix(msgs[0].Error, "cancelled: ") {
			t.Fatalf("after close: %+v, want the message failed as cancelled", msgs)
		}
		// The bot passes control anyway: nothing of the closed intervention goes out.
		if err := h.bot.PassThreadControl(context.Background(), h.botPage(), psid, ourApp, ""); err != nil {
			t.Fatal(err)
		}
		h.flush()
		if _, err := h.srv.Handover().SendDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := h.sim.Inbox(pageID, psid); len(got) != 0 {
			t.Errorf("the customer received %+v after the intervention closed", got)
		}
		// Sending to the closed intervention is refused.
		if st := h.agentJSON(http.MethodPost, fmt.Sprintf("/1.0/interventions/%d/messages", iv.ID), map[string]string{"text": "late"}, nil); st != http.StatusConflict {
			t.Errorf("send to a closed intervention = %d, want 409", st)
		}
	})
}

// TestHandBackSettlesQueuedMessages: while the sender is busy with other
// conversations, an intervention closes; its queued message, which the
// sender had already listed as due, is cancelled rather than sent after
// the thread went back to the bot, and handoverd does not ask for control
// back. A message being sent when a close starts finishes first; the pass
// follows it.
func TestHandBackSettlesQueuedMessages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		h.longTimeouts()
		const pa, pb, pc, pd = "7201", "7202", "7203", "7204"
		ivA, ivB, ivC, ivD := h.openAgentThread(pa), h.openAgentThread(pb), h.openAgentThread(pc), h.openAgentThread(pd)

		gate := h.holdSends()
		var wg sync.WaitGroup
		send := func(iv handover.InterventionView, text string) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h.agentJSON(http.MethodPost, fmt.Sprintf("/1.0/interventions/%d/messages", iv.ID), map[string]string{"text": text}, nil)
			}()
		}
		send(ivC, "for C")
		if got := <-gate.entered; got != pc {
			t.Fatalf("first held send to %s, want %s", got, pc)
		}
		// A and B queue up while the sender is busy with C.
		send(ivA, "for A")
		waitFor(t, "A's message queued", func() bool { return h.count(`SELECT count(*) FROM agent_messages WHERE status = 'waiting'`) == 2 })
		send(ivB, "for B")
		waitFor(t, "B's message queued", func() bool { return h.count(`SELECT count(*) FROM agent_messages WHERE status = 'waiting'`) == 3 })
		gate.release <- struct{}{}
		if got := <-gate.entered; got != pa {
			t.Fatalf("second held send to %s, want %s", got, pa)
		}
		// With A's send in flight (B listed next), B's intervention closes.
		h.sim.ResetCalls()
		if st := h.agentJSON(http.MethodPut, fmt.Sprintf("/1.0/interventions/%d/close", ivB.ID), nil, nil); st != 200 {
			t.Fatalf("close B = %d", st)
		}
		hook := func(*http.Request) {}
		h.graphHook.Store(&hook) // nothing is held any more
		gate.release <- struct{}{}
		waitFor(t, "A's message sent", func() bool { m := h.interventionMessages(ivA.ID); return len(m) == 1 && m[0].Status == "sent" })
		waitFor(t, "B's message settled", func() bool { m := h.interventionMessages(ivB.ID); return len(m) == 1 && m[0].Status != "waiting" })
		if m := h.interventionMessages(ivB.ID)[0]; m.Status != "failed" || !strings.HasPrefix(m.Error, "cancelled: ") {
			t.Errorf("B's message = %s %q, want failed as cancelled", m.Status, m.Error)
		}
		if got := h.sim.Inbox(pageID, pb); len(got) != 0 {
			t.Errorf("B's customer received %+v after the hand-back", got)
		}
		for _, c := range h.sim.Calls() {
			if c.PSID == pb && c.AppID == ourApp && c.Op != "pass_thread_control" {
				t.Errorf("after the hand-back handoverd called %s on B", c.Op)
			}
		}
		h.flush()
		if v, _ := h.thread(pb); v.Owner != handover.OwnerBot || v.PendingRequest != nil {
			t.Errorf("B: owner %s pending %+v, want the bot's and nothing pending", v.Owner, v.PendingRequest)
		}
		if sim := h.sim.Thread(pageID, pb).OwnerAppID; sim != botApp {
			t.Errorf("Facebook's owner of B = %q, want the bot", sim)
		}

		// D: a close that starts while D's message is in flight waits for it.
		gate = h.holdSends()
		h.sim.ResetCalls()
		send(ivD, "for D")
		if got := <-gate.entered; got != pd {
			t.Fatalf("held send to %s, want %s", got, pd)
		}
		closed := make(chan int, 1)
		go func() {
			closed <- h.agentJSON(http.MethodPut, fmt.Sprintf("/1.0/interventions/%d/close", ivD.ID), nil, nil)
		}()
		waitFor(t, "D's hand-back recorded", func() bool {
			return h.count(`SELECT count(*) FROM control_ops WHERE psid = $1 AND status = 'in_flight'`, pd) == 1
		})
		gate.release <- struct{}{}
		if st := <-closed; st != 200 {
			t.Fatalf("close D = %d", st)
		}
		wg.Wait()
		if m := h.interventionMessages(ivD.ID); len(m) != 1 || m[0].Status != "sent" {
			t.Errorf("D's message = %+v, want sent", m)
		}
		var ops []string
		for _, c := range h.sim.Calls() {
			if c.PSID == pd {
				ops = append(ops, fmt.Sprintf("%s %s %d", c.AppID, c.Op, c.HTTPStatus))
			}
		}
		if want := []string{"111 send 200", "111 pass_thread_control 200"}; fmt.Sprint(ops) != fmt.Sprint(want) {
			t.Errorf("Graph calls on D = %v, want %v", ops, want)
		}
	})
}

// replica starts a second handoverd process on the harness's database,
// with the same configuration and Graph transport, and returns its URL.
func (h *harness) replica() string {
	h.t.Helper()
	srv, err := server.New(context.Background(), server.Options{Config: h.cfg, Logger: zerolog.New(h.logs).Level(zerolog.DebugLevel),
		Clock: h.clock.Paced(), GraphRetry: messenger.Retry{Initial: time.Millisecond, Max: 5 * time.Millisecond}, GraphTransport: delayTransport{h}})
	if err != nil {
		h.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	h.t.Cleanup(func() { cancel(); <-done; srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestHandBackAcrossReplicas: two processes share the database. While one
// of them is sending an agent message, the other closes the intervention:
// the pass waits for the send, the message goes out once, before the
// pass, and handoverd does not ask for control back. A message queued
// while both senders are busy is cancelled by a close on either process.
func TestHandBackAcrossReplicas(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		h.longTimeouts()
		other := h.replica()
		const px, py, pz = "7601", "7602", "7603"
		ivX, ivY, ivZ := h.openAgentThread(px), h.openAgentThread(py), h.openAgentThread(pz)
		gate := h.holdSends()
		h.sim.ResetCalls()
		var wg sync.WaitGroup
		sendVia := func(base string, iv handover.InterventionView, text string) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body, _ := json.Marshal(map[string]string{"text": text})
				req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/1.0/interventions/%d/messages", base, iv.ID), strings.NewReader(string(body)))
				req.Header.Set("Authorization", "Bearer "+agentToken)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}()
		}
		closeVia := func(base string, iv handover.InterventionView) int {
			req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/1.0/interventions/%d/close", base, iv.ID), nil)
			req.Header.Set("Authorization", "Bearer "+agentToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return 0
			}
			resp.Body.Close()
			return resp.StatusCode
		}

		// X: a sender (on either process) holds X's message in flight; the
		// other process's close must wait for it.
		sendVia(h.url, ivX, "for X")
		if got := <-gate.entered; got != px {
			t.Fatalf("held send to %s, want %s", got, px)
		}
		closed := make(chan int, 1)
		go func() { closed <- closeVia(other, ivX) }()
		waitFor(t, "X's hand-back recorded", func() bool {
			return h.count(`SELECT count(*) FROM control_ops WHERE psid = $1 AND status = 'in_flight'`, px) == 1
		})
		// Y: the other sender is kept busy too, then a message is queued.
		sendVia(other, ivZ, "for Z")
		if got := <-gate.entered; got != pz {
			t.Fatalf("held send to %s, want %s", got, pz)
		}
		sendVia(h.url, ivY, "for Y")
		waitFor(t, "Y's message queued", func() bool {
			return h.count(`SELECT count(*) FROM agent_messages WHERE psid = $1 AND status = 'waiting'`, py) == 1
		})
		if st := closeVia(other, ivY); st != 200 {
			t.Fatalf("close Y = %d", st)
		}
		gate.releaseAll()
		hook := func(*http.Request) {}
		h.graphHook.Store(&hook)
		if st := <-closed; st != 200 {
			t.Fatalf("close X = %d", st)
		}
		wg.Wait()
		h.flush()

		if m := h.interventionMessages(ivX.ID); len(m) != 1 || m[0].Status != "sent" {
			t.Errorf("X's message = %+v, want sent", m)
		}
		if m := h.interventionMessages(ivY.ID); len(m) != 1 || m[0].Status != "failed" || !strings.HasPrefix(m[0].Error, "cancelled: ") {
			t.Errorf("Y's message = %+v, want failed as cancelled", m)
		}
		ops := map[string][]string{}
		for _, c := range h.sim.Calls() {
			if c.AppID == ourApp {
				ops[c.PSID] = append(ops[c.PSID], fmt.Sprintf("%s %d", c.Op, c.HTTPStatus))
			}
		}
		want := map[string][]string{
			px: {"send 200", "pass_thread_control 200"},
			py: {"pass_thread_control 200"},
			pz: {"send 200"},
		}
		if diff := cmp.Diff(want, ops); diff != "" {
			t.Errorf("Graph calls by handoverd (-want +got):\n%s", diff)
		}
		for _, p := range []string{px, py} {
			if sim := h.sim.Thread(pageID, p).OwnerAppID; sim != botApp {
				t.Errorf("%s: Facebook's owner = %q, want the bot", p, sim)
			}
			if v, _ := h.thread(p); v.PendingRequest != nil {
				t.Errorf("%s: a request for control is pending after the close: %+v", p, v.PendingRequest)
			}
		}
		// (X's send echo and the pass carry the same fake-clock millisecond,
		// so handoverd's view of X's owner is not asserted; Y's is.)
		if v, _ := h.thread(py); v.Owner != handover.OwnerBot {
			t.Errorf("%s: owner %s, want the bot's", py, v.Owner)
		}
	})
}

// TestResolvingCancelsQueuedReply: an agent's inbox reply waiting for
// thread control is cancelled when the conversation is resolved; the inbox
// shows it failed with the reason, and it never reaches the customer.
func TestResolvingCancelsQueuedReply(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		const psid = "7801"
		h.customerSays(psid, "my order is late")
		h.botPasses.Store(false)
		_, list := h.api(http.MethodGet, "/conversations?status=pending", nil)
		convID := int(list["data"].(map[string]any)["payload"].([]any)[0].(map[string]any)["id"].(float64))
		if st, reply := h.api(http.MethodPost, fmt.Sprintf("/conversations/%d/messages", convID), map[string]any{"content": "Looking into it", "message_type": "outgoing"}); st != 200 {
			t.Fatalf("reply = %d %v", st, reply)
		}
		if st, res := h.api(http.MethodPost, fmt.Sprintf("/conversations/%d/toggle_status", convID), map[string]string{"status": "resolved"}); st != 200 {
			t.Fatalf("resolve = %d %v", st, res)
		}
		var status, reason string
		_, msgs := h.api(http.MethodGet, fmt.Sprintf("/conversations/%d/messages", convID), nil)
		for _, m := range msgs["payload"].([]any) {
			mm := m.(map[string]any)
			if mm["content"] == "Looking into it" {
				status, _ = mm["status"].(string)
				if attrs, ok := mm["content_attributes"].(map[string]any); ok {
					reason, _ = attrs["external_error"].(string)
				}
			}
		}
		if status != "failed" || !strings.HasPrefix(reason, "cancelled: ") {
			t.Errorf("the queued reply after resolving: status %q, external_error %q; want failed, cancelled: …", status, reason)
		}
		// The bot passes anyway: nothing goes out.
		if err := h.bot.PassThreadControl(context.Background(), h.botPage(), psid, ourApp, ""); err != nil {
			t.Fatal(err)
		}
		h.flush()
		if _, err := h.srv.Handover().SendDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := h.sim.Inbox(pageID, psid); len(got) != 0 {
			t.Errorf("the customer received %+v after the conversation was resolved", got)
		}
	})
}
