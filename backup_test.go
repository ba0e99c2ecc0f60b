package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"entitlements/billing"
	"entitlements/store"
)

func TestBackupCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "entitlements.db")
	db, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: dbPath})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	vin := billing.VIN(billing.FixCheckDigit("LSVAX4E10P4000001"))
	now := time.Now()
	if _, _, err := db.Activate(ctx, vin, billing.Activation{ActivatedAt: now, OwnerID: "o"}, billing.TrialTerms{Months: 12}, time.UTC, now); err != nil {
		t.Fatal(err)
	}
	getenv := env(map[string]string{"ENTITLEMENTS_DATABASE_DSN": dbPath})
	to := filepath.Join(dir, "copy.db")
	var out, errOut bytes.Buffer
	// The service's store stays open on the database meanwhile.
	if err := run(ctx, []string{"backup", "--to", to}, &out, &errOut, getenv); err != nil {
		t.Fatalf("backup: %v (%s)", err, errOut.String())
	}
	if !strings.Contains(out.String(), "backed up") {
		t.Errorf("stdout = %q, want it to say what was backed up", out.String())
	}
	copied, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: to})
	if err != nil {
		t.Fatal(err)
	}
	defer copied.Close()
	if v, err := copied.Vehicle(ctx, vin); err != nil || v.OwnerID != "o" {
		t.Errorf("the copy's vehicle = %+v, %v; want the one activated", v, err)
	}

	if err := run(ctx, []string{"backup", "--to", to}, &out, &errOut, getenv); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("backup over an existing file = %v, want it refused", err)
	}
	if err := run(ctx, []string{"backup"}, &out, &errOut, getenv); err == nil || !strings.Contains(err.Error(), "--to") {
		t.Errorf("backup without --to = %v, want it refused naming --to", err)
	}
	missing := filepath.Join(dir, "missing.db")
	err = run(ctx, []string{"backup", "--to", filepath.Join(dir, "other.db")}, &out, &errOut, env(map[string]string{"ENTITLEMENTS_DATABASE_DSN": missing}))
	if err == nil {
		t.Errorf("backup of a database that does not exist succeeded")
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("backup created the missing database %s (stat: %v)", missing, err)
	}
}

func TestBackupCommandRefusesPostgres(t *testing.T) {
	to := filepath.Join(t.TempDir(), "copy.db")
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"backup", "--to", to}, &out, &errOut, env(map[string]string{
		"ENTITLEMENTS_DATABASE_DRIVER": "postgres",
		"ENTITLEMENTS_DATABASE_DSN":    "host=127.0.0.1 port=1 dbname=none",
	}))
	if !errors.Is(err, store.ErrBackupUnsupported) || !strings.Contains(err.Error(), "pg_dump") {
		t.Errorf("backup on PostgreSQL = %v, want it refused, pointing to pg_dump", err)
	}
	if _, err := os.Stat(to); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("backup on PostgreSQL created %s (stat: %v)", to, err)
	}
}
