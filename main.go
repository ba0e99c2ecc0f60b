// Command entitlements runs the connected-car data plan entitlement
// service.
//
//	go run .                                    serve (default)
//	go run . migrate                            apply database migrations and exit
//	go run . token --role ROLE --sub SUBJECT [--ttl 1h]   print a bearer token
//	go run . seed --vehicles N                  bulk-load N synthetic vehicles (load tests)
//	go run . pay --order ID                     sign and post a payment notification (development)
//	go run . keys generate --out FILE           write a certificate signing key
//	go run . help [COMMAND]                     list the commands, or a command's flags
//
// Every command reads ./config.yaml (or --config PATH) and the environment
// overrides listed in README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
	_ "time/tzdata" // the zone database, for machines without one

	"entitlements/api"
	"entitlements/billing"
	"entitlements/scheduler"
	"entitlements/store"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "entitlements:", err)
		os.Exit(1)
	}
}

// run dispatches a command line; it is main without the process exit, so
// tests can call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) > 0 && isHelp(args[0]) {
		return help(args[1:], stdout)
	}
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	if cmd == "keys" {
		return keysCommand(args, stdout, stderr)
	}
	if _, ok := lookupCommand(cmd); !ok {
		return fmt.Errorf("unknown command %q; run entitlements help for the list", cmd)
	}
	a, err := parseFlags(cmd, args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	cfg, err := LoadConfig(a.config, getenv)
	if err != nil {
		return configHint(err, a)
	}
	switch cmd {
	case "serve":
		return serve(ctx, cfg, stderr)
	case "migrate":
		return migrate(ctx, cfg, stdout)
	case "seed":
		return seed(ctx, cfg, a.vehicles, a.force, stdout)
	case "pay":
		return pay(ctx, cfg, a, stdout)
	case "backup":
		return backup(ctx, cfg, a.to, stdout)
	case "token":
		tok, err := api.MintToken([]byte(cfg.Auth.TokenSecret), api.Role(a.role), a.sub, a.ttl, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, tok)
		return nil
	}
	return fmt.Errorf("command %q is not built into this binary", cmd)
}

// openStore opens the configured database and applies pending migrations.
func openStore(ctx context.Context, cfg *Config) (*store.DB, []int, error) {
	db, err := store.Open(ctx, cfg.StoreConfig())
	if err != nil {
		return nil, nil, err
	}
	applied, err := db.Migrate(ctx)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, applied, nil
}

func migrate(ctx context.Context, cfg *Config, stdout io.Writer) error {
	created := missingDatabaseDir(cfg)
	db, applied, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if created != "" {
		fmt.Fprintf(stdout, "created the database directory %s\n", created)
	}
	fmt.Fprintf(stdout, "applied migrations: %v\n", applied)
	return nil
}

// startIdP fetches the identity provider's keys, if one is configured,
// and keeps them fresh until ctx ends. The service starts even when they
// cannot be fetched: the shared secret's tokens keep working, and the
// provider's are refused until a later fetch succeeds.
func startIdP(ctx context.Context, cfg *Config, log *slog.Logger) (*api.IdP, error) {
	ic, ok := cfg.IdP()
	if !ok {
		return nil, nil
	}
	ic.Logger = log
	idp, err := api.NewIdP(ctx, ic)
	if err != nil {
		return nil, err
	}
	if !idp.KeysLoaded() {
		log.Warn("identity provider keys not loaded at start-up; its tokens are refused until a fetch succeeds",
			slog.String("jwks_url", ic.JWKSURL))
	}
	return idp, nil
}

// serve runs the HTTP server and the scheduler until SIGINT or SIGTERM,
// then drains requests, waits for running jobs (bounded) and closes the
// database.
func serve(ctx context.Context, cfg *Config, logOut io.Writer) error {
	logOut = &syncWriter{w: logOut} // shared by the service's and the start-up logger
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel()}))
	for _, k := range cfg.DevSecrets() {
		log.Warn("secret is the shipped development default; set it before production", slog.String("key", k))
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The port is bound first: a second instance on a busy port fails
	// here, before it migrates or runs a job.
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on http.addr %s: %w", cfg.HTTP.Addr, err)
	}
	defer ln.Close()

	created := missingDatabaseDir(cfg)
	db, applied, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if created != "" {
		startupLog(logOut).Info("created the database directory", slog.String("dir", created))
	}
	log.Info("database ready", slog.String("driver", cfg.Database.Driver), slog.Any("applied_migrations", applied))
	if err := db.RecordAudit(billing.WithActor(ctx, billing.SystemActor("startup")), startupAudit(cfg, applied, time.Now())); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.Database.Driver == store.SQLite {
		reg.MustRegister(checkpointCollectors(db)...)
	}
	if cfg.Database.Driver == store.Postgres && db.SnapshotCacheStats().On {
		reg.MustRegister(snapshotListenerCollectors(db)...)
	}
	certs, err := certificateOptions(cfg, log)
	if err != nil {
		return err
	}
	idp, err := startIdP(ctx, cfg, log)
	if err != nil {
		return err
	}
	srv, err := newAPI(cfg, db, idp, certs, reg, log)
	if err != nil {
		return err
	}
	if cfg.SchedulerEnabled() {
		stopScheduler, err := startScheduler(cfg, db, reg, log)
		if err != nil {
			return err
		}
		// Deferred after db.Close, so it runs before it: running jobs end
		// (or are cancelled after the grace period) before the database
		// closes, on every way out of serve.
		defer stopScheduler()
	} else {
		log.Info("scheduler disabled (scheduler.enabled: false)")
	}
	hs := newHTTPServer(cfg, srv.Handler(), log)
	if addr := os.Getenv("ENTITLEMENTS_PPROF_ADDR"); addr != "" {
		go servePprof(addr, log)
	}
	return serveHTTP(ctx, hs, ln, logOut, log)
}

