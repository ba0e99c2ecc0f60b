package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"time"

	"entitlements/store"
)

// seedPrefix starts every VIN store.SeedVIN makes.
const seedPrefix = "LSEED"

// seed bulk-loads synthetic vehicles for load tests and demos. It names
// the database it writes, refuses (unless force) a database holding
// vehicles that are not seeded ones, prints progress every few seconds,
// and reports what it inserted: seeding again is a no-op that says so.
func seed(ctx context.Context, cfg *Config, n int, force bool, stdout io.Writer) error {
	if n < 1 {
		return fmt.Errorf("--vehicles must be at least 1")
	}
	db, _, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(stdout, "warning: seeding the %s database %s with synthetic vehicles (VINs %s...)\n",
		cfg.Database.Driver, redactDSN(cfg.Database.DSN), seedPrefix)
	before, err := countSeedRows(ctx, db)
	if err != nil {
		return err
	}
	if before.foreign > 0 && !force {
		return fmt.Errorf("seed: the database holds %d vehicles that are not seeded ones; it looks like real data. Pass --force to seed it anyway", before.foreign)
	}
	start := time.Now()
	stop := seedProgress(ctx, db, n, stdout)
	err = db.Seed(ctx, n, store.DefaultSeedMix, cfg.Catalog(), cfg.Location(), time.Now())
	stop()
	if err != nil {
		return err
	}
	after, err := countSeedRows(ctx, db)
	if err != nil {
		return err
	}
	added := after.seeded - before.seeded
	fmt.Fprintf(stdout, "seeded in %s: %d new vehicles, %d already present; inserted %d vehicles, %d periods, %d orders\n",
		time.Since(start).Round(time.Millisecond), added, int64(n)-added,
		added, after.periods-before.periods, after.orders-before.orders)
	return nil
}

// seedCounts are the row counts seed reports on.
type seedCounts struct{ seeded, foreign, periods, orders int64 }

func countSeedRows(ctx context.Context, db *store.DB) (seedCounts, error) {
	var r struct{ Seeded, Others, Periods, Orders int64 }
	err := db.ToolQuery(ctx, &r, `SELECT
		(SELECT COUNT(*) FROM vehicles WHERE vin LIKE ?) AS seeded,
		(SELECT COUNT(*) FROM vehicles WHERE vin NOT LIKE ?) AS others,
		(SELECT COUNT(*) FROM periods) AS periods,
		(SELECT COUNT(*) FROM orders) AS orders`, seedPrefix+"%", seedPrefix+"%")
	if err != nil {
		return seedCounts{}, fmt.Errorf("seed: count rows: %w", err)
	}
	return seedCounts{seeded: r.Seeded, foreign: r.Others, periods: r.Periods, orders: r.Orders}, nil
}

// seedProgress prints the number of seeded vehicles every 3 seconds until
// the returned function is called.
func seedProgress(ctx context.Context, db *store.DB, n int, stdout io.Writer) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(3 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				var have int64
				if err := db.ToolQuery(ctx, &have, `SELECT COUNT(*) FROM vehicles WHERE vin LIKE ?`, seedPrefix+"%"); err == nil {
					fmt.Fprintf(stdout, "seed: %d of %d vehicles present\n", min(have, int64(n)), n)
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

var dsnPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('[^']*'|\S+)`)

// redactDSN hides a password in a PostgreSQL DSN (URL or key=value form).
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" && u.User != nil {
		return u.Redacted()
	}
	return dsnPassword.ReplaceAllString(dsn, "${1}xxxxx")
}
