package store

import (
	"database/sql"
	"fmt"
	"time"

	"entitlements/billing"
)

// Timeline history. Every change of a vehicle's timeline (activation, a
// payment's period, a refund's cut or removal and the periods laid out
// again after it, an ownership transfer, an epoch bump) is kept as a
// version: timeline_versions has one row per version (why and when), and
// period_versions one row per state of a period, valid for the versions
// [from_version, to_version) (to_version NULL while current). A version
// writes only what changed: a payment one version row and one period row;
// a refund one version row and, per period it changed, a closed row and a
// new one. Both tables are append-only in spirit: a period row is closed
// (to_version set) once, and no statement of the service deletes either.
//
// Versions are written in one place: the helpers that write periods
// report the state they gave each period (Tx.periodWritten), those that
// write the vehicle row mark the VIN (Tx.timelineChanged), and DB.write,
// once the write's work succeeded, records the version (Tx.flushVersions)
// in the same transaction: the vehicle's owner and epoch and the periods
// written, nothing read back but one row. The version's cause, time and
// references are those of the write's audit entry for that VIN; a
// timeline change without one fails the write. A vehicle changed after its
// last version by something that recorded none (a release without
// history, in a rolling upgrade) is caught when it is next marked, and
// that version compares the whole timeline with the last one instead.
// TestEveryTimelineWriteIsVersioned checks that the statements that write
// periods or vehicles run in functions that report or mark.
//
// The plain reads never read these tables: the current version is the
// periods and vehicles rows, which they read as before.

// historyMigration creates the version tables, keyed by VIN first (every
// read and write of them is one vehicle's), WITHOUT ROWID on SQLite (one
// B-tree each, no separate key index), and records the timeline every
// vehicle has now as its first version, recorded at the vehicle's last
// change (vehicles.updated_at, which every timeline change sets): the
// history of a vehicle activated before starts there
// (EHistoryUnavailable before it).
var historyMigration = migration{Version: 70, Name: "timeline history: timeline_versions and period_versions",
	Up:     historySchema(""),
	SQLite: historySchema(" WITHOUT ROWID"),
}

func historySchema(opts string) []string {
	return []string{
		`CREATE TABLE timeline_versions (
			vin         TEXT NOT NULL,
			version     INTEGER NOT NULL,
			recorded_at {{TS}} NOT NULL,
			cause       TEXT NOT NULL,
			order_id    TEXT,
			refund_id   TEXT,
			actor       TEXT NOT NULL DEFAULT '',
			owner_id    TEXT NOT NULL,
			epoch       BIGINT NOT NULL DEFAULT 0,
			PRIMARY KEY (vin, version)
		)` + opts,
		`CREATE TABLE period_versions (
			vin                  TEXT NOT NULL,
			period_id            TEXT NOT NULL,
			from_version         INTEGER NOT NULL,
			to_version           INTEGER,
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
			PRIMARY KEY (vin, period_id, from_version)
		)` + opts,
		`INSERT INTO timeline_versions (vin, version, recorded_at, cause, actor, owner_id, epoch)
			SELECT vin, 1, updated_at, '` + causeHistoryStarted + `', 'system:migration', owner_id, epoch FROM vehicles`,
		`INSERT INTO period_versions (vin, period_id, from_version, seq, source, order_id, product, days,
			data_bytes_per_month, paid_at, starts_at, ends_at, refunded_at)
			SELECT vin, id, 1, seq, source, order_id, product, days, data_bytes_per_month, paid_at, starts_at, ends_at, refunded_at
			FROM periods`,
	}
}