// serveHTTP serves on ln until ctx ends (a signal), then drains the
// requests in flight, for at most 20 seconds.
func serveHTTP(ctx context.Context, hs *http.Server, ln net.Listener, logOut io.Writer, log *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	startupLog(logOut).Info("listening", slog.String("addr", ln.Addr().String()))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("drain http: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// startupAudit is the audit entry of a start: which secrets are still
// the shipped development values (their names, never the values), and
// what else decides how the service behaves.
func startupAudit(cfg *Config, applied []int, now time.Time) billing.AuditEntry {
	dev := append([]string{}, cfg.DevSecrets()...)
	if applied == nil {
		applied = []int{}
	}
	return billing.AuditEntry{At: now, Action: billing.AuditConfigLoaded, After: billing.Fields{
		"dev_only_secrets":   dev,
		"database_driver":    cfg.Database.Driver,
		"timezone":           cfg.Timezone,
		"scheduler_enabled":  cfg.SchedulerEnabled(),
		"notices_webhook":    cfg.Notices.WebhookURL != "",
		"applied_migrations": applied,
	}}
}

// newAPI builds the HTTP API over db as cfg says.
func newAPI(cfg *Config, db *store.DB, idp *api.IdP, certs api.CertificateOptions, reg *prometheus.Registry, log *slog.Logger) (*api.Server, error) {
	return api.New(api.Options{
		IdP:              idp,
		Store:            db,
		Catalog:          cfg.Catalog(),
		Location:         cfg.Location(),
		TokenSecret:      []byte(cfg.Auth.TokenSecret),
		Logger:           log,
		Registerer:       reg,
		Gatherer:         reg,
		TrustedProxies:   cfg.HTTP.TrustedProxies,
		BenchEndpoint:    os.Getenv("ENTITLEMENTS_BENCH_ENDPOINT") == "1",
		PaymentSecret:    []byte(cfg.Payments.WebhookSecret),
		PaymentTolerance: cfg.Payments.Tolerance.D(),
		UnpaidTTL:        cfg.Orders.UnpaidTTL.D(),
		QuotaThresholds:  cfg.Notices.QuotaThresholds,
		UsageRetention:   cfg.Usage.Retention.D(),
		Limits:           cfg.APILimits(),
		Certificates:     certs,
	})
}

// startScheduler starts the background jobs and returns the function that
// stops them: it waits for running jobs, cancelling them after a grace
// period.
func startScheduler(cfg *Config, db *store.DB, reg prometheus.Registerer, log *slog.Logger) (stop func(), err error) {
	sched, err := newScheduler(cfg, db, reg, log)
	if err != nil {
		return nil, err
	}
	sched.Start()
	log.Info("scheduler started")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := sched.Stop(ctx); err != nil {
			log.Warn("scheduler stop", slog.String("error", err.Error()))
		}
		log.Info("scheduler stopped")
	}, nil
}

// newHTTPServer is the service's HTTP server with cfg's timeouts.
func newHTTPServer(cfg *Config, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              cfg.HTTP.Addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       cfg.HTTP.ReadTimeout.D(),
		WriteTimeout:      cfg.HTTP.WriteTimeout.D(),
		IdleTimeout:       cfg.HTTP.IdleTimeout.D(),
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// servePprof serves profiling on a listener of its own, off unless asked
// for (ENTITLEMENTS_PPROF_ADDR): the load harness uses it to see where a
// request's time goes.
func servePprof(addr string, log *slog.Logger) {
	log.Info("pprof listening", slog.String("addr", addr))
	srv := &http.Server{Addr: addr, Handler: pprofMux(), ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		log.Warn("pprof stopped", slog.String("error", err.Error()))
	}
}

// syncWriter serialises writes from several loggers to one writer.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// startupLog logs at info whatever log.level says: the line with the
// address is what operators look for.
func startupLog(out io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// missingDatabaseDir returns the directory of an SQLite database.dsn if
// it does not exist yet (opening the store creates it), or "".
func missingDatabaseDir(cfg *Config) string {
	if cfg.Database.Driver != store.SQLite {
		return ""
	}
	path, _, _ := strings.Cut(strings.TrimPrefix(cfg.Database.DSN, "file:"), "?")
	dir := filepath.Dir(path)
	if path == "" || path == ":memory:" || dir == "." {
		return ""
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	return dir
}

// newScheduler wires the background jobs of SPEC section 1 to their
// schedules in config.
func newScheduler(cfg *Config, db *store.DB, reg prometheus.Registerer, log *slog.Logger) (*scheduler.Scheduler, error) {
	loc := cfg.Location()
	jobLog := func(name string) *slog.Logger { return log.With(slog.String("job", name)) }
	deliver, err := scheduler.NewDeliver(scheduler.DeliverOptions{
		Outbox:     db,
		URL:        cfg.Notices.WebhookURL,
		Secret:     cfg.Notices.WebhookSecret,
		Location:   loc,
		Timeout:    cfg.Notices.WebhookTimeout.D(),
		Logger:     jobLog(store.JobDeliver),
		Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	if cfg.Notices.WebhookURL == "" {
		log.Info("notices.webhook_url is empty: notices are created and readable through the API, not sent")
	}
	entries := []scheduler.Entry{
		{Name: store.JobExpire, Spec: cfg.Scheduler.Expire, Job: scheduler.Expire{
			Store: db, MaxAge: cfg.Notices.ExpiredMaxAge.D(), Location: loc, Logger: jobLog(store.JobExpire),
		}},
		{Name: store.JobCancelUnpaid, Spec: cfg.Scheduler.CancelUnpaid, Job: scheduler.CancelUnpaid{
			Orders: db, TTL: cfg.Orders.UnpaidTTL.D(), Logger: jobLog(store.JobCancelUnpaid),
		}},
	}
	entries = append(entries,
		scheduler.Entry{Name: store.JobRemind, Spec: cfg.Scheduler.Remind, Job: scheduler.Remind{
			Store: db, Stages: cfg.Notices.ReminderDays, Location: loc, Logger: jobLog(store.JobRemind),
		}},
		scheduler.Entry{Name: store.JobDeliver, Spec: cfg.Scheduler.Deliver, Job: deliver},
		scheduler.Entry{Name: "prune_usage", Spec: cfg.Scheduler.Prune, Job: &scheduler.PruneUsage{
			Store: db, Retention: cfg.Usage.Retention.D(), Location: loc, Log: jobLog("prune_usage"),
		}},
		scheduler.Entry{Name: "purge_keys", Spec: cfg.Scheduler.Prune, Job: scheduler.PurgeKeys{
			Store: db, Log: jobLog("purge_keys"),
		}},
	)
	return scheduler.New(scheduler.Options{Entries: entries, Location: loc, Logger: log, Registerer: reg,
		Runs: db, Replica: replicaName()})
}

// replicaName names this process in the record of job runs: the host
// (a container's name) and the process id.
func replicaName() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// pprofMux serves net/http/pprof's handlers.
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// snapshotListenerCollectors exports the PostgreSQL snapshot cache's
// listener: while it is down the cache is bypassed (every read goes to
// the database), and invalidations show how much of the cache other
// replicas' writes keep emptying.
func snapshotListenerCollectors(db *store.DB) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "snapshot_cache_listener_up",
			Help: "1 while the snapshot cache listens for other replicas' writes (and is on), 0 while it is bypassed.",
		}, func() float64 {
			if db.SnapshotCacheStats().Listening {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "snapshot_cache_invalidations_total",
			Help: "Vehicles whose cached snapshot was forgotten on a notification of a write (by any replica, this one included).",
		}, func() float64 { return float64(db.SnapshotCacheStats().Invalidations) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "snapshot_cache_listener_lost_total",
			Help: "Listening connections lost (each empties the cache until the listener listens again).",
		}, func() float64 { return float64(db.SnapshotCacheStats().LostConnections) }),
	}
}

// checkpointCollectors exports the SQLite checkpointer's figures: a WAL
// that keeps growing, or writers held off often or long, shows here first.
func checkpointCollectors(db *store.DB) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sqlite_wal_frames",
			Help: "Frames in the SQLite WAL at the last checkpoint pass (a frame is a page plus 24 bytes).",
		}, func() float64 { return float64(db.CheckpointStats().WALFrames) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sqlite_checkpoint_held_passes_total",
			Help: "Checkpoint passes that held SQLite writers off so that the WAL could restart.",
		}, func() float64 { return float64(db.CheckpointStats().HeldPasses) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sqlite_checkpoint_held_seconds_total",
			Help: "Time SQLite writers were held off by those passes.",
		}, func() float64 { return db.CheckpointStats().Held.Seconds() }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sqlite_write_transactions_total",
			Help: "SQLite write transactions the writer committed or rolled back (a group commit's writes share one).",
		}, func() float64 { return float64(db.WriteStats().Transactions) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sqlite_writes_total",
			Help: "Writes those transactions carried: divided by sqlite_write_transactions_total, the average group.",
		}, func() float64 { return float64(db.WriteStats().Writes) }),
	}
}
