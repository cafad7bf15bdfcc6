// Command handoverd is the Messenger handover protocol broker.
//
// Usage:
//
//	handoverd [serve] --config FILE   run the broker (the default command)
//	handoverd migrate --config FILE   apply database migrations and exit
//	handoverd version                 print the version
//
// HANDOVERD_CONFIG names the config file when --config is not given.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/server"
	"github.com/handoverd/handoverd/store"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("handoverd "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", getenv("HANDOVERD_CONFIG"), "config file (or HANDOVERD_CONFIG)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "handoverd", version)
		return 0
	case "serve", "migrate":
	default:
		fmt.Fprintf(stderr, "handoverd: unknown command %q (want serve, migrate or version)\n", cmd)
		return 2
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "handoverd: --config FILE (or HANDOVERD_CONFIG) is required")
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "handoverd:", err)
		return 1
	}
	log := newLogger(stderr, cfg.Log.Level)
	switch cmd {
	case "migrate":
		err = migrate(ctx, cfg, log)
	default:
		err = serve(ctx, cfg, log)
	}
	if err != nil {
		log.Error().Err(err).Msg(cmd + " failed")
		return 1
	}
	return 0
}

func newLogger(w io.Writer, level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("service", "handoverd").Logger()
}

func serve(ctx context.Context, cfg *config.Config, log zerolog.Logger) error {
	srv, err := server.New(ctx, server.Options{Config: cfg, Logger: log})
	if err != nil {
		return err
	}
	defer srv.Close()
	log.Info().Str("version", version).Str("listen", cfg.Listen).Int("pages", len(cfg.Pages)).Msg("handoverd starting")
	err = srv.Run(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info().Msg("handoverd stopped")
	return nil
}

func migrate(ctx context.Context, cfg *config.Config, log zerolog.Logger) error {
	dbc, err := config.ParseDatabase(cfg.Database)
	if err != nil {
		return err
	}
	db, err := store.Open(ctx, dbc.Driver, dbc.DSN)
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := db.Migrate(ctx)
	if err != nil {
		return err
	}
	log.Info().Strs("applied", applied).Msg("migrations up to date")
	return nil
}
