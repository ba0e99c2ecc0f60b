// Package storetest opens fresh, migrated databases for tests: a real
// SQLite file in t.TempDir(), and a private schema on the PostgreSQL
// server named by ENTITLEMENTS_TEST_POSTGRES_DSN when it is set.
//
// Without that variable the PostgreSQL cases skip, saying so. With it set,
// an unreachable server fails the test: CI sets it and the tests must run.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"entitlements/store"
)

// EnvPostgresDSN names the PostgreSQL server used by tests.
const EnvPostgresDSN = "ENTITLEMENTS_TEST_POSTGRES_DSN"

// Backends lists the dialects every store and API test runs against.
var Backends = []string{store.SQLite, store.Postgres}

// Open returns a migrated store of the given dialect, closed (and, on
// PostgreSQL, its schema dropped) when the test ends.
func Open(t testing.TB, dialect string) *store.DB {
	t.Helper()
	cfg := Config(t, dialect)
	db, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open %s: %v", dialect, err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate %s: %v", dialect, err)
	}
	return db
}

// Config returns a store configuration for a fresh database of the given
// dialect: an SQLite file in t.TempDir(), or a new PostgreSQL schema. It
// skips the test for PostgreSQL when no server is configured.
func Config(t testing.TB, dialect string) store.Config {
	t.Helper()
	switch dialect {
	case store.SQLite:
		// The snapshot cache is on, as the service runs SQLite, so that
		// every test also checks its invalidation; OpenPair turns it off.
		return store.Config{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "test.db"), SnapshotCache: 1000}
	case store.Postgres:
		base := os.Getenv(EnvPostgresDSN)
		if base == "" {
			t.Skipf("PostgreSQL tests skipped: set %s (e.g. host=127.0.0.1 user=postgres dbname=test sslmode=disable) to run them", EnvPostgresDSN)
		}
		return store.Config{Driver: store.Postgres, DSN: withSchema(t, base), MaxOpenConns: 10}
	}
	t.Fatalf("unknown dialect %q", dialect)
	return store.Config{}
}

// withSchema creates a private schema for the test and returns a DSN whose
// connections use it, so that tests can run in parallel on one server.
func withSchema(t testing.TB, base string) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	admin, err := store.Open(context.Background(), store.Config{Driver: store.Postgres, DSN: base, MaxOpenConns: 2})
	if err != nil {
		t.Fatalf("PostgreSQL at %s=%q is unreachable: %v", EnvPostgresDSN, base, err)
	}
	if _, err := admin.ToolExec(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin.ToolExec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	})
	if strings.Contains(base, "://") {
		sep := "?"
		if strings.Contains(base, "?") {
			sep = "&"
		}
		return base + sep + "search_path=" + schema
	}
	return base + " search_path=" + schema
}

// Each runs fn as a subtest once per backend.
func Each(t *testing.T, fn func(t *testing.T, dialect string)) {
	for _, d := range Backends {
		t.Run(d, func(t *testing.T) { fn(t, d) })
	}
}

// OpenPair returns two independent stores (separate pools, as two
// replicas would have) on one fresh, migrated database.
func OpenPair(t testing.TB, dialect string) (*store.DB, *store.DB) {
	t.Helper()
	return OpenPairWith(t, dialect, func(a, b *store.Config) {
		a.SnapshotCache, b.SnapshotCache = 0, 0 // two writers: a cache in either would go stale
	})
}

// OpenCachedPair is OpenPair on PostgreSQL with the snapshot cache on in
// both stores, kept coherent by their listeners (a never-expiring entry
// unless maxAge is set, so that only notifications refresh it). It
// returns once both listen.
func OpenCachedPair(t testing.TB, maxAge time.Duration) (*store.DB, *store.DB) {
	t.Helper()
	if maxAge == 0 {
		maxAge = time.Hour
	}
	a, b := OpenPairWith(t, store.Postgres, func(a, b *store.Config) {
		a.SnapshotCache, b.SnapshotCache = 1000, 1000
		a.SnapshotCacheMaxAge, b.SnapshotCacheMaxAge = maxAge, maxAge
	})
	WaitListening(t, a)
	WaitListening(t, b)
	return a, b
}

// OpenPairWith is OpenPair with each store's configuration edited first.
func OpenPairWith(t testing.TB, dialect string, edit func(a, b *store.Config)) (*store.DB, *store.DB) {
	t.Helper()
	ca := Config(t, dialect)
	cb := ca
	edit(&ca, &cb)
	open := func(cfg store.Config) *store.DB {
		db, err := store.Open(context.Background(), cfg)
		if err != nil {
			t.Fatalf("open %s: %v", dialect, err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(ca), open(cb)
	if _, err := a.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate %s: %v", dialect, err)
	}
	return a, b
}

// Query runs a read-only query on db and scans its rows into dest
// (store.DB.ToolQuery), for tests that look at the rows themselves.
func Query(db *store.DB, dest any, q string, args ...any) error {
	return db.ToolQuery(context.Background(), dest, q, args...)
}

// Exec runs a statement that changes db through its write path
// (store.DB.ToolExec), for tests that set up rows by hand.
func Exec(db *store.DB, q string, args ...any) error {
	_, err := db.ToolExec(context.Background(), q, args...)
	return err
}

// WaitListening waits until db's snapshot listener listens (its cache
// is on), for at most ten seconds.
func WaitListening(t testing.TB, db *store.DB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !db.SnapshotCacheStats().Listening {
		if time.Now().After(deadline) {
			t.Fatal("the snapshot listener is not listening after 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
