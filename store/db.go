// Package store keeps the service's state in SQLite or PostgreSQL through
// gorm. It owns transactions; the rules applied inside them live in
// package billing. Every method that changes coverage or money does so in
// one transaction together with the outbox notice it causes.
//
// SQLite allows one writer at a time. The store therefore keeps two pools:
// a writer pool of one connection whose transactions begin IMMEDIATE (so a
// read-then-write never fails half way with "database is locked"), and a
// reader pool for queries outside transactions, whose connections refuse
// to write (query_only). On PostgreSQL both pools
// are the same, and read-modify-write paths lock the vehicle row with
// SELECT ... FOR UPDATE (a clause SQLite ignores, where the single writer
// already serialises them).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dialects.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Config selects and tunes the database.
type Config struct {
	Driver          string // SQLite or Postgres
	DSN             string // a file path (or file: URI) for SQLite; a libpq DSN or URL for PostgreSQL
	MaxOpenConns    int    // PostgreSQL pool size, and the SQLite reader pool size; 0 = a default
	MaxIdleConns    int
	ConnMaxLifetime time.Duration
	// CacheMiB is the SQLite writer connection's page cache (0 = 32 MiB).
	CacheMiB int
	// CheckpointEvery is how often the WAL is copied back into an SQLite
	// database file, in the background (0 = every second).
	CheckpointEvery time.Duration
	// WALLimit is the size, in bytes, to which SQLite truncates a WAL it
	// restarts; past a quarter of it the checkpointer holds writers off
	// to let the WAL restart (0 = 256 MiB).
	WALLimit int64
	// SnapshotCache is how many vehicles' entitlement snapshots to keep in
	// memory (0 = none). On SQLite it is correct only when this store is
	// the database's only writer (one process); on PostgreSQL only when
	// every store writing the database has it on (cache.go, listen.go).
	SnapshotCache int
	// SnapshotCacheMiB bounds the snapshot cache's memory as well
	// (0 = 48 MiB).
	SnapshotCacheMiB int
	// SnapshotCacheMaxAge is how long a cached snapshot is served before
	// it is read again (0 = none on SQLite, a minute on PostgreSQL).
	SnapshotCacheMaxAge time.Duration
}

// DB is the store. Its zero value is not usable; call Open.
type DB struct {
	dialect string
	wr      *writer        // the writer pool, reached only through write (write.go)
	read    *gorm.DB       // the reader pool; the writer's pool on PostgreSQL
	reads   *stmtCache     // statements prepared on the reader pool
	cache   *snapshotCache // nil when off
	listen  *listener      // PostgreSQL with the cache on
	ckpt    *checkpointer  // SQLite files only
	file    string         // the SQLite DSN for a connection of Backup's own
}

// Open connects to the database described by cfg. It does not migrate;
// call Migrate.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	gcfg := func() *gorm.Config {
		return &gorm.Config{
			Logger:                 logger.Discard,
			SkipDefaultTransaction: true,
			PrepareStmt:            false, // the store prepares its own statements (stmtCache); gorm serves cold paths
			NowFunc:                func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		}
	}
	db := &DB{dialect: cfg.Driver}
	switch cfg.Driver {
	case SQLite:
		if err := checkSynchronous(cfg.DSN); err != nil {
			return nil, err
		}
		if err := ensureDir(cfg.DSN); err != nil {
			return nil, err
		}
		w, err := gorm.Open(sqlite.New(sqlite.Config{
			DriverName: sqliteDriver(writerPragmas(or(cfg.CacheMiB, 32), walLimit(cfg))),
			DSN:        sqliteDSN(cfg.DSN, "immediate"),
		}), gcfg())
		if err != nil {
			return nil, fmt.Errorf("open sqlite writer: %w", err)
		}
		r, err := gorm.Open(sqlite.Open(queryOnly(sqliteDSN(cfg.DSN, "deferred"))), gcfg())
		if err != nil {
			return nil, fmt.Errorf("open sqlite reader: %w", err)
		}
		if db.wr, err = newWriter(ctx, w, cfg.Driver); err != nil {
			return nil, err
		}
		db.read = r
		db.file = sqliteDSN(cfg.DSN, "deferred")
		if err := pool(w, 1, 1, 0); err != nil {
			return nil, err
		}
		if err := pool(r, or(cfg.MaxOpenConns, 8), or(cfg.MaxIdleConns, 8), cfg.ConnMaxLifetime); err != nil {
			return nil, err
		}
		if inMemory(cfg.DSN) {
			break
		}
		if db.ckpt, err = startCheckpointer(sqliteDSN(cfg.DSN, "deferred"), or(cfg.CheckpointEvery, time.Second), db.wr.slot, walLimit(cfg)); err != nil {
			return nil, err
		}
	case Postgres:
		g, err := gorm.Open(postgres.Open(cfg.DSN), gcfg())
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		if err := pool(g, or(cfg.MaxOpenConns, 20), or(cfg.MaxIdleConns, 10), or(cfg.ConnMaxLifetime, 30*time.Minute)); err != nil {
			return nil, err
		}
		if db.wr, err = newWriter(ctx, g, cfg.Driver); err != nil {
			return nil, err
		}
		db.read = g
	default:
		return nil, fmt.Errorf("unknown database driver %q (want %q or %q)", cfg.Driver, SQLite, Postgres)
	}
	r, err := db.read.DB()
	if err != nil {
		return nil, err
	}
	db.reads = newStmtCache(r, cfg.Driver)
	db.openSnapshotCache(ctx, cfg)
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func pool(g *gorm.DB, open, idle int, life time.Duration) error {
	s, err := g.DB()
	if err != nil {
		return err
	}
	s.SetMaxOpenConns(open)
	s.SetMaxIdleConns(idle)
	s.SetConnMaxLifetime(life)
	return nil
}