// usageArrivalsMigration keeps, per cycle, vehicle and usage batch, the
// records the batch brought (category, bytes, ended_at), so that a
// point-in-time read rebuilds a vehicle's month as known at any instant
// with one seek. One row per (cycle, vehicle) a batch touches, as many as
// the batch's usage_cycles upserts, where an index of usage_records by
// vehicle would cost one random B-tree insert per record (measured: it
// halved BenchmarkIngestUsage's records/s on SQLite). The key starts with
// the cycle, so that inserts land in the current month's part of the tree
// and pruning deletes a key range. The records already stored are
// recorded as arrived when they were received.
var usageArrivalsMigration = migration{Version: 71, Name: "usage_arrivals: what each usage batch brought, per cycle and vehicle",
	SQLite: []string{
		usageArrivalsTable + ` WITHOUT ROWID`,
		`INSERT INTO usage_arrivals (cycle, vin, received_at, batch, records)
			SELECT cycle, vin, received_at, 'migration', group_concat(substr(category, 1, 1) || ',' || bytes || ',' || ended_at, ';')
			FROM usage_records GROUP BY cycle, vin, received_at`,
	},
	Postgres: []string{
		usageArrivalsTable,
		`INSERT INTO usage_arrivals (cycle, vin, received_at, batch, records)
			SELECT cycle, vin, received_at, 'migration',
				string_agg(left(category, 1) || ',' || bytes || ',' || (EXTRACT(EPOCH FROM ended_at) * 1000000)::bigint, ';')
			FROM usage_records GROUP BY cycle, vin, received_at`,
	},
}

const usageArrivalsTable = `CREATE TABLE usage_arrivals (
	cycle       TEXT NOT NULL,
	vin         TEXT NOT NULL,
	received_at {{TS}} NOT NULL,
	batch       TEXT NOT NULL,
	records     TEXT NOT NULL,
	PRIMARY KEY (cycle, vin, received_at, batch)
)`

// Causes of versions that no audit action names.
const (
	causeHistoryStarted = "history.started" // the timeline a vehicle had when history began (migration)
	causeSeeded         = "seeded"          // a seeded vehicle's first version
)

// versionDraft is what a write changed of one vehicle's timeline.
type versionDraft struct {
	vin     billing.VIN
	periods []billing.Period // the states the write gave the periods it wrote, one per period
	isNew   map[string]bool  // periods inserted by the write (no earlier row to close)
	// stale: the vehicle changed after its last version (a release without
	// history wrote it, or it has no version at all), so the version
	// compares the whole timeline with the last version instead.
	stale bool
}

// changes returns the periods the write wrote and, for each, whether it
// replaces a row of the last version (which is then closed).
func (d *versionDraft) changes() (changed []billing.Period, replaced []bool) {
	replaced = make([]bool, len(d.periods))
	for i, p := range d.periods {
		replaced[i] = !d.isNew[p.ID]
	}
	return d.periods, replaced
}

func (tx *Tx) draft(vin billing.VIN) *versionDraft {
	for _, d := range tx.versioned {
		if d.vin == vin {
			return d
		}
	}
	return nil
}

// timelineChanged marks vin: its timeline (periods, owner or epoch)
// changes in this write, and a version is recorded when the write
// succeeds. It must run before the write's first change of the vehicle
// row: it checks there that the last version is the vehicle's latest
// change (vehicles.updated_at, which every timeline change sets, is not
// after its recorded_at).
func (tx *Tx) timelineChanged(vin billing.VIN) error {
	if tx.draft(vin) != nil {
		return nil
	}
	g, found := tx.guards[vin]
	updated, recorded := g.updated, g.recorded
	if !found {
		var err error
		found, err = tx.queryRow(tx.db.versionGuardStmt(), []any{string(vin)}, &updated, &recorded)
		if err != nil {
			return fmt.Errorf("timeline version of %s: %w", vin, err)
		}
	}
	tx.versioned = append(tx.versioned, &versionDraft{vin: vin, isNew: map[string]bool{},
		stale: found && (!recorded.Valid || updated.T.After(recorded.T))})
	return nil
}

// versionGuard is what versionGuardStmt reads of a vehicle: its last
// change and its last version's time.
type versionGuard struct{ updated, recorded dbTime }

// knowGuard remembers vin's version guard, read before the write changed
// anything of the vehicle (timelineForWrite), for timelineChanged.
func (tx *Tx) knowGuard(vin billing.VIN, updated, recorded dbTime) {
	if tx.guards == nil {
		tx.guards = map[billing.VIN]versionGuard{}
	}
	tx.guards[vin] = versionGuard{updated, recorded}
}

// periodWritten records the state the write gave period p (isNew: it
// inserted it); every statement that writes a period reports it here.
func (tx *Tx) periodWritten(p billing.Period, isNew bool) error {
	if err := tx.timelineChanged(p.VIN); err != nil {
		return err
	}
	d := tx.draft(p.VIN)
	if isNew {
		d.isNew[p.ID] = true
	}
	for i := range d.periods {
		if d.periods[i].ID == p.ID {
			d.periods[i] = p
			return nil
		}
	}
	d.periods = append(d.periods, p)
	return nil
}

