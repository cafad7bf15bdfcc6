package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
// each acknowledged only after its events are committed, the way the
// load generator of the side-by-side benchmark sends them: unique events
// (fresh mids, current timestamps) from 10,000 customers over 32
// connections, on a Page whose default app is handoverd. It runs on both
// backends, with 1 and 10 events per POST, on a store holding 1,000 and
// 1,000,000 threads (each with its contact, conversation and a message)
// that has taken 2,000 other webhooks first (a store serving, not one just
// opened), and reports events/s, the p50/p99 latency of one POST, the statements
// run per event (a figure that does not drift with the machine's load) and
// the process's peak RSS. `make bench` runs it.
func BenchmarkWebhookIngest(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, existing := range []int{1_000, 1_000_000} {
			b.Run(fmt.Sprintf("%s/threads=%d", backend, existing), func(b *testing.B) {
				be := storetest.SQLite(b)
				if backend == "postgres" {
					be = storetest.Postgres(b)
				}
				in := startIngest(b, be, existing)
				for _, batch := range []int{1, 10} {
					b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { in.run(b, batch) })
				}
			})
		}
	}
}

// ingestBench is a running handoverd for BenchmarkWebhookIngest.
type ingestBench struct {
	srv  *server.Server
	url  string
	runs atomic.Int64
}

