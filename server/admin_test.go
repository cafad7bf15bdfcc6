package server_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/server"
	"github.com/handoverd/handoverd/store/storetest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestAdminListenerAndDrain: with admin_listen, metrics and pprof move to
// the admin listener; on shutdown /readyz turns 503 before the listener closes.
func TestAdminListenerAndDrain(t *testing.T) {
	b := storetest.SQLite(t)
	admin := freeAddr(t)
	cfg := &config.Config{
		Listen: freeAddr(t), AdminListen: admin, Database: b.URL,
		Graph:   config.Graph{URL: "http://127.0.0.1:1/", Version: "v21.0", Timeout: time.Second},
		App:     config.App{ID: ourApp, Secret: ourSecret, VerifyToken: verify},
		Pages:   []config.Page{{ID: pageID, AccessToken: ourToken, DefaultApp: "bot", BotAppID: botApp, ClientID: 1}},
		Threads: config.Threads{IdleAfter: 24 * time.Hour, SweepEvery: time.Hour},
	}
	srv, err := server.New(context.Background(), server.Options{Config: cfg, Logger: zerolog.Nop(), ShutdownTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	get := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, "the listeners", func() bool {
		return get("http://"+cfg.Listen+"/healthz") == 200 && get("http://"+admin+"/metrics") == 200
	})
	for url, want := range map[string]int{
		"http://" + admin + "/debug/pprof/":       200,
		"http://" + cfg.Listen + "/metrics":       404,
		"http://" + cfg.Listen + "/readyz":        200,
		"http://" + admin + "/webhooks/messenger": 404,
	} {
		if got := get(url); got != want {
			t.Errorf("GET %s = %d, want %d", url, got, want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := get("http://" + cfg.Listen + "/healthz"); got != 0 {
		t.Errorf("after shutdown the listener still answers %d", got)
	}
}