// flushVersions records a version of every vehicle the write changed. It
// runs after the write's work and before its audit entries are inserted.
func (tx *Tx) flushVersions() error {
	for _, d := range tx.versioned {
		if err := tx.recordVersion(d); err != nil {
			return fmt.Errorf("record timeline version of %s: %w", d.vin, err)
		}
	}
	tx.versioned = nil
	return nil
}

func (tx *Tx) recordVersion(d *versionDraft) error {
	db, vin := tx.db, d.vin
	cause := tx.causeOf(vin)
	if d.stale || cause == nil {
		return tx.recordVersionSlowly(d, cause)
	}
	changed, replaced := d.changes()
	// One statement numbers the version after the last, takes the owner
	// and epoch from the vehicle row as the write left it, and records
	// nothing when no period changed and neither did the owner or epoch.
	at := db.timeArg(cause.At)
	var version int64
	found, err := tx.queryRow(db.nextVersionStmt(), []any{at, at, string(cause.Action), nullable(cause.OrderID),
		nullable(cause.RefundID), tx.actor.String(), string(vin), len(changed) > 0}, &version)
	if err != nil || !found {
		return err // not found: nothing to record, or no vehicle (which has no timeline)
	}
	return tx.insertPeriodVersions(vin, version, changed, replaced)
}

// recordVersionSlowly records the version of a stale draft, whose changed
// periods are found by comparing the whole timeline with the last
// version, or reports a write that changed a timeline without an audit
// entry (cause nil). It reads the last version before inserting.
func (tx *Tx) recordVersionSlowly(d *versionDraft, cause *billing.AuditEntry) error {
	db, vin := tx.db, d.vin
	var (
		owner     string
		epoch     int64
		last      sql.NullInt64
		lastAt    dbTime
		lastOwner sql.NullString
		lastEpoch sql.NullInt64
	)
	found, err := tx.queryRow(db.lastVersionStmt(), []any{string(vin)}, &owner, &epoch, &last, &lastAt, &lastOwner, &lastEpoch)
	if err != nil || !found {
		return err // a vehicle that is not there has no timeline
	}
	changed, replaced := d.changes()
	if d.stale {
		tl, err := db.timeline(tx.query, vin)
		if err != nil {
			return err
		}
		var prev []billing.Period
		if last.Valid {
			if prev, err = db.periodVersions(tx.query, vin, int(last.Int64)); err != nil {
				return err
			}
		}
		changed, replaced = changedPeriods(tl.Periods, prev)
	}
	if last.Valid && len(changed) == 0 && lastOwner.String == owner && lastEpoch.Int64 == epoch {
		return nil
	}
	if cause == nil {
		return fmt.Errorf("the timeline changed without an audit entry for the vehicle to name the cause")
	}
	version := last.Int64 + 1
	at := utc(cause.At)
	if lastAt.Valid && lastAt.T.After(at) {
		at = lastAt.T // versions are recorded in order: a version is never known before the one it follows
	}
	_, err = tx.exec(insertVersionStmt, string(vin), version, db.timeArg(at), string(cause.Action),
		nullable(cause.OrderID), nullable(cause.RefundID), tx.actor.String(), owner, epoch)
	if err != nil {
		return err
	}
	return tx.insertPeriodVersions(vin, version, changed, replaced)
}

// insertPeriodVersions records the periods a version changed, closing the
// rows of those it replaces.
func (tx *Tx) insertPeriodVersions(vin billing.VIN, version int64, changed []billing.Period, replaced []bool) error {
	db := tx.db
	for i, p := range changed {
		if replaced[i] {
			if _, err := tx.exec(closePeriodVersionStmt, version, string(vin), p.ID); err != nil {
				return err
			}
		}
		var orderID, paid any
		if p.OrderID != "" {
			orderID = p.OrderID
		}
		if !p.PaidAt.IsZero() {
			paid = db.timeArg(p.PaidAt)
		}
		_, err := tx.exec(insertPeriodVersionStmt, string(vin), p.ID, version, p.Seq, string(p.Source), orderID, p.Product,
			p.Days, p.DataBytesPerMonth, paid, db.timeArg(p.StartsAt), db.timeArg(p.EndsAt), db.timePtr(p.RefundedAt))
		if err != nil {
			return err
		}
	}
	return nil
}

