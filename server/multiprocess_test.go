package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/clock"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/internal/clocktest"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/server"
	"github.com/handoverd/handoverd/store/storetest"
)

// process starts one handoverd on the backend's database and returns its base URL.
func process(t *testing.T, b storetest.Backend, clk clock.Clock) (*server.Server, string) {
	t.Helper()
	cfg := &config.Config{
		Listen: "127.0.0.1:0", Database: b.URL,
		Graph:   config.Graph{URL: "http://127.0.0.1:1/", Version: "v21.0", Timeout: time.Second},
		App:     config.App{ID: ourApp, Secret: ourSecret, VerifyToken: verify},
		Pages:   []config.Page{{ID: pageID, AccessToken: ourToken, DefaultApp: "bot", BotAppID: botApp, ClientID: 1}},
		Users:   []config.User{{Name: "alice", Role: "agent", Token: agentToken, ClientID: 1}},
		Threads: config.Threads{IdleAfter: 24 * time.Hour, SweepEvery: time.Hour},
	}
	srv, err := server.New(context.Background(), server.Options{Config: cfg, Logger: zerolog.Nop(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	return srv, "http://" + ln.Addr().String()
}

func threadEvents(psid string, n int, base time.Time) [][]byte {
	var out [][]byte
	for i := 0; i < n; i++ {
		ts := base.Add(time.Duration(i) * time.Second).UnixMilli()
		var ch, item string
		switch i % 4 {
		case 0:
			ch, item = "standby", fmt.Sprintf(`"message":{"mid":"m_%s_%d","text":"s"}`, psid, i)
		case 1:
			ch, item = "messaging", fmt.Sprintf(`"pass_thread_control":{"previous_owner_app_id":"%s","new_owner_app_id":"%s"}`, botApp, ourApp)
		case 2:
			ch, item = "messaging", fmt.Sprintf(`"message":{"mid":"m_%s_%d","text":"m"}`, psid, i)
		case 3:
			ch, item = "messaging", fmt.Sprintf(`"take_thread_control":{"previous_owner_app_id":"%s","new_owner_app_id":"263902037430900"}`, ourApp)
		}
		out = append(out, []byte(fmt.Sprintf(`{"object":"page","entry":[{"id":"%s","time":%d,"%s":[{"sender":{"id":"%s"},"recipient":{"id":"%s"},"timestamp":%d,%s}]}]}`,
			pageID, ts, ch, psid, pageID, ts, item)))
	}
	return out
}

func post(t *testing.T, url string, body []byte) {
	req, _ := http.NewRequest(http.MethodPost, url+"/webhooks/messenger", bytes.NewReader(body))
	req.Header.Set("X-Hub-Signature-256", messenger.SignatureHeader(ourSecret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("webhook status %d", resp.StatusCode)
	}
}

// TestTwoProcessesShareOneDatabase feeds the same threads' webhooks to two
// handoverd processes on one database, in parallel and in opposite orders,
// each webhook to both (as Meta's redeliveries may land on either replica),
// and checks the result equals one process fed in order.
func TestTwoProcessesShareOneDatabase(t *testing.T) {
	now := clocktest.New(start.Add(time.Hour)).Paced()
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		psids := []string{"8001", "8002", "8003", "8004", "8005", "8006"}
		ref := storetest.SQLite(t)
		refSrv, refURL := process(t, ref, now)
		for _, p := range psids {
			for _, body := range threadEvents(p, 24, start) {
				post(t, refURL, body)
			}
		}
		srvA, urlA := process(t, b, now)
		_, urlB := process(t, b, now)
		// Each process gets every thread's webhooks at once, one sender per
		// thread, so its commits take several threads together.
		var wg sync.WaitGroup
		for i, url := range []string{urlA, urlB} {
			for _, p := range psids {
				wg.Add(1)
				go func() {
					defer wg.Done()
					bodies := threadEvents(p, 24, start)
					for j := range bodies {
						k := j
						if i == 1 {
							k = len(bodies) - 1 - j
						}
						post(t, url, bodies[k])
					}
				}()
			}
		}
		wg.Wait()
		for _, p := range psids {
			want, _, err := refSrv.Handover().Get(context.Background(), pageID, p)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := srvA.Handover().Get(context.Background(), pageID, p)
			if err != nil {
				t.Fatal(err)
			}
			type state struct {
				Owner          handover.Owner
				AppID          string
				StateAt        time.Time
				ExpiresAt      *time.Time
				LastCustomerAt *time.Time
			}
			if diff := cmp.Diff(state{want.Owner, want.OwnerAppID, want.StateAt, want.ExpiresAt, want.LastCustomerAt},
				state{got.Owner, got.OwnerAppID, got.StateAt, got.ExpiresAt, got.LastCustomerAt}); diff != "" {
				t.Errorf("thread %s (-one process +two processes):\n%s", p, diff)
			}
		}
		var events, messages int
		db := srvA.DB().Reader()
		_ = db.QueryRow(`SELECT count(*) FROM webhook_events`).Scan(&events)
		_ = db.QueryRow(`SELECT count(*) FROM messages`).Scan(&messages)
		if n := len(psids); events != n*24 || messages != n*12 {
			t.Errorf("stored %d events, %d messages; want %d and %d (each once)", events, messages, n*24, n*12)
		}
	})
}
