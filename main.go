// Command entitlements runs the connected-car data plan entitlement
// service.
//
//	go run .                                    serve (default)
//	go run . migrate                            apply database migrations and exit
//	go run . token --role ROLE --sub SUBJECT [--ttl 1h]   print a bearer token
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
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
	_ "time/tzdata" // the zone database, for machines without one

	"entitlements/api"
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
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "config.yaml", "path of the configuration file")
	var role, sub string
	var ttl time.Duration
	if cmd == "token" {
		fs.StringVar(&role, "role", "", "vehicle, owner, billing, ops or carrier")
		fs.StringVar(&sub, "sub", "", "subject: the VIN for vehicle, the owner_id for owner, a name otherwise")
		fs.DurationVar(&ttl, "ttl", time.Hour, "validity")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := LoadConfig(*configPath, getenv)
	if err != nil {
		return err
	}
	switch cmd {
	case "serve":
		return serve(ctx, cfg, stderr)
	case "migrate":
		return migrate(ctx, cfg, stdout)
	case "token":
		tok, err := api.MintToken([]byte(cfg.Auth.TokenSecret), api.Role(role), sub, ttl, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, tok)
		return nil
	}
	return fmt.Errorf("unknown command %q (want serve, migrate or token)", cmd)
}

func migrate(ctx context.Context, cfg *Config, stdout io.Writer) error {
	db, err := store.Open(ctx, cfg.StoreConfig())
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := db.Migrate(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "applied migrations: %v\n", applied)
	return nil
}

// serve runs the HTTP server (and, later, the scheduler) until SIGINT or
// SIGTERM, then drains requests, stops jobs and closes the database.
func serve(ctx context.Context, cfg *Config, logOut io.Writer) error {
	log := slog.New(slog.NewJSONHandler(logOut, nil))
	for _, k := range cfg.DevSecrets() {
		log.Warn("secret is the shipped development default; set it before production", slog.String("key", k))
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	db, err := store.Open(ctx, cfg.StoreConfig())
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := db.Migrate(ctx)
	if err != nil {
		return err
	}
	log.Info("database ready", slog.String("driver", cfg.Database.Driver), slog.Any("applied_migrations", applied))

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := api.New(api.Options{
		Store:          db,
		Catalog:        cfg.Catalog(),
		Location:       cfg.Location(),
		TokenSecret:    []byte(cfg.Auth.TokenSecret),
		Logger:         log,
		Registerer:     reg,
		Gatherer:       reg,
		TrustedProxies: cfg.HTTP.TrustedProxies,

		QuotaThresholds: cfg.Notices.QuotaThresholds,
		UsageRetention:  cfg.Usage.Retention.D(),
	})
	if err != nil {
		return err
	}
	hs := &http.Server{
		Addr:              cfg.HTTP.Addr,
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       cfg.HTTP.ReadTimeout.D(),
		WriteTimeout:      cfg.HTTP.WriteTimeout.D(),
		IdleTimeout:       cfg.HTTP.IdleTimeout.D(),
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() {
		log.Info("listening", slog.String("addr", cfg.HTTP.Addr))
		errc <- hs.ListenAndServe()
	}()
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
