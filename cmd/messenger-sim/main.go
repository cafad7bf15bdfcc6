// Command messenger-sim runs the Messenger/Graph API simulator alone, as a
// local sandbox in place of Facebook.
//
// Usage:
//
//	messenger-sim -listen 127.0.0.1:9090 -config sim.json
//
// The JSON config lists the apps and pages (see testdata/sim.json):
//
//	{"apps":[{"id","secret","webhook_url"}],
//	 "pages":[{"id","default_app_id","tokens":{"TOKEN":"APPID"}}]}
//
// Point Graph API clients at http://LISTEN/ and drive customers through the
// /_sim control endpoints, e.g.
//
//	curl -d '{"text":"hi"}' http://127.0.0.1:9090/_sim/pages/PAGE/customers/PSID/messages
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/messenger/simulator"
)

// config is the JSON configuration file.
type config struct {
	Apps []struct {
		ID         string `json:"id"`
		Secret     string `json:"secret"`
		WebhookURL string `json:"webhook_url"`
	} `json:"apps"`
	Pages []struct {
		ID           string            `json:"id"`
		DefaultAppID string            `json:"default_app_id"`
		Tokens       map[string]string `json:"tokens"`
	} `json:"pages"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// run starts the simulator and serves until ctx is done; it returns the exit code.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("messenger-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9090", "address to serve the Graph API and /_sim endpoints on")
	cfgPath := fs.String("config", "sim.json", "JSON file with apps and pages")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	retryDelay := fs.Duration("retry-delay", 500*time.Millisecond, "first delay between webhook delivery retries (doubling)")
	maxAttempts := fs.Int("max-attempts", 8, "webhook delivery attempts per payload")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	lvl, err := zerolog.ParseLevel(*level)
	if err != nil {
		fmt.Fprintf(stderr, "messenger-sim: %v\n", err)
		return 2
	}
	log := zerolog.New(stderr).Level(lvl).With().Timestamp().Str("service", "messenger-sim").Logger()

	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		log.Error().Err(err).Msg("load config")
		return 1
	}
	sim := simulator.New(simulator.Config{Logger: log, RetryDelay: *retryDelay, MaxAttempts: *maxAttempts})
	defer sim.Close()
	for _, a := range cfg.Apps {
		sim.AddApp(simulator.App{ID: a.ID, Secret: a.Secret, WebhookURL: a.WebhookURL})
	}
	for _, p := range cfg.Pages {
		sim.AddPage(simulator.Page{ID: p.ID, DefaultAppID: p.DefaultAppID, Tokens: p.Tokens})
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error().Err(err).Msg("listen")
		return 1
	}
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info().Str("addr", ln.Addr().String()).Int("apps", len(cfg.Apps)).Int("pages", len(cfg.Pages)).Msg("simulator listening")

	select {
	case err := <-serveErr:
		log.Error().Err(err).Msg("serve")
		return 1
	case <-ctx.Done():
	}
	log.Info().Msg("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error().Err(err).Msg("shutdown")
		return 1
	}
	return 0
}

// loadConfig reads and checks the JSON configuration file.
func loadConfig(path string) (*config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cfg config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	apps := map[string]bool{}
	for _, a := range cfg.Apps {
		if a.ID == "" {
			return nil, fmt.Errorf("%s: app without id", path)
		}
		apps[a.ID] = true
	}
	for _, p := range cfg.Pages {
		if p.ID == "" {
			return nil, fmt.Errorf("%s: page without id", path)
		}
		if p.DefaultAppID != "" && !apps[p.DefaultAppID] {
			return nil, fmt.Errorf("%s: page %s: unknown default app %s", path, p.ID, p.DefaultAppID)
		}
		for _, app := range p.Tokens {
			if !apps[app] {
				return nil, fmt.Errorf("%s: page %s: token for unknown app %s", path, p.ID, app)
			}
		}
	}
	return &cfg, nil
}
