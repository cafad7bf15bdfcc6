// Package soak runs real handoverd processes under a steady Messenger load
// while killing them (SIGKILL) at random instants, then audits what
// survived: every webhook event Facebook got a 2xx for is stored exactly
// once, every agent message handoverd accepted is stored once and reached
// the customer at most once, and every thread's owner in handoverd is the
// one Messenger shows. The project's Messenger simulator plays Facebook
// (real HTTP on loopback, signed webhooks, redelivery with back-off, each
// POST to the next replica); a small bot app on the Page passes the thread
// when handoverd asks for it.
//
// It is a development tool: `make soak` (see cmd/soak).
package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/messenger/simulator"
	"github.com/handoverd/handoverd/sandbox"
)

// Options configure one soak run on one backend.
type Options struct {
	// Handoverd is the path of the handoverd binary to run.
	Handoverd string
	// Backend is sqlite (one process) or postgres (Replicas processes on
	// one fresh database).
	Backend string
	// PostgresURL is a PostgreSQL server URL; the run creates its own
	// database there (and drops it when the audit passes).
	PostgresURL string
	// Replicas is how many handoverd processes share a PostgreSQL (3 when 0).
	Replicas int
	// Dir holds the run's files (SQLite database, configs, process logs).
	Dir string
	// Duration is how long the load runs (the audit follows).
	Duration time.Duration
	// Kills is how many SIGKILLs are spread over Duration.
	Kills int
	// Rate is customer messages per second (20 when 0).
	Rate float64
	// Customers is how many distinct customers write (300 when 0).
	Customers int
	// Agents is how many agents work conversations at once (4 when 0).
	Agents int
	// Seed makes the run's choices reproducible (not the OS's timing).
	Seed uint64
	// Progress receives a line per kill and phase (nil: discarded).
	Progress io.Writer
}

// The identities of the run: handoverd's app, the bot's, one Page.
const (
	ourApp     = "111"
	botApp     = "222"
	pageID     = "1001"
	ourSecret  = "soak-app-secret"
	botSecret  = "soak-bot-secret"
	ourPageTok = "soak-our-page-token"
	botPageTok = "soak-bot-page-token"
	agentToken = "soak-agent-token-0123456789"
	botToken   = "soak-bot-token-0123456789"
)

func (o *Options) defaults() {
	if o.Replicas <= 0 {
		o.Replicas = 3
	}
	if o.Backend == "sqlite" {
		o.Replicas = 1
	}
	if o.Rate <= 0 {
		o.Rate = 20
	}
	if o.Customers <= 0 {
		o.Customers = 300
	}
	if o.Agents <= 0 {
		o.Agents = 4
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// run is one soak's moving parts.
type run struct {
	o     Options
	sim   *simulator.Sim
	procs []*proc
	rec   *record
	rng   *lockedRand
	log   func(format string, args ...any)
}

// Run drives one soak and audits it. The error is a failure to run it;
// what the audit found is in the report (see Report.OK).
func Run(ctx context.Context, o Options) (Report, error) {
	o.defaults()
	if o.Backend != "sqlite" && o.Backend != "postgres" {
		return Report{}, fmt.Errorf("soak: backend %q: want sqlite or postgres", o.Backend)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return Report{}, err
	}
	start := time.Now()
	r := &run{o: o, rec: newRecord(), rng: newLockedRand(o.Seed)}
	r.log = func(format string, args ...any) {
		fmt.Fprintf(o.Progress, "soak %s %6.1fs: %s\n", o.Backend, time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}

	// The database.
	dbURL, dropDB, err := r.database(ctx)
	if err != nil {
		return Report{}, err
	}

	// Facebook: the simulator, and the bot app's webhook.
	addrs, err := freeAddrs(o.Replicas)
	if err != nil {
		return Report{}, err
	}
	urls := make([]string, len(addrs))
	for i, a := range addrs {
		urls[i] = "http://" + a
	}
	simURL, closeFacebook, err := r.facebook(urls)
	if err != nil {
		return Report{}, err
	}
	defer closeFacebook()

	// handoverd.
	for i, a := range addrs {
		p, err := newProc(o.Handoverd, filepath.Join(o.Dir, fmt.Sprintf("replica-%d", i)), a, dbURL, simURL)
		if err != nil {
			return Report{}, err
		}
		r.procs = append(r.procs, p)
	}
	defer func() {
		for _, p := range r.procs {
			p.stop()
		}
	}()
	var wg sync.WaitGroup
	errs := make([]error, len(r.procs))
	for i, p := range r.procs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = p.start() }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Report{}, err
	}
	r.log("%d handoverd process(es) ready on %s; simulator on %s", len(r.procs), o.Backend, simURL)

	// The load, and the kills.
	drive, stop := context.WithTimeout(ctx, o.Duration)
	defer stop()
	kills := make(chan int, 1)
	go func() { kills <- r.killer(drive) }()
	r.drive(drive, urls)
	rep := Report{Backend: o.Backend, Replicas: len(r.procs), Duration: o.Duration, Kills: <-kills}
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}

	// Quiet: every process up, every retry settled.
	for _, p := range r.procs {
		if !p.running() {
			if err := p.start(); err != nil {
				return rep, err
			}
		}
	}
	r.log("load over after %d kills; letting retries settle", rep.Kills)
	if err := r.settle(ctx, dbURL); err != nil {
		return rep, err
	}
	for _, p := range r.procs {
		p.stop()
	}
	r.log("auditing")
	if err := r.audit(ctx, dbURL, &rep); err != nil {
		return rep, err
	}
	if rep.OK() && dropDB != nil {
		dropDB()
	}
	return rep, nil
}

