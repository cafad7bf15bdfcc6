// Package server assembles handoverd: it opens and migrates the database,
// builds the services and their HTTP APIs on one router, and runs the HTTP
// listener and the background loops until its context ends, then drains.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/handoverd/handoverd/analytics"
	"github.com/handoverd/handoverd/api"
	"github.com/handoverd/handoverd/apperr"
	"github.com/handoverd/handoverd/auth"
	"github.com/handoverd/handoverd/chatwoot"
	"github.com/handoverd/handoverd/clock"
	"github.com/handoverd/handoverd/config"
	"github.com/handoverd/handoverd/console"
	"github.com/handoverd/handoverd/engage"
	"github.com/handoverd/handoverd/handover"
	"github.com/handoverd/handoverd/httpapi"
	"github.com/handoverd/handoverd/inbox"
	"github.com/handoverd/handoverd/lexer"
	"github.com/handoverd/handoverd/messenger"
	"github.com/handoverd/handoverd/metrics"
	"github.com/handoverd/handoverd/openapi"
	"github.com/handoverd/handoverd/relaybot"
	"github.com/handoverd/handoverd/store"
	"github.com/handoverd/handoverd/userlike"
)

// Options configures a Server.
type Options struct {
	// Config is the validated configuration.
	Config *config.Config
	// Logger is the root logger.
	Logger zerolog.Logger
	// Clock tells the time and paces the loops (nil: the system clock).
	Clock clock.Clock
	// GraphTransport is the HTTP transport for Graph calls (nil: default).
	GraphTransport http.RoundTripper
	// GraphRetry bounds Graph retries (zero: defaults).
	GraphRetry messenger.Retry
	// ShutdownTimeout bounds draining in-flight requests (default 20 s).
	ShutdownTimeout time.Duration
	// WebhookClient delivers outbound webhooks (nil: default with the
	// configured timeout).
	WebhookClient *http.Client
	// OutboxEvery is how often due webhook deliveries are attempted (default 500 ms).
	OutboxEvery time.Duration
	// RelayRetry is the first delay between relay bot webhook attempts
	// (default 1 s, doubling; the bot counts as down after 5).
	RelayRetry time.Duration
}

// Server is one handoverd process.
type Server struct {
	cfg      *config.Config
	log      zerolog.Logger
	db       *store.DB
	metrics  *metrics.Metrics
	handover *handover.Service
	inbox    *inbox.Service
	relay    *relaybot.Service
	stats    *analytics.Service
	graph    *messenger.Graph
	router   *httpapi.Router
	draining atomic.Bool
	shutdown time.Duration
	outbox   time.Duration
}

