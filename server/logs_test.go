package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/messenger/simulator"
	"github.com/handoverd/handoverd/store/storetest"
)

// logLines decodes the harness's JSON log lines.
func (h *harness) logLines() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(h.logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// TestLogsSayWhatHappened: probes and scrapes log at debug, other requests
// at info with a duration in milliseconds; an agent message the Send API
// keeps failing is logged while it waits; a Facebook that cannot be reached
// is not reported as Facebook refusing.
func TestLogsSayWhatHappened(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t), "agent")
	const psid = "8801"
	h.customerSays(psid, "hi")

	for _, path := range []string{"/readyz", "/healthz", "/metrics"} {
		if st, _ := h.do(http.MethodGet, path, "", nil); st != 200 {
			t.Fatalf("GET %s = %d", path, st)
		}
	}
	if _, st := h.thread(psid); st != 200 {
		t.Fatalf("thread = %d", st)
	}
	levels := map[string]string{}
	for _, l := range h.logLines() {
		if l["message"] == "request" {
			levels[fmt.Sprint(l["route"])] = fmt.Sprint(l["level"])
			if _, ok := l["duration_ms"].(float64); !ok {
				t.Errorf("request line without duration_ms: %v", l)
			}
		}
	}
	for route, want := range map[string]string{"/readyz": "debug", "/healthz": "debug", "/metrics": "debug", "/1.0/threads/{page_id}/{psid}": "info"} {
		if levels[route] != want {
			t.Errorf("request log level of %s = %q, want %q (all: %v)", route, levels[route], want, levels)
		}
	}

	// The Send API fails (transient) for a while: the waiting message is logged.
	// (4 faults: one send, with the Graph client's own 4 attempts.)
	h.sim.InjectFault(simulator.Fault{Op: "send", Times: 4, HTTPStatus: 503, Code: 2, Message: "(#2) Service temporarily unavailable"})
	var iv handover.InterventionView
	if st := h.agentJSON(http.MethodPost, "/1.0/interventions", map[string]string{"identity_foreign_id": psid}, &iv); st != 201 {
		t.Fatalf("open = %d", st)
	}
	var msg handover.AgentMessageView
	h.agentJSON(http.MethodPost, fmt.Sprintf("/1.0/interventions/%d/messages", iv.ID), map[string]string{"text": "one moment"}, &msg)
	waitFor(t, "a warning about the waiting message", func() bool {
		for _, l := range h.logLines() {
			if l["level"] == "warn" && l["queue"] == "agent_messages" && strings.Contains(fmt.Sprint(l["error"]), "agent message not sent yet to page") && l["failures"] == float64(1) {
				return true
			}
		}
		return false
	})
	h.clock.Advance(2 * time.Second) // past the retry's lease
	waitFor(t, "the message to go out once the Send API recovers", func() bool { return len(h.sim.Inbox(pageID, psid)) == 1 })

	// Facebook unreachable: the answer says so.
	h.cfg.Graph.URL = "http://127.0.0.1:1/"
	h.restart()
	h.customerSays("8802", "hello") // a thread the agents own, no intervention
	status, body := h.engage(botAPIKey, "8802", "agent", "bot", "")
	if status != 502 || !strings.Contains(body, "could not reach Facebook for pass_thread_control") || strings.Contains(body, "Facebook refused") {
		t.Errorf("agent→bot with Facebook unreachable = %d %s", status, body)
	}
}
