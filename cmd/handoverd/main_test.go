package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, extra string) (path string, listen string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen = ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	doc := `listen: ` + listen + `
database: sqlite://` + filepath.Join(dir, "h.db") + `
app: {id: "111", secret: "${T_SECRET}", verify_token: vt}
pages: [{id: "1001", access_token: pt, default_app: bot, bot_app_id: "222", client_id: 1}]
` + extra
	path = filepath.Join(dir, "handoverd.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, listen
}

func getenv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestRunCommands(t *testing.T) {
	t.Setenv("T_SECRET", "the-app-secret")
	cfg, _ := writeConfig(t, "")
	badCfg, _ := writeConfig(t, "pages: []\n")
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		stdout string
		stderr string
	}{
		{"version", []string{"version"}, nil, 0, "handoverd dev", ""},
		{"migrate", []string{"migrate", "--config", cfg}, nil, 0, "", "0001_threads.sql"},
		{"migrate via env", []string{"migrate"}, map[string]string{"HANDOVERD_CONFIG": cfg}, 0, "", "migrations up to date"},
		{"no config", []string{"serve"}, nil, 2, "", "--config FILE"},
		{"invalid config names the key", []string{"migrate", "--config", badCfg}, nil, 1, "", "pages"},
		{"unknown command", []string{"frobnicate"}, nil, 2, "", "unknown command"},
		{"--version", []string{"--version"}, nil, 0, "handoverd dev", ""},
		{"help lists the commands", []string{"help"}, nil, 0, "handoverd healthcheck", ""},
		{"--help lists the commands", []string{"--help"}, nil, 0, "handoverd migrate", ""},
		{"help of a command", []string{"help", "serve"}, nil, 0, "-listen", ""},
		{"command --help", []string{"sandbox", "--help"}, nil, 0, "", "-sim-listen"},
		{"a flag the command does not take", []string{"migrate", "--listen", "127.0.0.1:1"}, nil, 2, "", "flag provided but not defined: -listen"},
		{"a stray argument", []string{"serve", "extra"}, nil, 2, "", `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tt.args, getenv(tt.env), &out, &errb)
			if code != tt.code {
				t.Errorf("exit code = %d, want %d; stderr: %s", code, tt.code, errb.String())
			}
			if !strings.Contains(out.String(), tt.stdout) || !strings.Contains(errb.String(), tt.stderr) {
				t.Errorf("stdout %q / stderr %q, want %q / %q", out.String(), errb.String(), tt.stdout, tt.stderr)
			}
		})
	}
}

func TestServeUntilSignalled(t *testing.T) {
	t.Setenv("T_SECRET", "the-app-secret")
	cfg, configured := writeConfig(t, "")
	// serve --listen overrides the config's listen address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfg, "--listen", listen}, getenv(nil), &bytes.Buffer{}, &errb)
	}()
	var resp *http.Response
	for i := 0; i < 100; i++ {
		if resp, err = http.Get("http://" + listen + "/readyz"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("broker did not come up: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/readyz = %d", resp.StatusCode)
	}
	var errh bytes.Buffer
	if code := run(context.Background(), []string{"healthcheck", "--url", "http://" + listen + "/readyz"}, getenv(nil), &bytes.Buffer{}, &errh); code != 0 {
		t.Errorf("healthcheck = %d: %s", code, errh.String())
	}
	if code := run(context.Background(), []string{"healthcheck", "--config", cfg}, getenv(nil), &bytes.Buffer{}, &bytes.Buffer{}); code != 1 {
		t.Errorf("healthcheck on the configured %s, which --listen replaced = %d, want 1", configured, code)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code = %d: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop after its context ended")
	}
	if strings.Contains(errb.String(), "the-app-secret") {
		t.Error("the app secret reached the logs")
	}
	// Log lines are stamped to the millisecond, in UTC.
	first, _, _ := strings.Cut(errb.String(), "\n")
	var line struct{ Time string }
	if err := json.Unmarshal([]byte(first), &line); err != nil {
		t.Fatalf("first log line %q: %v", first, err)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", line.Time); err != nil {
		t.Errorf("log time %q is not UTC to the millisecond: %v", line.Time, err)
	}
	if code := run(context.Background(), []string{"healthcheck", "--url", "http://" + listen + "/readyz"}, getenv(nil), &bytes.Buffer{}, &bytes.Buffer{}); code != 1 {
		t.Errorf("healthcheck after shutdown = %d, want 1", code)
	}
}
