// Command soak runs handoverd under load while killing it, and audits what
// survived (package internal/soak): on SQLite (one process) and on
// PostgreSQL (three processes sharing one fresh database).
//
// Usage:
//
//	soak -handoverd bin/handoverd -duration 2m -kills 10 -db both
//
// It prints the figures of each backend and exits 1 when anything was
// lost, duplicated or mismatched (2 on bad flags, 3 when a run could not
// be made). `make soak` builds handoverd and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/handoverd/handoverd/internal/soak"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("handoverd", "bin/handoverd", "the handoverd binary")
	duration := fs.Duration("duration", 2*time.Minute, "how long the load runs on each backend")
	kills := fs.Int("kills", 10, "SIGKILLs spread over the duration, on each backend")
	backends := fs.String("db", "both", "sqlite, postgres or both")
	pg := fs.String("postgres", "", "PostgreSQL server URL (default: $HANDOVERD_TEST_POSTGRES_URL, else postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)")
	rate := fs.Float64("rate", 20, "customer messages per second")
	customers := fs.Int("customers", 300, "distinct customers")
	agents := fs.Int("agents", 4, "agents working at once")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "seed of the run's random choices")
	dir := fs.String("dir", "", "where the run's files go (default: a temporary folder, removed when the audit passes)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var list []string
	switch *backends {
	case "sqlite", "postgres":
		list = []string{*backends}
	case "both":
		list = []string{"sqlite", "postgres"}
	default:
		fmt.Fprintf(stderr, "soak: -db %q: want sqlite, postgres or both\n", *backends)
		return 2
	}
	if *duration <= 0 || *kills < 0 {
		fmt.Fprintln(stderr, "soak: -duration must be positive and -kills not negative")
		return 2
	}
	if *pg == "" {
		*pg = getenv("HANDOVERD_TEST_POSTGRES_URL")
	}
	if *pg == "" {
		*pg = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fmt.Fprintf(stderr, "soak: %v\n", err)
		return 2
	}
	base, keep := *dir, *dir != ""
	if !keep {
		if base, err = os.MkdirTemp("", "handoverd-soak-"); err != nil {
			fmt.Fprintf(stderr, "soak: %v\n", err)
			return 3
		}
	}
	fmt.Fprintf(stdout, "soak: seed %d, files in %s\n", *seed, base)
	code := 0
	for _, b := range list {
		rep, err := soak.Run(ctx, soak.Options{
			Handoverd: abs, Backend: b, PostgresURL: *pg, Dir: filepath.Join(base, b),
			Duration: *duration, Kills: *kills, Rate: *rate, Customers: *customers, Agents: *agents, Seed: *seed,
			Progress: stdout,
		})
		if err != nil {
			fmt.Fprintf(stderr, "soak %s: %v\n", b, err)
			return 3
		}
		rep.Print(stdout)
		if !rep.OK() {
			code = 1
		}
	}
	if code == 0 && !keep {
		_ = os.RemoveAll(base)
	}
	return code
}