// sqliteDSN turns a path or file: URI into a mattn/go-sqlite3 DSN with the
// PRAGMAs the service relies on, so that every pooled connection gets them.
// Parameters already present in dsn win (checkSynchronous has refused a
// weaker synchronous).
//
// synchronous=FULL: in WAL mode SQLite then syncs the WAL to disk in every
// commit, before the commit returns, so a write the service has
// acknowledged (a payment answered 200, which the provider never sends
// again) survives an OS crash or a power cut. With NORMAL the WAL is
// synced only at checkpoints, and the last commits before a power cut
// can vanish. Only the writer's connection commits, so only it pays for
// this: one fsync per commit, which group commit (write.go) shares among
// the payments waiting together. The readers and the checkpointer get the
// same setting so that no connection of the store runs at a weaker one;
// it costs them nothing (a reader never commits, and a checkpoint syncs
// the WAL and the database file at NORMAL and FULL alike).
func sqliteDSN(dsn, txlock string) string {
	base, query, _ := strings.Cut(dsn, "?")
	if !strings.HasPrefix(base, "file:") {
		base = "file:" + base
	}
	q, _ := url.ParseQuery(query)
	set := func(k, v string) {
		if !q.Has(k) {
			q.Set(k, v)
		}
	}
	set("_journal_mode", "WAL")
	set("_busy_timeout", "10000")
	set("_foreign_keys", "on")
	set("_synchronous", "FULL")
	set("_txlock", txlock)
	set("cache", "private")
	return base + "?" + q.Encode()
}

// queryOnly makes an SQLite DSN's connections refuse to change the
// database (PRAGMA query_only): the reader pool's, so that nothing can
// write past the writer slot and the snapshot cache's invalidation
// (write.go). The checkpointer and Backup (whose VACUUM INTO writes a
// file, which query_only refuses) open connections of their own.
func queryOnly(dsn string) string {
	base, query, _ := strings.Cut(dsn, "?")
	q, _ := url.ParseQuery(query)
	q.Set("_query_only", "1")
	return base + "?" + q.Encode()
}

// checkSynchronous refuses an SQLite DSN that asks for a synchronous
// setting weaker than FULL (mattn/go-sqlite3 reads _synchronous or _sync):
// the store acknowledges only writes that are on disk, and there is no
// setting to trade that for speed.
func checkSynchronous(dsn string) error {
	_, query, _ := strings.Cut(dsn, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return fmt.Errorf("sqlite dsn %q: %w", dsn, err)
	}
	for _, k := range []string{"_synchronous", "_sync"} {
		for _, v := range q[k] {
			switch strings.ToUpper(v) {
			case "2", "FULL", "3", "EXTRA":
			default:
				return fmt.Errorf("sqlite dsn sets %s=%s: the store commits with synchronous=FULL (or EXTRA), so that an acknowledged write survives a power cut; remove the parameter", k, v)
			}
		}
	}
	return nil
}

func ensureDir(dsn string) error {
	if inMemory(dsn) {
		return nil
	}
	path, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("create database directory: %w", err)
		}
	}
	return nil
}

// inMemory reports whether an SQLite DSN names an in-memory database.
func inMemory(dsn string) bool {
	path, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	return path == "" || path == ":memory:" || strings.Contains(dsn, "mode=memory")
}

// Ping checks that both pools reach the database.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.wr.ping(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	r, err := db.read.DB()
	if err != nil {
		return err
	}
	if err := r.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Close stops the snapshot listener and closes both pools.
func (db *DB) Close() error {
	if db.listen != nil {
		db.listen.close()
	}
	var errs []error
	seen := map[*sql.DB]bool{}
	var pools []func() (*sql.DB, error)
	if db.wr != nil {
		errs = append(errs, db.wr.close())
		pools = append(pools, db.wr.sqlDB)
	}
	if db.read != nil {
		pools = append(pools, db.read.DB)
	}
	for _, pool := range pools {
		s, err := pool()
		if err != nil || seen[s] {
			continue
		}
		seen[s] = true
		errs = append(errs, s.Close())
	}
	if db.ckpt != nil {
		errs = append(errs, db.ckpt.Close())
	}
	return errors.Join(errs...)
}

func walLimit(cfg Config) int64 {
	if cfg.WALLimit > 0 {
		return cfg.WALLimit
	}
	return defaultWALLimit
}

// uninterrupted is ctx without its cancellation, for SQLite statements
// that must run to their end once started. mattn/go-sqlite3 runs every
// statement under a cancellable context in a goroutine of its own, to
// interrupt it when the context ends, and SQLite answers an interrupt in
// a write transaction by rolling the whole transaction back. A write
// transaction that has the writer finishes instead (its statements are
// indexed and short, and busy_timeout bounds any wait), and the reads on
// the hot path do not pay for a goroutine per statement and row.
func uninterrupted(ctx context.Context) context.Context {
	return context.WithoutCancel(ctx)
}

// utc normalises an instant for storage: UTC, microsecond precision (what
// PostgreSQL keeps), so that what is read back equals what was written.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func utcp(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := utc(*t)
	return &u
}
