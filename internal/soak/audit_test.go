package soak

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/server"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/store/storetest"
)

// TestAuditFindsWhatWasLostDuplicatedOrMismatched drives a handoverd (in
// process, real HTTP and database, the simulator as Facebook) through a
// few customers and agent episodes, checks the audit passes, then takes
// from the database what the audit must miss — an acknowledged event, an
// accepted agent message, a thread's true owner — and adds a duplicate of
// an agent message: each is reported, and the report fails.
func TestAuditFindsWhatWasLostDuplicatedOrMismatched(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + ln.Addr().String()
		r := &run{o: Options{Backend: b.Name, Agents: 1}, rec: newRecord(), rng: newLockedRand(7), log: t.Logf}
		simURL, closeFacebook, err := r.facebook([]string{url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(closeFacebook)
		cfg := &config.Config{
			Listen: ln.Addr().String(), Database: b.URL,
			Graph: config.Graph{URL: simURL, Version: "v21.0", Timeout: 5 * time.Second},
			App:   config.App{ID: ourApp, Secret: ourSecret, VerifyToken: "soak-verify"},
			Pages: []config.Page{{ID: pageID, AccessToken: ourPageTok, DefaultApp: config.DefaultAppBot, BotAppID: botApp, ClientID: 1}},
			Users: []config.User{
				{Name: "alice", Role: config.RoleAgent, Token: agentToken, ClientID: 1},
				{Name: "soak-bot", Role: config.RoleBot, Token: botToken, ClientID: 1},
			},
			Threads:  config.Threads{IdleAfter: config.DefaultIdleAfter, SweepEvery: time.Hour},
			Handover: config.Handover{ControlTimeout: 20 * time.Second, InterventionIdle: time.Hour, WorkEvery: 100 * time.Millisecond},
		}
		srv, err := server.New(ctx, server.Options{Config: cfg, Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		sctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- srv.Serve(sctx, ln) }()
		t.Cleanup(func() { stop(); <-done; srv.Close() })

		r.o.Rate, r.o.Customers = 50, 3
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		r.customers(cctx)
		cancel()
		if err := r.sim.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		c := &apiClient{r: r, urls: []string{url}, http: &http.Client{Timeout: 15 * time.Second}}
		for p := range 3 {
			psid := fmt.Sprintf("7%06d", p)
			if r.rec.wrote[psid] {
				r.engageEpisode(ctx, c, psid, 1, false) // an intervention: open, reply, close
				r.inboxEpisode(ctx, c, psid, 1, false)  // the inbox: reply (which takes over), resolve
			}
		}
		if err := r.settle(ctx, b.URL); err != nil {
			t.Fatal(err)
		}
		var clean Report
		if err := r.audit(ctx, b.URL, &clean); err != nil {
			t.Fatal(err)
		}
		if !clean.OK() || clean.EventsAcked == 0 || clean.AgentSent == 0 || clean.Threads == 0 {
			clean.Print(testWriter{t})
			t.Fatalf("the untouched run's audit: want a pass with events, sent agent messages and threads")
		}

		db := b.Open(t)
		exec := func(q string) {
			t.Helper()
			if err := db.InTx(ctx, func(tx *store.Tx) error { _, err := tx.ExecContext(ctx, q); return err }); err != nil {
				t.Fatal(err)
			}
		}
		exec(`DELETE FROM webhook_events WHERE id = (SELECT min(id) FROM webhook_events)`)
		exec(`UPDATE threads SET owner = 'other', owner_app_id = '999' WHERE psid = (SELECT min(psid) FROM threads)`)
		exec(`DELETE FROM agent_messages WHERE id = (SELECT min(id) FROM agent_messages WHERE intervention_id IS NOT NULL AND status = 'sent'
			AND message NOT LIKE '%handoverd:inbox:%')`)
		exec(`INSERT INTO agent_messages (page_id, psid, actor, message, status, created_at, deadline_at)
			SELECT page_id, psid, actor, message, status, created_at, deadline_at FROM agent_messages WHERE id = (SELECT max(id) FROM agent_messages)`)
		var got Report
		if err := r.audit(ctx, b.URL, &got); err != nil {
			t.Fatal(err)
		}
		type finding struct{ EventsLost, AgentLost, AgentDuplicated, OwnersMismatched int }
		if diff := cmp.Diff(finding{1, 1, 1, 1}, finding{got.EventsLost, got.AgentLost, got.AgentDuplicated, got.OwnersMismatched}); diff != "" {
			got.Print(testWriter{t})
			t.Errorf("findings (-want +got):\n%s", diff)
		}
		if got.OK() {
			t.Error("the report passes")
		}
	})
}

// testWriter writes to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
