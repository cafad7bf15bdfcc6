package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/handoverd/handoverd/analytics"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/store/storetest"
)

// at sets the clock to the scripted day's hh:mm:ss.
func (h *harness) at(clock string) {
	h.t.Helper()
	t, err := time.Parse(time.TimeOnly, clock)
	if err != nil {
		h.t.Fatal(err)
	}
	want := time.Date(start.Year(), start.Month(), start.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
	if d := want.Sub(h.clock.Now()); d < 0 {
		h.t.Fatalf("the script goes back in time to %s", clock)
	} else {
		h.clock.Advance(d)
	}
}

// openIntervention opens an intervention on psid and returns its id.
func (h *harness) openIntervention(psid string) int64 {
	h.t.Helper()
	var iv handover.InterventionView
	if st := h.agentJSON(http.MethodPost, "/1.0/interventions", map[string]string{"identity_foreign_id": psid}, &iv); st != 201 {
		h.t.Fatalf("open intervention on %s = %d", psid, st)
	}
	h.flush()
	return iv.ID
}

// agentReplies has the agent send a message in intervention id.
func (h *harness) agentReplies(id int64, text string) {
	h.t.Helper()
	var m handover.AgentMessageView
	if st := h.agentJSON(http.MethodPost, fmt.Sprintf("/1.0/interventions/%d/messages", id), map[string]string{"text": text}, &m); st != 201 || m.Status != "sent" {
		h.t.Fatalf("agent message = %d %+v", st, m)
	}
}

// closeIntervention closes intervention id (the thread goes back to the bot).
func (h *harness) closeIntervention(id int64) {
	h.t.Helper()
	if st := h.agentJSON(http.MethodPut, fmt.Sprintf("/1.0/interventions/%d/close", id), nil, nil); st != 200 {
		h.t.Fatalf("close intervention %d = %d", id, st)
	}
	h.flush()
}

// scriptedDay plays the day TestAnalyticsScriptedDay describes, and the
// next day's expiries.
func (h *harness) scriptedDay() {
	h.t.Helper()
	t := h.t
	ctx := context.Background()
	h.customerSays("7001", "A: opening hours?")

	h.at("08:01:00")
	h.customerSays("7002", "B: I need a human")
	ivB := h.openIntervention("7002")
	h.at("08:01:30")
	h.agentReplies(ivB, "Hi B")
	h.at("08:02:00")
	h.closeIntervention(ivB)

	h.at("08:03:00")
	h.customerSays("7003", "C: complaint")
	if st, body := h.engage(botAPIKey, "7003", "bot", "agent", ""); st != 200 {
		t.Fatalf("bot → agent = %d %s", st, body)
	}
	h.flush()
	ivC := h.openIntervention("7003")
	h.at("08:04:30")
	h.agentReplies(ivC, "Hi C")
	h.at("08:05:00")
	h.closeIntervention(ivC)

	h.at("08:06:00")
	h.botPasses.Store(false)
	h.customerSays("7004", "D: anyone?")
	h.openIntervention("7004")

	h.at("08:10:00")
	h.missedPass("7005")
	h.at("08:12:01")
	if _, err := h.srv.Handover().ReconcileDoubtful(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := h.thread("7005"); v.Owner != handover.OwnerAgent {
		t.Fatalf("E after reconciliation: %+v", v)
	}

	h.clock.Advance(25 * time.Hour)
	if n, err := h.srv.Handover().ExpireIdle(ctx); err != nil || n != 5 {
		t.Fatalf("ExpireIdle = %d, %v; want 5 threads expired", n, err)
	}
}

// TestAnalyticsScriptedDay plays a day on a Page whose bot is the default
// app, against the simulator, and holds GET /1.0/analytics (JSON and CSV)
// to the numbers counted by hand:
//
//	08:00    A writes; the bot answers alone                          → contained
//	08:01    B writes; an agent takes over (request, the bot passes)  → handed (agent_took_over)
//	08:01:30 the agent replies to B                                   → first reply 30 s
//	08:02    the agent closes B                                       → handed back
//	08:03    C writes; the bot hands over (Engage API, the bot passes)→ handed (bot_requested)
//	08:04:30 an agent replies to C                                    → first reply 90 s
//	08:05    the agent closes C                                       → handed back
//	08:06    D writes; an agent asks, the bot never passes            → offer expired, contained
//	08:10    E writes; an agent asks, the pass's webhook is lost      → offer expired
//	08:12:01 reconciliation gives E to the agents                     → handed (reconciled)
//	next day every thread expires to idle (A and D end contained; E ends with the agents, not resolved).
func TestAnalyticsScriptedDay(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		h.scriptedDay()

		p := func(v float64) *float64 { return &v }
		day := analytics.Counts{
			Conversations: 5, ContainedByBot: 2, HandedToAgents: 3,
			HandedToAgentsByReason: map[string]int{"agent_took_over": 1, "bot_requested": 1, "reconciled": 1},
			FirstReplies:           2, FirstReplySecondsP50: p(30), FirstReplySecondsP90: p(90),
			ResolvedByAgents: 0, HandedBackToBot: 2, OffersExpired: 2,
		}
		want := analytics.Report{PageID: pageID, From: "2026-11-02", To: "2026-11-03",
			Days: []analytics.Day{{Date: "2026-11-02", Counts: day},
				{Date: "2026-11-03", Counts: analytics.Counts{HandedToAgentsByReason: map[string]int{}}}},
			Total: day,
		}
		status, body := h.do(http.MethodGet, "/1.0/analytics?page_id="+pageID+"&from=2026-11-02&to=2026-11-03", agentToken, nil)
		var got analytics.Report
		if status != 200 || json.Unmarshal(body, &got) != nil {
			t.Fatalf("GET /1.0/analytics = %d %s", status, body)
		}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(analytics.Counts{})); diff != "" {
			t.Errorf("analytics (-hand-counted +got):\n%s", diff)
		}
		var raw any
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(docExample(t, "/1.0/analytics", "application/json", "scriptedDay"), raw); diff != "" {
			t.Errorf("the example in openapi.yaml and the real answer differ (-example +real):\n%s", diff)
		}

		wantCSV := strings.Join([]string{
			"date,conversations,contained_by_bot,handed_to_agents,handed_to_agents:agent_took_over,handed_to_agents:bot_requested,handed_to_agents:reconciled,first_replies,first_reply_seconds_p50,first_reply_seconds_p90,resolved_by_agents,handed_back_to_bot,offers_expired",
			"2026-11-02,5,2,3,1,1,1,2,30,90,0,2,2",
			"2026-11-03,0,0,0,0,0,0,0,,,0,0,0",
			"total,5,2,3,1,1,1,2,30,90,0,2,2", ""}, "\n")
		for _, req := range []struct{ query, accept string }{{"&format=csv", ""}, {"", "text/csv"}} {
			r, _ := http.NewRequest(http.MethodGet, h.url+"/1.0/analytics?page_id="+pageID+"&from=2026-11-02&to=2026-11-03"+req.query, nil)
			r.Header.Set("Authorization", "Bearer "+agentToken)
			if req.accept != "" {
				r.Header.Set("Accept", req.accept)
			}
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/csv") {
				t.Errorf("CSV %v = %d %s", req, resp.StatusCode, ct)
			}
			if diff := cmp.Diff(wantCSV, string(got)); diff != "" {
				t.Errorf("CSV %v (-want +got):\n%s", req, diff)
			}
			if diff := cmp.Diff(docExample(t, "/1.0/analytics", "text/csv", ""), string(got)); diff != "" {
				t.Errorf("the CSV example in openapi.yaml and the real answer differ (-example +real):\n%s", diff)
			}
		}

		// The day alone, and a day with nothing.
		status, body = h.do(http.MethodGet, "/1.0/analytics?page_id="+pageID+"&from=2026-11-02&to=2026-11-02", agentToken, nil)
		// (Its conversations' ends, the next day, still count: A and D are contained.)
		if err := json.Unmarshal(body, &got); err != nil || status != 200 || !cmp.Equal(day, got.Total, cmp.AllowUnexported(analytics.Counts{})) || len(got.Days) != 1 {
			t.Errorf("one day = %d %s", status, body)
		}

		// Bad input: a clear error naming the field.
		for _, tc := range []struct {
			query, token string
			status       int
			field        string
		}{
			{"", agentToken, 400, "page_id"},
			{"page_id=" + pageID + "&from=yesterday", agentToken, 400, "from"},
			{"page_id=" + pageID + "&to=2026-13-01", agentToken, 400, "to"},
			{"page_id=" + pageID + "&from=2026-11-03&to=2026-11-02", agentToken, 400, "to"},
			{"page_id=" + pageID + "&from=2024-01-01&to=2026-11-02", agentToken, 400, "to"},
			{"page_id=" + pageID + "&format=xml", agentToken, 400, "format"},
			{"page_id=777", agentToken, 404, ""},
			{"page_id=" + pageID, botAPIKey, 403, ""},
			{"page_id=" + pageID, "", 401, ""},
		} {
			status, body := h.do(http.MethodGet, "/1.0/analytics?"+tc.query, tc.token, nil)
			var e struct {
				Error struct{ Field string } `json:"error"`
			}
			if status != tc.status || json.Unmarshal(body, &e) != nil || e.Error.Field != tc.field {
				t.Errorf("%q = %d %s, want %d naming %q", tc.query, status, body, tc.status, tc.field)
			}
		}
	})
}