// causeOf is the write's first audit entry about vin: what changed its
// timeline, and when.
func (tx *Tx) causeOf(vin billing.VIN) *billing.AuditEntry {
	for i := range tx.entries {
		if tx.entries[i].VIN == vin {
			return &tx.entries[i]
		}
	}
	return nil
}

// changedPeriods returns the periods of cur that are new or differ from
// their row in the version prev, and for each whether it replaces a row
// (which is then closed).
func changedPeriods(cur, prev []billing.Period) (changed []billing.Period, replaced []bool) {
	byID := make(map[string]billing.Period, len(prev))
	for _, p := range prev {
		byID[p.ID] = p
	}
	for _, p := range cur {
		q, ok := byID[p.ID]
		if !ok || !samePeriod(p, q) {
			changed, replaced = append(changed, p), append(replaced, ok)
		}
	}
	return changed, replaced
}

func samePeriod(a, b billing.Period) bool {
	return a.Seq == b.Seq && a.Source == b.Source && a.OrderID == b.OrderID && a.Product == b.Product &&
		a.Days == b.Days && a.DataBytesPerMonth == b.DataBytesPerMonth && a.PaidAt.Equal(b.PaidAt) &&
		a.StartsAt.Equal(b.StartsAt) && a.EndsAt.Equal(b.EndsAt) &&
		(a.RefundedAt == nil) == (b.RefundedAt == nil) && (a.RefundedAt == nil || a.RefundedAt.Equal(*b.RefundedAt))
}

var (
	insertVersionStmt = statement{"history/version", func() string {
		return `INSERT INTO timeline_versions (vin, version, recorded_at, cause, order_id, refund_id, actor, owner_id, epoch)
			VALUES (` + placeholders(9) + `)`
	}}
	closePeriodVersionStmt = statement{"history/close", func() string {
		return `UPDATE period_versions SET to_version = ? WHERE vin = ? AND period_id = ? AND to_version IS NULL`
	}}
	insertPeriodVersionStmt = statement{"history/period", func() string {
		return `INSERT INTO period_versions (vin, period_id, from_version, seq, source, order_id, product, days,
			data_bytes_per_month, paid_at, starts_at, ends_at, refunded_at) VALUES (` + placeholders(13) + `)`
	}}
)

// nextVersionStmt inserts the version after vin's last and returns its
// number: recorded at the cause's instant, or at the last version's if
// that is later (versions are recorded in order, a version is never known
// before the one it follows), with the vehicle row's owner and epoch. It
// inserts nothing, and returns no row, when the vehicle does not exist, or
// when periodsChanged (the last argument) is false and the owner and epoch
// are the last version's.
func (db *DB) nextVersionStmt() statement {
	return statement{"history/next", func() string {
		return `INSERT INTO timeline_versions (vin, version, recorded_at, cause, order_id, refund_id, actor, owner_id, epoch)
			SELECT v.vin, COALESCE(tv.version, 0) + 1, CASE WHEN tv.recorded_at > ? THEN tv.recorded_at ELSE ? END,
				?, ?, ?, ?, v.owner_id, v.epoch
			FROM vehicles v LEFT JOIN timeline_versions tv ON tv.vin = v.vin
				AND tv.version = (SELECT MAX(t2.version) FROM timeline_versions t2 WHERE t2.vin = v.vin)
			WHERE v.vin = ? AND (? OR tv.version IS NULL OR tv.owner_id <> v.owner_id OR tv.epoch <> v.epoch)
			RETURNING version`
	}}
}

// lastVersionStmt reads the vehicle's owner and epoch and its last
// version's number, time, owner and epoch (NULLs when it has none).
func (db *DB) lastVersionStmt() statement {
	return statement{"history/last", func() string {
		return `SELECT v.owner_id, v.epoch, tv.version, ` + db.timeCol("tv.recorded_at") + `, tv.owner_id, tv.epoch
			FROM vehicles v LEFT JOIN timeline_versions tv ON tv.vin = v.vin
				AND tv.version = (SELECT MAX(t2.version) FROM timeline_versions t2 WHERE t2.vin = v.vin)
			WHERE v.vin = ?`
	}}
}

