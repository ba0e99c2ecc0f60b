package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"entitlements/store"
)

// backup is `entitlements backup --to FILE`: it writes a consistent copy
// of the configured SQLite database to FILE, a file that must not exist,
// while the service may keep running on the database. PostgreSQL is
// refused: pg_dump backs it up.
func backup(ctx context.Context, cfg *Config, to string, stdout io.Writer) error {
	if to == "" {
		return errors.New("backup: --to FILE is required")
	}
	if cfg.Database.Driver != store.SQLite {
		return fmt.Errorf("backup: database.driver is %s: %w", cfg.Database.Driver, store.ErrBackupUnsupported)
	}
	// Opening an SQLite path that does not exist would create an empty
	// database, and back that up.
	path, _, _ := strings.Cut(strings.TrimPrefix(cfg.Database.DSN, "file:"), "?")
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("backup: database %s: %w", cfg.Database.DSN, err)
	}
	db, err := store.Open(ctx, cfg.StoreConfig())
	if err != nil {
		return err
	}
	defer db.Close()
	start := time.Now()
	if err := db.Backup(ctx, to); err != nil {
		return err
	}
	fi, err := os.Stat(to)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s (%d bytes) in %s\n", path, to, fi.Size(), time.Since(start).Round(time.Millisecond))
	return nil
}
