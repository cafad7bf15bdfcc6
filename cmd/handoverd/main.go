// Command handoverd is the Messenger handover protocol broker.
//
// Usage:
//
//	handoverd [serve] --config FILE [--listen ADDR]  run the broker (the default command)
//	handoverd migrate --config FILE                  apply database migrations and exit
//	handoverd sandbox                                run the broker with a Messenger simulator, a demo bot and a walkthrough
//	handoverd healthcheck [--url URL]                exit 0 when /readyz answers 200 (for container health checks)
//	handoverd version                                print the version (also --version)
//	handoverd help [COMMAND]                         list the commands, or a command's flags (also --help)
//
// HANDOVERD_CONFIG names the config file when --config is not given.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/sandbox"
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

// usage is what `handoverd help` prints.
const usage = `handoverd — a Messenger handover protocol broker

Usage:
  handoverd [serve] [--config FILE] [--listen ADDR]   run the broker (the default command)
  handoverd migrate [--config FILE]                   apply database migrations and exit
  handoverd sandbox [--listen ADDR] [--sim-listen ADDR] [--dir DIR]
                                                      the broker with a Messenger simulator, a demo bot and a walkthrough
  handoverd healthcheck [--url URL | --config FILE]   exit 0 when /readyz answers 200 (container health checks)
  handoverd version                                   print the version (also --version)
  handoverd help [COMMAND]                            this text, or a command's flags (also --help, COMMAND --help)

HANDOVERD_CONFIG names the config file when --config is not given.
`

// commands are the commands run knows.
var commands = []string{"serve", "migrate", "sandbox", "healthcheck", "version", "help"}

// cmdFlags are a command's flags; those it does not take stay "".
type cmdFlags struct {
	fs                                        *flag.FlagSet
	cfgPath, listen, simListen, dir, checkURL *string
}

// flagsFor returns the flag set of a command, with every flag it accepts
// (and no other: a flag of another command is an error, not ignored).
func flagsFor(cmd string, getenv func(string) string, stderr io.Writer) cmdFlags {
	fs := flag.NewFlagSet("handoverd "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f cmdFlags
	f.fs = fs
	none := ""
	f.cfgPath, f.listen, f.simListen, f.dir, f.checkURL = &none, &none, &none, &none, &none
	switch cmd {
	case "serve":
		f.cfgPath = fs.String("config", getenv("HANDOVERD_CONFIG"), "config file (or HANDOVERD_CONFIG)")
		f.listen = fs.String("listen", "", "the API address, overriding the config's listen")
	case "migrate":
		f.cfgPath = fs.String("config", getenv("HANDOVERD_CONFIG"), "config file (or HANDOVERD_CONFIG)")
	case "sandbox":
		f.listen = fs.String("listen", "127.0.0.1:8080", "handoverd's address")
		f.simListen = fs.String("sim-listen", "127.0.0.1:9090", "the Messenger simulator's address")
		f.dir = fs.String("dir", "", "directory for the SQLite file (default: a temporary directory, removed on exit)")
	case "healthcheck":
		f.cfgPath = fs.String("config", getenv("HANDOVERD_CONFIG"), "config file whose listen address to check (or HANDOVERD_CONFIG)")
		f.checkURL = fs.String("url", "", "the readiness URL (default: /readyz on the config's listen address)")
	}
	return f
}

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "-h" || a == "-help" || a == "--help":
			cmd, args = "help", args[1:]
		case a == "-version" || a == "--version":
			cmd, args = "version", args[1:]
		case len(a) > 0 && a[0] != '-':
			cmd, args = a, args[1:]
		}
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "handoverd", version)
		return 0
	case "help":
		if len(args) > 0 && slices.Contains(commands, args[0]) && args[0] != "help" && args[0] != "version" {
			f := flagsFor(args[0], getenv, stdout)
			fmt.Fprintf(stdout, "Usage of handoverd %s:\n", args[0])
			f.fs.PrintDefaults()
			return 0
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	if !slices.Contains(commands, cmd) {
		fmt.Fprintf(stderr, "handoverd: unknown command %q (want %s); see handoverd help\n", cmd, strings.Join(commands, ", "))
		return 2
	}
	f := flagsFor(cmd, getenv, stderr)
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if f.fs.NArg() > 0 {
		fmt.Fprintf(stderr, "handoverd %s: unexpected argument %q; see handoverd help %s\n", cmd, f.fs.Arg(0), cmd)
		return 2
	}
	switch cmd {
	case "sandbox":
		// Info in a console layout: what the customer wrote, what the bot
		// and the agents did, each thread transition, as the walkthrough runs.
		zerolog.TimeFieldFormat = logTimeFormat
		slog := zerolog.New(zerolog.ConsoleWriter{Out: stderr, TimeFormat: "15:04:05.000", NoColor: !isTerminal(stderr)}).
			Level(zerolog.InfoLevel).With().Timestamp().Logger()
		if err := runSandbox(ctx, sandbox.Options{Listen: *f.listen, SimListen: *f.simListen, Dir: *f.dir, Logger: slog}, stdout); err != nil {
			fmt.Fprintln(stderr, "handoverd sandbox:", err)
			return 1
		}
		return 0
	case "healthcheck":
		return healthcheck(ctx, *f.checkURL, *f.cfgPath, stderr)
	}
	if *f.cfgPath == "" {
		fmt.Fprintln(stderr, "handoverd: --config FILE (or HANDOVERD_CONFIG) is required")
		return 2
	}
	cfg, err := config.Load(*f.cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "handoverd:", err)
		return 1
	}
	if *f.listen != "" {
		cfg.Listen = *f.listen
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

// isTerminal reports whether w is a terminal (colours only there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// logTimeFormat stamps log lines to the millisecond, in UTC.
const logTimeFormat = "2006-01-02T15:04:05.000Z07:00"

func newLogger(w io.Writer, level string) zerolog.Logger {
	zerolog.TimeFieldFormat = logTimeFormat
	zerolog.TimestampFunc = func() time.Time { return time.Now().UTC() }
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

// healthcheck asks /readyz and returns 0 when it answers 200.
func healthcheck(ctx context.Context, url, cfgPath string, stderr io.Writer) int {
	if url == "" {
		listen := config.DefaultListen
		if cfgPath != "" {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				fmt.Fprintln(stderr, "handoverd healthcheck:", err)
				return 1
			}
			listen = cfg.Listen
		}
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			fmt.Fprintln(stderr, "handoverd healthcheck:", err)
			return 1
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		url = "http://" + net.JoinHostPort(host, port) + "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintln(stderr, "handoverd healthcheck:", err)
		return 1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "handoverd healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(stderr, "handoverd healthcheck: not ready:", resp.Status)
		return 1
	}
	return 0
}

func runSandbox(ctx context.Context, o sandbox.Options, stdout io.Writer) error {
	sb, err := sandbox.Start(ctx, o)
	if err != nil {
		return err
	}
	if err := sb.Walkthrough(stdout); err != nil {
		return err
	}
	if err := sb.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
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
