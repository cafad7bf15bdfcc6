package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/store/storetest"
)

// TestMain lets the test binary act as a handoverd child process, so the
// crash test can SIGKILL a real process at an arbitrary instant.
func TestMain(m *testing.M) {
	if cfg := os.Getenv("HANDOVERD_CHILD_CONFIG"); cfg != "" {
		os.Exit(run(context.Background(), []string{"serve", "--config", cfg}, os.Getenv, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

const crashSecret = "crash-app-secret"

// TestCrashLosesNothingAndDuplicatesNothing kills handoverd with SIGKILL
// while webhooks are in flight, restarts it, lets "Meta" redeliver
// everything, and checks that every acknowledged event survived and no
// event was applied twice.
func TestCrashLosesNothingAndDuplicatesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		dir := t.TempDir()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listen := ln.Addr().String()
		ln.Close()
		cfgPath := filepath.Join(dir, "handoverd.yaml")
		doc := fmt.Sprintf(`listen: %s
database: %s
app: {id: "111", secret: %s, verify_token: vt}
pages: [{id: "1001", access_token: pt, default_app: bot, bot_app_id: "222", client_id: 1}]
log: {level: warn}
`, listen, b.URL, crashSecret)
		if err := os.WriteFile(cfgPath, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}

		// 40 threads × 15 webhooks, each webhook 2 events of one thread.
		var bodies [][]byte
		base := time.Now().Add(-time.Minute).UnixMilli()
		for th := 0; th < 40; th++ {
			for i := 0; i < 15; i++ {
				ts := base + int64(i*10)
				psid := fmt.Sprintf("6%03d", th)
				bodies = append(bodies, []byte(fmt.Sprintf(`{"object":"page","entry":[{"id":"1001","time":%d,"standby":[`+
					`{"sender":{"id":"%s"},"recipient":{"id":"1001"},"timestamp":%d,"message":{"mid":"m_%s_%d_a","text":"a"}},`+
					`{"sender":{"id":"%s"},"recipient":{"id":"1001"},"timestamp":%d,"message":{"mid":"m_%s_%d_b","text":"b"}}]}]}`,
					ts, psid, ts, psid, i, psid, ts+1, psid, i)))
			}
		}
		acked := make([]bool, len(bodies))
		var mu sync.Mutex
		send := func(i int) bool {
			req, _ := http.NewRequest(http.MethodPost, "http://"+listen+"/webhooks/messenger", bytes.NewReader(bodies[i]))
			req.Header.Set("X-Hub-Signature-256", messenger.SignatureHeader(crashSecret, bodies[i]))
			resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
			if err != nil {
				return false
			}
			resp.Body.Close()
			if resp.StatusCode == 200 {
				mu.Lock()
				acked[i] = true
				mu.Unlock()
				return true
			}
			return false
		}

		countAcked := func() int {
			mu.Lock()
			defer mu.Unlock()
			n := 0
			for _, a := range acked {
				if a {
					n++
				}
			}
			return n
		}
		// 16 senders at once, so the child commits many webhooks per
		// transaction (group commit) and is killed with batches in flight.
		const senders = 16
		batched := 0 // webhooks committed in batches of more than one, as the child's metrics say
		for round := 0; round < 3; round++ {
			child := startChild(t, cfgPath, listen)
			var wg sync.WaitGroup
			for w := 0; w < senders; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < len(bodies); i += senders {
						mu.Lock()
						done := acked[i]
						mu.Unlock()
						if !done {
							send(i)
						}
					}
				}()
			}
			// Kill after a random number of further acknowledgements, mid-stream.
			target := countAcked() + 30 + rand.IntN(120)
			for deadline := time.Now().Add(10 * time.Second); countAcked() < target && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			sum, count := batchMetrics(t, listen)
			batched += int(sum - count)
			_ = child.Process.Signal(syscall.SIGKILL)
			_ = child.Wait()
			wg.Wait()
		}
		if batched == 0 {
			t.Errorf("no ingest transaction committed more than one webhook: the kills never met a batch")
		}
		ackedBeforeRecovery := countAcked()
		if ackedBeforeRecovery == len(bodies) {
			t.Log("every webhook was acknowledged before the last kill; the kills landed between requests")
		}
		// Nothing acknowledged was lost.
		db := b.Open(t)
		q := db.Reader()
		for i, a := range acked {
			if !a {
				continue
			}
			var n int
			mid := string(bodies[i][bytes.Index(bodies[i], []byte(`"mid":"`))+7:])
			mid = mid[:strings.IndexByte(mid, '"')]
			if err := q.QueryRow(`SELECT count(*) FROM messages WHERE mid = $1`, mid).Scan(&n); err != nil || n != 1 {
				t.Errorf("acknowledged webhook %d: message %s stored %d times (%v)", i, mid, n, err)
			}
		}

		// Recovery: Meta redelivers whatever was not acknowledged (and, being
		// Meta, some that were).
		child := startChild(t, cfgPath, listen)
		for i := range bodies {
			if !send(i) {
				t.Fatalf("redelivery %d refused", i)
			}
		}
		_ = child.Process.Signal(syscall.SIGTERM)
		_ = child.Wait()

		var events, messages, dupTransitions int
		if err := q.QueryRow(`SELECT count(*) FROM webhook_events`).Scan(&events); err != nil {
			t.Fatal(err)
		}
		_ = q.QueryRow(`SELECT count(*) FROM messages`).Scan(&messages)
		_ = q.QueryRow(`SELECT count(*) FROM (SELECT event_id FROM thread_transitions WHERE event_id IS NOT NULL
			GROUP BY event_id HAVING count(*) > 1) d`).Scan(&dupTransitions)
		if events != 2*len(bodies) || messages != 2*len(bodies) {
			t.Errorf("stored %d events and %d messages, want %d each", events, messages, 2*len(bodies))
		}
		if dupTransitions != 0 {
			t.Errorf("%d events produced more than one transition", dupTransitions)
		}
		var transitions int
		_ = q.QueryRow(`SELECT count(*) FROM thread_transitions`).Scan(&transitions)
		if transitions != 40 {
			t.Errorf("transitions = %d, want 40 (idle → bot once per thread)", transitions)
		}
		t.Logf("%s: %d of %d webhooks acknowledged before the kills; %d committed in a batch behind another", b.Name, ackedBeforeRecovery, len(bodies), batched)
	})
}

func startChild(t *testing.T, cfgPath, listen string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HANDOVERD_CHILD_CONFIG="+cfgPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		resp, err := http.Get("http://" + listen + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	t.Fatalf("child did not become ready: %s", stderr.String())
	return nil
}

// batchMetrics reads handoverd_ingest_batch_webhooks' sum and count from a
// child's /metrics: sum − count is how many webhooks beyond the first of
// their batch were committed together.
func batchMetrics(t *testing.T, listen string) (sum, count float64) {
	t.Helper()
	resp, err := http.Get("http://" + listen + "/metrics")
	if err != nil {
		t.Logf("metrics: %v", err)
		return 0, 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		var v float64
		if _, err := fmt.Sscanf(line, "handoverd_ingest_batch_webhooks_sum %g", &v); err == nil {
			sum = v
		} else if _, err := fmt.Sscanf(line, "handoverd_ingest_batch_webhooks_count %g", &v); err == nil {
			count = v
		}
	}
	return sum, count
}
