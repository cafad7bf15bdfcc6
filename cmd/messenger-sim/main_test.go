package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadConfigExample(t *testing.T) {
	cfg, err := loadConfig("testdata/sim.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Apps) != 3 || len(cfg.Pages) != 2 || cfg.Pages[0].Tokens["BOT_PAGE_TOKEN"] != "111111111111111" {
		t.Errorf("config = %+v", cfg)
	}
}

func TestLoadConfigRejectsUnknownApp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sim.json")
	if err := os.WriteFile(path, []byte(`{"apps":[],"pages":[{"id":"1","tokens":{"T":"9"}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadConfig(path); err == nil || !strings.Contains(err.Error(), "unknown app 9") {
		t.Errorf("loadConfig = %v", err)
	}
}

// logWriter collects log output and reports the listen address once logged.
type logWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	addr chan string
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var line struct{ Message, Addr string }
	if json.Unmarshal(p, &line) == nil && line.Message == "simulator listening" {
		w.addr <- line.Addr
	}
	return w.buf.Write(p)
}

func (w *logWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestRunServesUntilCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &logWriter{addr: make(chan string, 1)}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-config", "testdata/sim.json"}, logs) }()

	var addr string
	select {
	case addr = <-logs.addr:
	case code := <-done:
		t.Fatalf("run exited with %d:\n%s", code, logs)
	}
	base := "http://" + addr + "/_sim/pages/100000000000001"
	resp, err := http.Post(base+"/customers/42/messages", "application/json", strings.NewReader(`{"text":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = http.Get(base + "/threads/42")
	if err != nil {
		t.Fatal(err)
	}
	var th struct {
		OwnerAppID string `json:"owner_app_id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&th)
	resp.Body.Close()
	if err != nil || th.OwnerAppID != "111111111111111" {
		t.Errorf("thread = %+v (%v)", th, err)
	}

	cancel()
	if code := <-done; code != 0 {
		t.Errorf("run = %d, logs:\n%s", code, logs)
	}
}

func TestRunBadFlags(t *testing.T) {
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"-nope"}, &stderr); code != 2 {
		t.Errorf("run = %d, want 2", code)
	}
	if code := run(context.Background(), []string{"-config", "missing.json"}, &stderr); code != 1 {
		t.Errorf("run = %d, want 1", code)
	}
}