// TestConsoleAnalyticsInBrowser: after the scripted day, an agent opens
// Analytics in the console (a real browser) and reads the same numbers
// as the API's: the day's row, the total and the hand-offs by reason.
func TestConsoleAnalyticsInBrowser(t *testing.T) {
	chromium(t)
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, "bot")
		h.scriptedDay()
		ctx, cancel := browser(t)
		defer cancel()
		p := page{t, ctx}
		p.do("open the console", chromedp.Navigate(h.url+"/"))
		p.signIn()
		p.do("open the analytics", press("#analytics-link"), shows(`#analytics tfoot tr[data-date="total"]`))
		row := func(date string) []string {
			return run(p, "row "+date, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#analytics tr[data-date="`+date+`"] > *')].map(c => c.textContent)`))
		}
		want := []string{"5", "2", "3", "30 s", "1 min 30 s", "0", "2", "2"}
		if diff := cmp.Diff(append([]string{"2026-11-02"}, want...), row("2026-11-02")); diff != "" {
			t.Errorf("the scripted day's row (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(append([]string{"Total"}, want...), row("total")); diff != "" {
			t.Errorf("the total row (-want +got):\n%s", diff)
		}
		if got := run(p, "reasons", textOf("#analytics-reasons")); got != "Handed to agents by reason: agent took over: 1 · bot requested: 1 · reconciled: 1" {
			t.Errorf("reasons = %q", got)
		}
		if got := run(p, "CSV link", chromedp.Evaluate[string](`document.querySelector('#analytics-csv').getAttribute('href')`)); got != "/1.0/analytics?page_id="+pageID+"&format=csv" {
			t.Errorf("CSV link = %q", got)
		}
		csvText := run(p, "the CSV", chromedp.Evaluate[string](`fetch(document.querySelector('#analytics-csv').href, {credentials: 'same-origin'}).then(r => r.text())`, chromedp.EvalAwaitPromise))
		if !strings.Contains(csvText, "\n2026-11-02,5,2,3,1,1,1,2,30,90,0,2,2\n") {
			t.Errorf("the CSV through the console's session:\n%s", csvText)
		}
	})
}