// New opens the database, applies migrations and builds every service.
func New(ctx context.Context, o Options) (*Server, error) {
	cfg := o.Config
	clk := clock.Or(o.Clock)
	now := clk.Now
	dbc, err := config.ParseDatabase(cfg.Database)
	if err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, dbc.Driver, dbc.DSN)
	if err != nil {
		return nil, err
	}
	applied, err := db.MigrateWith(ctx, clk)
	if err != nil {
		db.Close()
		return nil, err
	}
	if len(applied) > 0 {
		o.Logger.Info().Strs("migrations", applied).Msg("database migrated")
	}
	users, err := auth.NewUsers(cfg.Users)
	if err != nil {
		db.Close()
		return nil, err
	}
	m := metrics.New()
	m.RegisterDB("handoverd_db_"+dbc.Driver, db.Writer())
	s := &Server{
		cfg:      cfg,
		log:      o.Logger,
		db:       db,
		metrics:  m,
		shutdown: o.ShutdownTimeout,
		outbox:   o.OutboxEvery,
	}
	if s.outbox <= 0 {
		s.outbox = 500 * time.Millisecond
	}
	if s.shutdown <= 0 {
		s.shutdown = 20 * time.Second
	}
	s.graph = messenger.NewGraph(messenger.GraphOptions{
		BaseURL: cfg.Graph.URL, Version: cfg.Graph.Version, AppID: cfg.App.ID, AppSecret: cfg.App.Secret,
		Timeout: cfg.Graph.Timeout, Transport: o.GraphTransport, Retry: o.GraphRetry, Metrics: m,
	})
	s.handover = handover.New(handover.Options{
		DB: db, AppID: cfg.App.ID, Pages: cfg.Pages, IdleAfter: cfg.Threads.IdleAfter,
		Clock: clk, Metrics: m, Logger: o.Logger, Graph: s.graph, Handover: cfg.Handover, Reconcile: cfg.Reconcile,
		BotClient: o.WebhookClient, GiveUpAfter: cfg.Inbox.GiveUpAfter,
	})
	if err := s.handover.CheckPageModes(ctx); err != nil {
		db.Close()
		return nil, err
	}
	s.inbox, err = inbox.New(ctx, inbox.Options{
		DB: db, Handover: s.handover, Pages: cfg.Pages, Users: cfg.Users, Webhooks: cfg.Webhooks, Inbox: cfg.Inbox, ClaimGrace: cfg.Claims.Grace,
		Clock: clk, Metrics: m, Logger: o.Logger, HTTPClient: o.WebhookClient,
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	pageRefs := map[string]messenger.PageRef{}
	for _, p := range cfg.Pages {
		pageRefs[p.ID] = messenger.PageRef{ID: p.ID, Token: p.AccessToken}
	}
	s.relay = relaybot.New(relaybot.Options{
		DB: db, Bots: cfg.RelayBots, Handover: s.handover, Contacts: s.inbox, Graph: s.graph, PageTokens: pageRefs,
		Clock: clk, Metrics: m, Logger: o.Logger, Retry: o.RelayRetry,
	})
	s.handover.SetConsumers(handover.Consumers{Bots: s.relay, Inbox: s.inbox})
	s.stats = analytics.New(analytics.Options{DB: db, Pages: cfg.Pages, ControlTimeout: cfg.Handover.ControlTimeout, Now: now})
	s.handover.ExportGauges(ctx)
	s.inbox.ExportGauges()
	s.stats.ExportGauges(m, o.Logger)

	r := httpapi.NewRouter(o.Logger, m)
	wh := &messenger.Webhook{
		AppSecret:   cfg.App.Secret,
		VerifyToken: cfg.App.VerifyToken,
		KnownPage:   func(id string) bool { _, ok := cfg.Page(id); return ok },
		Ingester:    s.handover,
		Metrics:     m,
		Now:         now,
	}
	wh.Routes(r)
	(&api.API{Handover: s.handover, Analytics: s.stats, Users: users, SendWait: 3 * time.Second}).Routes(r)
	(&engage.API{Service: s.handover, Users: users, Metrics: m}).Routes(r)
	(&chatwoot.API{Service: s.inbox, Users: users}).Routes(r)
	(&userlike.API{Service: s.relay}).Routes(r)
	(&lexer.API{Service: s.inbox, Users: users, Metrics: m, RatePerSecond: cfg.Claims.RatePerSecond, Burst: cfg.Claims.Burst}).Routes(r)
	r.HandleFunc(http.MethodGet, "/healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.HandleFunc(http.MethodGet, "/readyz", s.readyz)
	if cfg.AdminListen == "" { // with an admin listener, metrics stay off the public one
		r.Handle(http.MethodGet, "/metrics", m.Handler())
	}
	r.Handle(http.MethodGet, "/openapi.yaml", openapi.Handler())
	// The agents' console at /: its session cookie stands in for an API
	// token on the JSON APIs (with a CSRF token on writes).
	con := console.New(console.Options{DB: db, Users: users, Config: cfg.Users, Pages: cfg.Pages, Now: now})
	con.Routes(r)
	r.Use(con.Middleware)
	s.router = r
	return s, nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		httpapi.WriteError(w, r, apperr.New(apperr.Unavailable, "draining"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.db.Ping(ctx); err != nil {
		httpapi.WriteError(w, r, apperr.Wrap(err, apperr.Unavailable, "database unreachable"))
		return
	}
	// A Page whose configuration and Meta disagree is worth a look, not a
	// reason to take the process out of service: it stays ready.
	warnings, err := s.handover.PageWarnings(ctx)
	if err != nil {
		httpapi.WriteError(w, r, apperr.Wrap(err, apperr.Unavailable, "database unreachable"))
		return
	}
	if len(warnings) == 0 {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"status": "ready", "warnings": warnings})
}

// Handler returns the HTTP handler with every API.
func (s *Server) Handler() http.Handler { return s.router.Handler() }

// Routes lists the registered routes.
func (s *Server) Routes() []string { return s.router.Routes() }

// Handover returns the thread-control service.
func (s *Server) Handover() *handover.Service { return s.handover }

// Inbox returns the inbox service.
func (s *Server) Inbox() *inbox.Service { return s.inbox }

// Analytics returns the handoff analytics service.
func (s *Server) Analytics() *analytics.Service { return s.stats }

// Relay returns the relay bot service.
func (s *Server) Relay() *relaybot.Service { return s.relay }

// Graph returns the Graph API client.
func (s *Server) Graph() *messenger.Graph { return s.graph }

// Metrics returns the metrics.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// DB returns the database.
func (s *Server) DB() *store.DB { return s.db }

// Close closes the database.
func (s *Server) Close() error { return s.db.Close() }

// Run listens on the configured address and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln and runs the background loops until ctx ends, then
// stops accepting, reports not-ready, and finishes in-flight requests.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		s.log.Info().Str("addr", ln.Addr().String()).Msg("listening")
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		s.draining.Store(true)
		s.inbox.Drain()
		sctx, cancel := context.WithTimeout(context.Background(), s.shutdown)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	if s.cfg.AdminListen != "" {
		adminLn, err := net.Listen("tcp", s.cfg.AdminListen)
		if err != nil {
			return fmt.Errorf("admin listener: %w", err)
		}
		admin := &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 10 * time.Second}
		g.Go(func() error {
			s.log.Info().Str("addr", adminLn.Addr().String()).Msg("admin listening (metrics, pprof)")
			if err := admin.Serve(adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return admin.Shutdown(sctx)
		})
	}
	g.Go(func() error { s.handover.Run(gctx, s.cfg.Threads.SweepEvery); return nil })
	g.Go(func() error { s.inbox.Run(gctx, s.outbox); return nil })
	g.Go(func() error { s.handover.RunReconciler(gctx); return nil })
	g.Go(func() error { s.relay.Run(gctx, 200*time.Millisecond); return nil })
	return g.Wait()
}

// adminHandler serves /metrics and the pprof endpoints on the admin listener.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