// versionGuardStmt reads the vehicle's last change and its last version's
// time (no row: no vehicle yet).
func (db *DB) versionGuardStmt() statement {
	return statement{"history/guard", func() string {
		return `SELECT ` + db.timeCol("v.updated_at") + `, ` + db.lastVersionAt("v.vin") + `
			FROM vehicles v WHERE v.vin = ?`
	}}
}

// lastVersionAt is a subquery of the time of the last version of the
// vehicle whose VIN the SQL expression vin gives (NULL: none).
func (db *DB) lastVersionAt(vin string) string {
	return `(SELECT ` + db.timeCol("tv.recorded_at") + ` FROM timeline_versions tv WHERE tv.vin = ` + vin + ` ORDER BY tv.version DESC LIMIT 1)`
}

// versionAtStmt finds the latest version recorded at or before an instant.
func (db *DB) versionAtStmt() statement {
	return statement{"history/at", func() string {
		return `SELECT version, ` + db.timeCol("recorded_at") + `, owner_id, epoch FROM timeline_versions
			WHERE vin = ? AND recorded_at <= ? ORDER BY version DESC LIMIT 1`
	}}
}

func (db *DB) periodVersionsStmt() statement {
	return statement{"history/periods", func() string {
		return `SELECT period_id, seq, source, order_id, product, days, data_bytes_per_month, ` + db.timeCol("paid_at") + `, ` +
			db.timeCol("starts_at") + `, ` + db.timeCol("ends_at") + `, ` + db.timeCol("refunded_at") + `
			FROM period_versions WHERE vin = ? AND from_version <= ? AND (to_version IS NULL OR to_version > ?)`
	}}
}

// periodVersions returns vin's timeline in version v.
func (db *DB) periodVersions(q querier, vin billing.VIN, v int) ([]billing.Period, error) {
	ps, err := vinPeriods(q, vin, db.periodVersionsStmt(), string(vin), v, v)
	if err != nil {
		return nil, fmt.Errorf("read version %d of %s: %w", v, vin, err)
	}
	return billing.NewTimeline(ps).Periods, nil
}

// seedVersions returns the first version of seeded vehicles and their
// periods (the rows of seedVehicleCols and seedPeriodCols), for
// seedFleet.statements.
func seedVersions(vehicles, periods [][]any) (versions, pvs [][]any) {
	for _, v := range vehicles {
		// vin, owner_id, model, activated_at, coverage_ends_at, created_at, updated_at, covered_since
		versions = append(versions, []any{v[0], 1, v[6], causeSeeded, "system:seed", v[1], 0})
	}
	for _, p := range periods {
		// id, vin, seq, source, order_id, product, days, data_bytes_per_month, paid_at, starts_at, ends_at, created_at, updated_at
		pvs = append(pvs, []any{p[1], p[0], 1, p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10]})
	}
	return versions, pvs
}

// seedArrivals returns a usage_arrivals row for each seeded cycle (the
// rows of seedCycleCols): seeded cycles have totals but no records, so
// their bytes are recorded as one record of each category that ended at
// the cycle's last_ended_at, received at its updated_at, which keeps
// point-in-time reads of seeded vehicles consistent with their totals.
func seedArrivals(cycles [][]any) [][]any {
	out := make([][]any, 0, len(cycles))
	for _, c := range cycles {
		// vin, cycle, entertainment_bytes, basic_bytes, records, last_ended_at, updated_at
		vin, ended := billing.VIN(c[0].(string)), c[5].(time.Time)
		b := appendArrival(nil, billing.UsageRecord{VIN: vin, Category: billing.CategoryEntertainment, Bytes: c[2].(int64), EndedAt: ended})
		b = appendArrival(b, billing.UsageRecord{VIN: vin, Category: billing.CategoryBasic, Bytes: c[3].(int64), EndedAt: ended})
		out = append(out, []any{c[1], c[0], "seed", string(b), c[6]})
	}
	return out
}

var (
	seedArrivalCols       = []string{"cycle", "vin", "batch", "records", "received_at"}
	seedVersionCols       = []string{"vin", "version", "recorded_at", "cause", "actor", "owner_id", "epoch"}
	seedPeriodVersionCols = []string{"vin", "period_id", "from_version", "seq", "source", "order_id", "product", "days",
		"data_bytes_per_month", "paid_at", "starts_at", "ends_at"}
)
