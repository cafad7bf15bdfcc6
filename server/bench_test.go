package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/messenger/simulator"
	"github.com/handoverd/handoverd/server"
	"github.com/handoverd/handoverd/store/storetest"
)

// BenchmarkWebhookIngest measures signed webhook POSTs over loopback HTTP,
// each acknowledged only after its events are committed. It reports
// events/s and the p50/p99 latency of one POST, for one event per POST and
// for batches of 10, with 8 concurrent senders spread over 500 threads.
func BenchmarkWebhookIngest(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, batch := range []int{1, 10} {
			b.Run(fmt.Sprintf("%s/batch=%d", backend, batch), func(b *testing.B) {
				be := storetest.SQLite(b)
				if backend == "postgres" {
					be = storetest.Postgres(b)
				}
				benchIngest(b, be, batch)
			})
		}
	}
}

func benchIngest(b *testing.B, be storetest.Backend, batch int) {
	cfg := &config.Config{
		Listen: "127.0.0.1:0", Database: be.URL,
		Graph:   config.Graph{URL: "http://127.0.0.1:1/", Version: "v21.0", Timeout: time.Second},
		App:     config.App{ID: ourApp, Secret: ourSecret, VerifyToken: verify},
		Pages:   []config.Page{{ID: pageID, AccessToken: ourToken, DefaultApp: "bot", BotAppID: botApp, ClientID: 1}},
		Threads: config.Threads{IdleAfter: 24 * time.Hour, SweepEvery: time.Hour},
	}
	srv, err := server.New(context.Background(), server.Options{Config: cfg, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	url := "http://" + ln.Addr().String() + "/webhooks/messenger"

	// Pre-build and sign every body so the timed loop is HTTP + ingest only.
	base := time.Now().UnixMilli()
	bodies := make([][]byte, b.N)
	for i := range bodies {
		var items bytes.Buffer
		for j := 0; j < batch; j++ {
			n := i*batch + j
			if j > 0 {
				items.WriteByte(',')
			}
			fmt.Fprintf(&items, `{"sender":{"id":"%d"},"recipient":{"id":"%s"},"timestamp":%d,"message":{"mid":"m_bench_%d","text":"message %d"}}`,
				700000+n%500, pageID, base+int64(n), n, n)
		}
		ch := "standby"
		if i%2 == 1 {
			ch = "messaging"
		}
		bodies[i] = []byte(fmt.Sprintf(`{"object":"page","entry":[{"id":"%s","time":%d,"%s":[%s]}]}`, pageID, base, ch, items.String()))
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	startAt := time.Now()
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[i]))
				req.Header.Set("X-Hub-Signature-256", messenger.SignatureHeader(ourSecret, bodies[i]))
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				lat[i] = time.Since(t0)
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(startAt)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(b.N*batch)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	var stored int
	if err := srv.DB().Reader().QueryRow(`SELECT count(*) FROM messages`).Scan(&stored); err != nil || stored != b.N*batch {
		b.Errorf("stored %d messages, want %d (%v)", stored, b.N*batch, err)
	}
}

// BenchmarkHandoverRoundTrip measures POST /1.0/bots/handover (bot → agent)
// until handoverd records the agents as owner: request_thread_control to
// the simulator, its webhook to the bot, the bot's pass_thread_control, and
// the pass event's webhook back to handoverd, all over loopback HTTP.
func BenchmarkHandoverRoundTrip(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			be := storetest.SQLite(b)
			if backend == "postgres" {
				be = storetest.Postgres(b)
			}
			h := newHarness(b, be, "bot")
			h.logs = &syncBuffer{}
			psids := make([]string, b.N)
			for i := range psids {
				psids[i] = fmt.Sprintf("91%06d", i)
				if _, err := h.sim.CustomerSends(pageID, psids[i], simulator.CustomerMessage{Text: "hi"}); err != nil {
					b.Fatal(err)
				}
			}
			h.flush()
			lat := make([]time.Duration, b.N)
			b.ResetTimer()
			for i, psid := range psids {
				t0 := time.Now()
				if status, body := h.engage(botAPIKey, psid, "bot", "agent", ""); status != 200 {
					b.Fatalf("handover = %d %s", status, body)
				}
				for {
					th, _, err := h.srv.Handover().Get(context.Background(), pageID, psid)
					if err != nil {
						b.Fatal(err)
					}
					if th.Owner == "agent" {
						break
					}
					time.Sleep(200 * time.Microsecond)
				}
				lat[i] = time.Since(t0)
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