func startIngest(b *testing.B, be storetest.Backend, existing int) *ingestBench {
	cfg := &config.Config{
		Listen: "127.0.0.1:0", Database: be.URL,
		Graph:   config.Graph{URL: "http://127.0.0.1:1/", Version: "v21.0", Timeout: time.Second},
		App:     config.App{ID: ourApp, Secret: ourSecret, VerifyToken: verify},
		Pages:   []config.Page{{ID: pageID, AccessToken: ourToken, DefaultApp: "agent", BotAppID: botApp, ClientID: 1}},
		Threads: config.Threads{IdleAfter: 24 * time.Hour, SweepEvery: time.Hour},
	}
	srv, err := server.New(context.Background(), server.Options{Config: cfg, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	seedThreads(b, srv, existing)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	b.Cleanup(func() { cancel(); <-done })
	in := &ingestBench{srv: srv, url: "http://" + ln.Addr().String() + "/webhooks/messenger"}
	in.warm(b, 2000)
	return in
}

// warm sends n webhooks from n customers who are not the benchmark's, so
// the timed runs measure a store that is serving, with its caches filled,
// not one just opened: a million threads read from a cold cache would
// make the first second of a run of a few seconds mostly page faults.
func (in *ingestBench) warm(b *testing.B, n int) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32, MaxConnsPerHost: 32}}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				ts := time.Now().UnixMilli()
				body := []byte(fmt.Sprintf(`{"object":"page","entry":[{"id":"%s","time":%d,"messaging":[{"sender":{"id":"%d"},"recipient":{"id":"%s"},"timestamp":%d,"message":{"mid":"m_warm_%d","text":"hello"}}]}]}`,
					pageID, ts, 8000000000+i, pageID, ts, i))
				req, _ := http.NewRequest(http.MethodPost, in.url, bytes.NewReader(body))
				req.Header.Set("X-Hub-Signature-256", messenger.SignatureHeader(ourSecret, body))
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("warming up: status %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// seedThreads stores n threads that are not the benchmark's customers,
// each with a contact, a conversation, a message and its webhook event, in
// a few set-based statements.
func seedThreads(b *testing.B, srv *server.Server, n int) {
	b.Helper()
	db := srv.DB()
	series := `WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ` + strconv.Itoa(n) + `) `
	from := `FROM n`
	if db.Dialect.Name == "postgres" {
		series, from = "", `FROM generate_series(1, `+strconv.Itoa(n)+`) AS n(x)`
	}
	var inbox int64
	if err := db.Reader().QueryRow(`SELECT id FROM inboxes WHERE page_id = $1`, pageID).Scan(&inbox); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UnixMilli()
	psid := `'seed' || CAST(x AS TEXT)`
	for _, q := range []string{
		series + `INSERT INTO threads (page_id, psid, owner, owner_app_id, state_at, activity_at, expires_at, created_at, updated_at)
			SELECT '` + pageID + `', ` + psid + `, 'agent', '` + ourApp + `', $1, $1, $1 + 86400000, $1, $1 ` + from,
		series + `INSERT INTO contacts (id, account_id, name, identifier, created_at, updated_at)
			SELECT 1000000000 + x, 1, 'Messenger user ' || ` + psid + `, ` + psid + `, $1, $1 ` + from,
		series + `INSERT INTO contact_inboxes (id, contact_id, inbox_id, source_id, created_at)
			SELECT 1000000000 + x, 1000000000 + x, ` + strconv.FormatInt(inbox, 10) + `, ` + psid + `, $1 ` + from,
		series + `INSERT INTO conversations (id, account_id, inbox_id, contact_id, contact_inbox_id, status, page_id, psid, thread_owner, last_activity_at, created_at, updated_at)
			SELECT 1000000000 + x, 1, ` + strconv.FormatInt(inbox, 10) + `, 1000000000 + x, 1000000000 + x, 'open', '` + pageID + `', ` + psid + `, 'agent', $1, $1, $1 ` + from,
		series + `INSERT INTO inbox_messages (account_id, inbox_id, conversation_id, message_type, content, sender_type, source_id, created_at, updated_at)
			SELECT 1, ` + strconv.FormatInt(inbox, 10) + `, 1000000000 + x, 'incoming', 'hello', 'contact', 'm_seed_' || CAST(x AS TEXT), $1, $1 ` + from,
		series + `INSERT INTO webhook_events (dedupe_key, page_id, psid, kind, channel, occurred_at, received_at, outcome, payload)
			SELECT 'mid:m_seed_' || CAST(x AS TEXT), '` + pageID + `', ` + psid + `, 'message', 'messaging', $1, $1, 'applied', '{}' ` + from,
	} {
		if _, err := db.Writer().Exec(strings.ReplaceAll(q, "$1", strconv.FormatInt(now, 10))); err != nil {
			b.Fatalf("seeding %d threads: %v", n, err)
		}
	}
	// The store is measured as it stands, not while it digests the seed:
	// SQLite copies the seed's WAL into the database file (hundreds of MB
	// at a million threads) and PostgreSQL writes its dirty buffers now,
	// not during the timed run.
	settle := []string{`PRAGMA wal_checkpoint(TRUNCATE)`}
	if db.Dialect.Name == "postgres" {
		settle = []string{`ANALYZE`, `CHECKPOINT`}
	}
	for _, q := range settle {
		if _, err := db.Writer().Exec(q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
}

func (in *ingestBench) run(b *testing.B, batch int) {
	// Pre-build and sign every body so the timed loop is HTTP + ingest only.
	run := in.runs.Add(1)
	bodies := make([][]byte, (b.N+batch-1)/batch)
	n := 0
	for i := range bodies {
		var items bytes.Buffer
		ts := time.Now().UnixMilli()
		for j := 0; j < batch; j++ {
			if j > 0 {
				items.WriteByte(',')
			}
			fmt.Fprintf(&items, `{"sender":{"id":"%d"},"recipient":{"id":"%s"},"timestamp":%d,"message":{"mid":"m_bench_%d_%d_%d","text":"hello number %d, where is my order?"}}`,
				9000000000+n%10000, pageID, ts, batch, run, n, n)
			n++
		}
		bodies[i] = []byte(fmt.Sprintf(`{"object":"page","entry":[{"id":"%s","time":%d,"messaging":[%s]}]}`, pageID, ts, items.String()))
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32, MaxConnsPerHost: 32}}
	lat := make([]time.Duration, len(bodies))
	var next atomic.Int64
	var wg sync.WaitGroup
	stmts := in.srv.DB().Statements()
	b.ResetTimer()
	startAt := time.Now()
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, in.url, bytes.NewReader(bodies[i]))
				req.Header.Set("X-Hub-Signature-256", messenger.SignatureHeader(ourSecret, bodies[i]))
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body) // read to the end, so the connection is reused
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
	slices.Sort(lat)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(in.srv.DB().Statements()-stmts)/float64(n), "stmts/event")
	b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MB")
	b.ReportMetric(0, "ns/op")
	var stored int
	if err := in.srv.DB().Reader().QueryRow(`SELECT count(*) FROM inbox_messages WHERE source_id LIKE $1`,
		fmt.Sprintf("m_bench_%d_%d_%%", batch, run)).Scan(&stored); err != nil || stored != n {
		b.Errorf("stored %d messages, want %d (%v)", stored, n, err)
	}
}

// peakRSS is the process's peak resident set size in bytes.
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024 // kilobytes on Linux
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
