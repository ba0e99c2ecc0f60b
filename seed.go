package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"time"

	"entitlements/store"

	"github.com/schollz/progressbar/v3"
)

// seedPrefix starts every VIN store.SeedVIN makes.
const seedPrefix = "LSEED"

// seedPrefixEnd is the first string after every one that starts with
// seedPrefix.
const seedPrefixEnd = "LSEEE"

// seed bulk-loads synthetic vehicles for load tests and demos. It names
// the database it writes, refuses (unless force) a database holding
// vehicles that are not seeded ones, shows its progress (seedProgress),
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
	stop := seedProgress(func() (int64, error) {
		var have int64
		// A range of the primary key, which LIKE (case-insensitive in
		// SQLite) cannot use.
		err := db.ToolQuery(ctx, &have, `SELECT COUNT(*) FROM vehicles WHERE vin >= ? AND vin < ?`, seedPrefix, seedPrefixEnd)
		return have, err
	}, n, stdout, isTerminal(stdout))
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

// seedProgress reports, until the returned function is called, how many
// of the n vehicles count says are present: on a terminal as one progress
// bar redrawn in place (github.com/schollz/progressbar), elsewhere (a log
// file, a pipe, CI) as a plain line every 3 seconds, which a log keeps
// readable.
func seedProgress(count func() (int64, error), n int, out io.Writer, terminal bool) (stop func()) {
	every := 3 * time.Second
	show := func(have int64) { fmt.Fprintf(out, "seed: %d of %d vehicles present\n", have, n) }
	finish := func() {}
	if terminal {
		bar := progressbar.NewOptions64(int64(n),
			progressbar.OptionSetWriter(out),
			progressbar.OptionSetDescription("seed"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetItsString("vehicles"),
			progressbar.OptionSetWidth(30))
		every = time.Second // a count reads the whole VIN index range: often enough for a bar that moves per 20 000-car chunk
		show = func(have int64) { bar.Set64(have) }
		finish = func() {
			if have, err := count(); err == nil {
				bar.Set64(min(have, int64(n)))
			}
			bar.Exit()
			fmt.Fprintln(out)
		}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if have, err := count(); err == nil {
					show(min(have, int64(n)))
				}
			}
		}
	}()
	return func() { close(done); <-finished; finish() }
}

// isTerminal reports whether w is a terminal (a character device), where
// seed draws a progress bar.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

var dsnPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('[^']*'|\S+)`)

// redactDSN hides a password in a PostgreSQL DSN (URL or key=value form).
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" && u.User != nil {
		return u.Redacted()
	}
	return dsnPassword.ReplaceAllString(dsn, "${1}xxxxx")
}