// facebook starts the simulator, with handoverd's app at urls (round
// robin), and the bot app's webhook, each on its own loopback listener; it
// returns the simulator's (Graph API's) base URL and what stops them.
func (r *run) facebook(urls []string) (string, func(), error) {
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	botLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		simLn.Close()
		return "", nil, err
	}
	simURL := "http://" + simLn.Addr().String() + "/"
	r.sim = simulator.New(simulator.Config{RetryDelay: 100 * time.Millisecond, MaxDelay: 2 * time.Second, MaxAttempts: 60,
		HTTPClient: &http.Client{Timeout: 10 * time.Second}})
	hooks := make([]string, len(urls))
	for i, u := range urls {
		hooks[i] = u + "/webhooks/messenger"
	}
	r.sim.AddApp(simulator.App{ID: ourApp, Secret: ourSecret, WebhookURL: hooks[0], Replicas: hooks[1:]})
	r.sim.AddApp(simulator.App{ID: botApp, Secret: botSecret, WebhookURL: "http://" + botLn.Addr().String() + "/webhook"})
	r.sim.AddPage(simulator.Page{ID: pageID, DefaultAppID: botApp, Tokens: map[string]string{ourPageTok: ourApp, botPageTok: botApp}})
	bot := &sandbox.DemoBot{
		Graph:     messenger.NewGraph(messenger.GraphOptions{BaseURL: simURL, Version: "v21.0", AppID: botApp, AppSecret: botSecret}),
		Page:      messenger.PageRef{ID: pageID, Token: botPageTok},
		Secret:    botSecret,
		BrokerURL: urls[0],
		Token:     botToken,
		Log:       zerolog.Nop(),
	}
	servers := []*http.Server{{Handler: r.sim.Handler(), ReadHeaderTimeout: 10 * time.Second}, {Handler: bot, ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = servers[0].Serve(simLn) }()
	go func() { _ = servers[1].Serve(botLn) }()
	return simURL, func() {
		for _, s := range servers {
			_ = s.Close()
		}
		r.sim.Close()
	}, nil
}

// freeAddrs returns n loopback addresses no one listens on right now.
func freeAddrs(n int) ([]string, error) {
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		out = append(out, ln.Addr().String())
		defer ln.Close()
	}
	return out, nil
}

// lockedRand is a seeded random source safe for concurrent use.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newLockedRand(seed uint64) *lockedRand {
	return &lockedRand{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// IntN returns a number in [0, n).
func (l *lockedRand) IntN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

// Between returns a duration in [lo, hi).
func (l *lockedRand) Between(lo, hi time.Duration) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return lo + time.Duration(l.r.Int64N(int64(hi-lo)))
}
