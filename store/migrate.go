package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// migration is one versioned schema change. Statements use two
// placeholders that differ by dialect: {{TS}} (an instant, stored UTC) and
// {{BLOB}}. Where dialects differ beyond that, SQLite/Postgres override Up.
type migration struct {
	Version  int
	Name     string
	Up       []string
	SQLite   []string // if set, used instead of Up on SQLite
	Postgres []string // if set, used instead of Up on PostgreSQL
}

// migrations are applied in Version order and recorded in
// schema_migrations. Never edit one that has shipped; add a new one.
// Version ranges by area keep parallel work from colliding:
// 1-9 foundation, 10-19 orders and payments, 20-29 refunds,
// 30-39 scheduler and notices, 40-49 usage, 50-59 audit, 60-69 coverage
// certificates, 70-79 timeline history and point-in-time reads.
var migrations = []migration{
	{Version: 1, Name: "vehicles, periods, notices", Up: []string{
		`CREATE TABLE vehicles (
			vin              TEXT PRIMARY KEY,
			owner_id         TEXT NOT NULL,
			model            TEXT NOT NULL DEFAULT '',
			activated_at     {{TS}} NOT NULL,
			coverage_ends_at {{TS}} NOT NULL,
			created_at       {{TS}} NOT NULL,
			updated_at       {{TS}} NOT NULL
		)`,
		`CREATE INDEX vehicles_owner_idx ON vehicles (owner_id)`,
		`CREATE INDEX vehicles_coverage_ends_idx ON vehicles (coverage_ends_at)`,
		`CREATE TABLE periods (
			id                   TEXT PRIMARY KEY,
			vin                  TEXT NOT NULL REFERENCES vehicles (vin),
			seq                  INTEGER NOT NULL,
			source               TEXT NOT NULL,
			order_id             TEXT,
			product              TEXT NOT NULL,
			days                 INTEGER NOT NULL DEFAULT 0,
			data_bytes_per_month BIGINT NOT NULL DEFAULT 0,
			paid_at              {{TS}},
			starts_at            {{TS}} NOT NULL,
			ends_at              {{TS}} NOT NULL,
			refunded_at          {{TS}},
			ended                BOOLEAN NOT NULL DEFAULT FALSE,
			created_at           {{TS}} NOT NULL,
			updated_at           {{TS}} NOT NULL,
			UNIQUE (vin, seq)
		)`,
		`CREATE UNIQUE INDEX periods_order_idx ON periods (order_id) WHERE order_id IS NOT NULL`,
		`CREATE INDEX periods_open_ends_idx ON periods (ends_at) WHERE ended = FALSE`,
		`CREATE TABLE notices (
			id              TEXT PRIMARY KEY,
			vin             TEXT NOT NULL,
			owner_id        TEXT NOT NULL,
			kind            TEXT NOT NULL,
			dedupe_key      TEXT NOT NULL UNIQUE,
			data            TEXT NOT NULL,
			status          TEXT NOT NULL,
			attempts        INTEGER NOT NULL DEFAULT 0,
			next_attempt_at {{TS}} NOT NULL,
			last_error      TEXT NOT NULL DEFAULT '',
			created_at      {{TS}} NOT NULL,
			updated_at      {{TS}} NOT NULL,
			sent_at         {{TS}}
		)`,
		`CREATE INDEX notices_vin_idx ON notices (vin, created_at)`,
		`CREATE INDEX notices_due_idx ON notices (status, next_attempt_at)`,
	}},
	{Version: 2, Name: "vehicles: coverage end index with the VIN, for keyset batches", Up: []string{
		`CREATE INDEX vehicles_coverage_vin_idx ON vehicles (coverage_ends_at, vin)`,
		`DROP INDEX vehicles_coverage_ends_idx`,
	}},
	{Version: 3, Name: "vehicles: the coverage end index covers the owner", Up: []string{
		// The jobs select (vin, owner_id) of every vehicle whose coverage
		// ends in a range, by the hundred thousand: with the owner in the
		// index they read no vehicle row (one random page each).
		`CREATE INDEX vehicles_coverage_owner_idx ON vehicles (coverage_ends_at, vin, owner_id)`,
		`DROP INDEX vehicles_coverage_vin_idx`,
	}},
	{Version: 4, Name: "periods: drop the ended flag", Up: []string{
		// Nothing read the flag: access, coverage and a period's status are
		// computed from its instants. Keeping it cost the expire job one
		// random row update per period that ended (a fifth of its time in
		// the bench tool's jobs phase) and every period insert an index
		// entry.
		`DROP INDEX periods_open_ends_idx`,
		`ALTER TABLE periods DROP COLUMN ended`,
	}},
	{Version: 10, Name: "orders, payments, idempotency keys", Up: []string{
		`CREATE TABLE orders (
			id                   TEXT PRIMARY KEY,
			vin                  TEXT NOT NULL REFERENCES vehicles (vin),
			owner_id             TEXT NOT NULL,
			product              TEXT NOT NULL,
			amount_fen           BIGINT NOT NULL CHECK (amount_fen > 0),
			currency             TEXT NOT NULL,
			days                 INTEGER NOT NULL,
			data_bytes_per_month BIGINT NOT NULL DEFAULT 0,
			status               TEXT NOT NULL,
			created_at           {{TS}} NOT NULL,
			expires_at           {{TS}} NOT NULL,
			paid_at              {{TS}},
			cancelled_at         {{TS}},
			refunded_fen         BIGINT NOT NULL DEFAULT 0 CHECK (refunded_fen >= 0 AND refunded_fen <= amount_fen),
			transaction_id       TEXT NOT NULL DEFAULT '',
			updated_at           {{TS}} NOT NULL
		)`,
		`CREATE INDEX orders_vin_idx ON orders (vin, created_at, id)`,
		`CREATE INDEX orders_pending_idx ON orders (expires_at) WHERE status = 'pending'`,
		`CREATE TABLE payments (
			event_id       TEXT PRIMARY KEY,
			order_id       TEXT NOT NULL,
			status         TEXT NOT NULL,
			outcome        TEXT NOT NULL,
			amount_fen     BIGINT NOT NULL,
			currency       TEXT NOT NULL,
			paid_at        {{TS}},
			transaction_id TEXT NOT NULL DEFAULT '',
			received_at    {{TS}} NOT NULL
		)`,
		`CREATE INDEX payments_order_idx ON payments (order_id)`,
		`CREATE INDEX payments_outcome_idx ON payments (outcome, received_at)`,
		`CREATE TABLE idempotency_keys (
			scope        TEXT NOT NULL,
			idem_key     TEXT NOT NULL,
			request_hash TEXT NOT NULL,
			status       INTEGER NOT NULL,
			body         TEXT NOT NULL,
			created_at   {{TS}} NOT NULL,
			PRIMARY KEY (scope, idem_key)
		)`,
	}},
	{Version: 20, Name: "refunds", Up: []string{
		`CREATE TABLE refunds (
			id             TEXT PRIMARY KEY,
			order_id       TEXT NOT NULL REFERENCES orders (id),
			vin            TEXT NOT NULL,
			amount_fen     BIGINT NOT NULL CHECK (amount_fen > 0),
			currency       TEXT NOT NULL,
			reason         TEXT NOT NULL,
			note           TEXT NOT NULL DEFAULT '',
			end_access     BOOLEAN NOT NULL,
			period_action  TEXT NOT NULL,
			transaction_id TEXT NOT NULL DEFAULT '',
			created_by     TEXT NOT NULL,
			created_at     {{TS}} NOT NULL
		)`,
		`CREATE INDEX refunds_created_idx ON refunds (created_at, id)`,
		`CREATE INDEX refunds_order_idx ON refunds (order_id)`,
		`CREATE INDEX refunds_vin_idx ON refunds (vin, created_at)`,
	}},
	{Version: 21, Name: "refunds are append-only",
		SQLite: []string{
			`CREATE TRIGGER refunds_no_update BEFORE UPDATE ON refunds BEGIN SELECT RAISE(ABORT, 'refunds are append-only'); END`,
			`CREATE TRIGGER refunds_no_delete BEFORE DELETE ON refunds BEGIN SELECT RAISE(ABORT, 'refunds are append-only'); END`,
		},
		Postgres: []string{
			`CREATE FUNCTION refunds_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'refunds are append-only'; END $$`,
			`CREATE TRIGGER refunds_append_only BEFORE UPDATE OR DELETE ON refunds
			FOR EACH ROW EXECUTE FUNCTION refunds_append_only()`,
		},
	},
	{Version: 30, Name: "notices: stage and covered_until for reminder dedupe", Up: []string{
		// The coverage end (and reminder stage) a coverage notice is about,
		// so that the set-based reminder and expiry jobs can skip vehicles
		// already notified, and delivery can supersede a reminder whose
		// coverage end has moved.
		`ALTER TABLE notices ADD COLUMN stage INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE notices ADD COLUMN covered_until {{TS}}`,
		`CREATE INDEX notices_coverage_idx ON notices (vin, kind, covered_until)`,
	}},
	{Version: 31, Name: "notices: drop the (vin, created_at) index", Up: []string{
		// notices_coverage_idx starts with the VIN too and serves a
		// vehicle's notice list (a few dozen rows to sort); the second
		// index over random VINs was a fifth of the cost of each notice
		// the jobs insert by the hundred thousand.
		`DROP INDEX notices_vin_idx`,
	}},
	noticesKeyedByCoverage,
	noticesAddressedToPayer,
	jobRunsMigration,
	coveredSinceMigration,
	usageMigration,
	usageAllowanceMigration,
	auditMigration,
	{Version: 60, Name: "vehicles: epoch, raised when coverage shrinks", Up: []string{
		// Offline coverage certificates state the epoch they were issued
		// at; a car that sees a higher one online discards them. Adding a
		// column with a constant default rewrites no row on either engine.
		`ALTER TABLE vehicles ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0`,
	}},
	historyMigration,
	usageArrivalsMigration,
}

func (db *DB) render(m migration) []string {
	stmts := m.Up
	switch {
	case db.dialect == SQLite && m.SQLite != nil:
		stmts = m.SQLite
	case db.dialect == Postgres && m.Postgres != nil:
		stmts = m.Postgres
	}
	ts, blob := "DATETIME", "BLOB"
	if db.dialect == Postgres {
		ts, blob = "TIMESTAMPTZ", "BYTEA"
	}
	out := make([]string, len(stmts))
	for i, s := range stmts {
		s = strings.ReplaceAll(s, "{{TS}}", ts)
		out[i] = strings.ReplaceAll(s, "{{BLOB}}", blob)
	}
	return out
}

// migrationLockID is the PostgreSQL advisory lock key that serialises
// concurrent migrators (several replicas starting at once).
const migrationLockID = 7_201_100_001

// Migrate applies every pending migration, in order, in one transaction,
// and records each in schema_migrations. It is safe to run concurrently
// from several processes and returns the versions it applied.
func (db *DB) Migrate(ctx context.Context) (applied []int, err error) {
	return db.migrateWhere(ctx, func(int) bool { return true })
}

// migrateWhere applies the pending migrations whose version want accepts
// (tests use it to build a database as an older release left it).
func (db *DB) migrateWhere(ctx context.Context, want func(version int) bool) (applied []int, err error) {
	err = db.writeBulk(ctx, func(tx *Tx) error {
		if db.dialect == Postgres {
			if _, err := tx.exec(migrationLockStmt, migrationLockID); err != nil {
				return err
			}
		}
		ts := "DATETIME"
		if db.dialect == Postgres {
			ts = "TIMESTAMPTZ"
		}
		if err := tx.raw(`CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at ` + ts + ` NOT NULL)`); err != nil {
			return err
		}
		have := map[int]bool{}
		rows, err := tx.query(migrationsDoneStmt)
		if err != nil {
			return err
		}
		err = eachRow(rows, func() error {
			var v int
			err := rows.Scan(&v)
			have[v] = true
			return err
		})
		if err != nil {
			return err
		}
		for _, m := range sortedMigrations() {
			if have[m.Version] || !want(m.Version) {
				continue
			}
			for _, s := range db.render(m) {
				if err := tx.raw(s); err != nil {
					return fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
				}
			}
			if _, err := tx.exec(migrationDoneStmt, m.Version, m.Name, db.timeArg(time.Now())); err != nil {
				return err
			}
			applied = append(applied, m.Version)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return applied, nil
}

var (
	migrationLockStmt  = statement{"migrate/lock", func() string { return `SELECT pg_advisory_xact_lock(?)` }}
	migrationsDoneStmt = statement{"migrate/done", func() string { return `SELECT version FROM schema_migrations` }}
	migrationDoneStmt  = statement{"migrate/record", func() string {
		return `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`
	}}
)

func sortedMigrations() []migration {
	ms := slices.Clone(migrations)
	slices.SortFunc(ms, func(a, b migration) int { return a.Version - b.Version })
	return ms
}

// noticesKeyedByCoverage makes a coverage notice unique by what it is about,
// (kind, covered_until, vin, stage), and the dedupe key unique among the
// other notices only.
//
// The jobs create coverage notices by the hundred thousand, in
// (coverage end, VIN) order. Each used to cost two inserts at random
// places: the dedupe key (which starts with the kind, then the VIN) and
// the (vin, kind, covered_until) index that their NOT EXISTS probes read.
// The coverage index now starts with the kind and the coverage end, so the
// jobs insert into it and probe it in the order they walk, and the dedupe
// key of a coverage notice (the same four values, as text) needs no index
// of its own. The (vin, created_at) index comes back for a vehicle's
// notice list: one random insert a notice instead of two, which about
// halved the time of inserting a fleet's reminders in batches
// (BenchmarkCreateReminders; docs/performance.md).
//
// SQLite cannot drop a column's UNIQUE constraint, so it rebuilds the
// table.
var noticesKeyedByCoverage = migration{Version: 32, Name: "notices: coverage notices unique by (kind, covered_until, vin, stage)",
	SQLite: []string{
		`CREATE TABLE notices_new (
			id              TEXT PRIMARY KEY,
			vin             TEXT NOT NULL,
			owner_id        TEXT NOT NULL,
			kind            TEXT NOT NULL,
			dedupe_key      TEXT NOT NULL,
			data            TEXT NOT NULL,
			status          TEXT NOT NULL,
			attempts        INTEGER NOT NULL DEFAULT 0,
			next_attempt_at DATETIME NOT NULL,
			last_error      TEXT NOT NULL DEFAULT '',
			created_at      DATETIME NOT NULL,
			updated_at      DATETIME NOT NULL,
			sent_at         DATETIME,
			stage           INTEGER NOT NULL DEFAULT 0,
			covered_until   DATETIME
		)`,
		`INSERT INTO notices_new (id, vin, owner_id, kind, dedupe_key, data, status, attempts, next_attempt_at,
			last_error, created_at, updated_at, sent_at, stage, covered_until)
		SELECT id, vin, owner_id, kind, dedupe_key, data, status, attempts, next_attempt_at,
			last_error, created_at, updated_at, sent_at, stage, covered_until FROM notices ORDER BY rowid`,
		`DROP TABLE notices`,
		`ALTER TABLE notices_new RENAME TO notices`,
		`CREATE INDEX notices_due_idx ON notices (status, next_attempt_at)`,
		`CREATE UNIQUE INDEX notices_dedupe_idx ON notices (dedupe_key) WHERE covered_until IS NULL`,
		`CREATE UNIQUE INDEX notices_coverage_idx ON notices (kind, covered_until, vin, stage) WHERE covered_until IS NOT NULL`,
		`CREATE INDEX notices_vin_idx ON notices (vin, created_at)`,
	},
	Postgres: []string{
		`ALTER TABLE notices DROP CONSTRAINT notices_dedupe_key_key`,
		`DROP INDEX notices_coverage_idx`,
		`CREATE UNIQUE INDEX notices_dedupe_idx ON notices (dedupe_key) WHERE covered_until IS NULL`,
		`CREATE UNIQUE INDEX notices_coverage_idx ON notices (kind, covered_until, vin, stage) WHERE covered_until IS NOT NULL`,
		`CREATE INDEX notices_vin_idx ON notices (vin, created_at)`,
	},
}
