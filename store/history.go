package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
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
// Versions are written in one place: the helpers that write periods and
// vehicles mark the VIN (Tx.timelineChanged), and DB.write, once the
// write's work succeeded, compares the vehicle's periods and owner with
// its current version and records what differs (Tx.flushVersions), in the
// same transaction. The version's cause, time and references are those of
// the write's audit entry for that VIN; a timeline change without one
// fails the write. TestEveryTimelineWriteIsVersioned checks that the
// statements that write periods or vehicles run in functions that mark.
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

// usageByVehicleMigration indexes raw usage records by (vin, cycle), so
// that a point-in-time read rebuilds a vehicle's month from its records
// with one seek. It costs usage ingest one more B-tree insert per record.
var usageByVehicleMigration = migration{Version: 71, Name: "usage_records: (vin, cycle) index for point-in-time reads", Up: []string{
	`CREATE INDEX usage_records_vin_cycle_idx ON usage_records (vin, cycle)`,
}}

// Causes of versions that no audit action names.
const (
	causeHistoryStarted = "history.started" // the timeline a vehicle had when history began (migration)
	causeSeeded         = "seeded"          // a seeded vehicle's first version
)

// timelineChanged marks vins: their timeline (periods, owner or epoch)
// changes in this write, and a version is recorded when it succeeds.
func (tx *Tx) timelineChanged(vins ...billing.VIN) {
	for _, v := range vins {
		if !slices.Contains(tx.versioned, v) {
			tx.versioned = append(tx.versioned, v)
		}
	}
}

// flushVersions records a version of every vehicle the write marked whose
// periods, owner or epoch differ from its current version. It runs after
// the write's work and before its audit entries are inserted.
func (tx *Tx) flushVersions() error {
	for _, vin := range tx.versioned {
		if err := tx.recordVersion(vin); err != nil {
			return fmt.Errorf("record timeline version of %s: %w", vin, err)
		}
	}
	tx.versioned = nil
	return nil
}

func (tx *Tx) recordVersion(vin billing.VIN) error {
	db := tx.db
	var cause *billing.AuditEntry
	for i := range tx.entries {
		if tx.entries[i].VIN == vin {
			cause = &tx.entries[i]
			break
		}
	}
	var (
		owner string
		epoch int64
	)
	found, err := tx.queryRow(ownerEpochStmt, []any{string(vin)}, &owner, &epoch)
	if err != nil || !found {
		return err // a vehicle that is not there has no timeline
	}
	tl, err := db.timeline(tx.query, vin)
	if err != nil {
		return err
	}
	var (
		last      int64
		lastAt    dbTime
		lastOwner sql.NullString
		lastEpoch sql.NullInt64
		hasLast   bool
		open      []billing.Period
	)
	hasLast, err = tx.queryRow(db.lastVersionStmt(), []any{string(vin)}, &last, &lastAt, &lastOwner, &lastEpoch)
	if err != nil {
		return err
	}
	if hasLast {
		if open, err = db.periodVersions(tx.query, vin, int(last)); err != nil {
			return err
		}
	}
	changed := changedPeriods(tl.Periods, open)
	if hasLast && len(changed) == 0 && lastOwner.String == owner && lastEpoch.Int64 == epoch {
		return nil
	}
	if cause == nil {
		return fmt.Errorf("the timeline changed without an audit entry for the vehicle to name the cause")
	}
	version := last + 1
	at := utc(cause.At)
	if hasLast && lastAt.T.After(at) {
		at = lastAt.T // versions are recorded in order: a version is never known before the one it follows
	}
	_, err = tx.exec(insertVersionStmt, string(vin), version, db.timeArg(at), string(cause.Action),
		nullable(cause.OrderID), nullable(cause.RefundID), tx.actor.String(), owner, epoch)
	if err != nil {
		return err
	}
	for _, p := range changed {
		if _, err := tx.exec(closePeriodVersionStmt, version, string(vin), p.ID); err != nil {
			return err
		}
		var orderID any
		if p.OrderID != "" {
			orderID = p.OrderID
		}
		var paid any
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

// changedPeriods returns the periods of cur that are new or differ from
// their row in the version prev.
func changedPeriods(cur, prev []billing.Period) []billing.Period {
	byID := make(map[string]billing.Period, len(prev))
	for _, p := range prev {
		byID[p.ID] = p
	}
	var out []billing.Period
	for _, p := range cur {
		if q, ok := byID[p.ID]; !ok || !samePeriod(p, q) {
			out = append(out, p)
		}
	}
	return out
}

func samePeriod(a, b billing.Period) bool {
	return a.Seq == b.Seq && a.Source == b.Source && a.OrderID == b.OrderID && a.Product == b.Product &&
		a.Days == b.Days && a.DataBytesPerMonth == b.DataBytesPerMonth && a.PaidAt.Equal(b.PaidAt) &&
		a.StartsAt.Equal(b.StartsAt) && a.EndsAt.Equal(b.EndsAt) &&
		(a.RefundedAt == nil) == (b.RefundedAt == nil) && (a.RefundedAt == nil || a.RefundedAt.Equal(*b.RefundedAt))
}

var (
	ownerEpochStmt = statement{"history/owner", func() string {
		return `SELECT owner_id, epoch FROM vehicles WHERE vin = ?`
	}}
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

func (db *DB) lastVersionStmt() statement {
	return statement{"history/last", func() string {
		return `SELECT version, ` + db.timeCol("recorded_at") + `, owner_id, epoch FROM timeline_versions
			WHERE vin = ? ORDER BY version DESC LIMIT 1`
	}}
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
	rows, err := q(db.periodVersionsStmt(), string(vin), v, v)
	if err != nil {
		return nil, fmt.Errorf("read version %d of %s: %w", v, vin, err)
	}
	var ps []billing.Period
	err = eachRow(rows, func() error {
		p, err := scanPeriod(rows, false)
		p.VIN = vin
		ps = append(ps, p)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read version %d of %s: %w", v, vin, err)
	}
	return billing.NewTimeline(ps).Periods, nil
}

// TimelineHistory returns vin's timeline versions, newest first, each
// with its periods. Returns EVehicleNotFound for a vehicle not activated.
func (db *DB) TimelineHistory(ctx context.Context, vin billing.VIN) ([]billing.TimelineVersion, error) {
	q := db.onReader(ctx)
	if _, err := db.vehicle(q, vin, false); err != nil {
		return nil, err
	}
	rows, err := q(db.versionsStmt(), string(vin))
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", vin, err)
	}
	var out []billing.TimelineVersion
	err = eachRow(rows, func() error {
		var (
			v          billing.TimelineVersion
			at         dbTime
			order, rfd sql.NullString
		)
		if err := rows.Scan(&v.Version, &at, &v.Cause, &order, &rfd, &v.Actor, &v.OwnerID, &v.Epoch); err != nil {
			return err
		}
		v.RecordedAt, v.OrderID, v.RefundID = at.T, order.String, rfd.String
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", vin, err)
	}
	all, err := db.allPeriodVersions(q, vin)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Periods, out[i].Changed = all.at(out[i].Version)
	}
	return out, nil
}

func (db *DB) versionsStmt() statement {
	return statement{"history/list", func() string {
		return `SELECT version, ` + db.timeCol("recorded_at") + `, cause, order_id, refund_id, actor, owner_id, epoch
			FROM timeline_versions WHERE vin = ? ORDER BY version DESC`
	}}
}

func (db *DB) allPeriodVersionsStmt() statement {
	return statement{"history/all-periods", func() string {
		return `SELECT from_version, to_version, period_id, seq, source, order_id, product, days, data_bytes_per_month, ` +
			db.timeCol("paid_at") + `, ` + db.timeCol("starts_at") + `, ` + db.timeCol("ends_at") + `, ` + db.timeCol("refunded_at") + `
			FROM period_versions WHERE vin = ?`
	}}
}

type periodVersion struct {
	from, to int // to: 0 while current
	p        billing.Period
}

type periodVersions []periodVersion

// at returns the timeline in version v and the ids of the periods that
// version wrote.
func (pv periodVersions) at(v int) (periods []billing.Period, changed []string) {
	for _, r := range pv {
		if r.from <= v && (r.to == 0 || r.to > v) {
			periods = append(periods, r.p)
			if r.from == v {
				changed = append(changed, r.p.ID)
			}
		}
	}
	return billing.NewTimeline(periods).Periods, changed
}

func (db *DB) allPeriodVersions(q querier, vin billing.VIN) (periodVersions, error) {
	rows, err := q(db.allPeriodVersionsStmt(), string(vin))
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", vin, err)
	}
	var out periodVersions
	err = eachRow(rows, func() error {
		var (
			r                            periodVersion
			to                           sql.NullInt64
			orderID                      sql.NullString
			paid, starts, ends, refunded dbTime
		)
		p := &r.p
		if err := rows.Scan(&r.from, &to, &p.ID, &p.Seq, &p.Source, &orderID, &p.Product, &p.Days, &p.DataBytesPerMonth,
			&paid, &starts, &ends, &refunded); err != nil {
			return err
		}
		r.to = int(to.Int64)
		p.VIN, p.OrderID = vin, orderID.String
		p.PaidAt, p.StartsAt, p.EndsAt, p.RefundedAt = paid.T, starts.T, ends.T, refunded.ptr()
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", vin, err)
	}
	return out, nil
}

// SnapshotAt reads what vin's entitlement at p is computed from: the
// timeline version current at p.KnownAt and the usage p counts
// (billing.UsageAt), rebuilding a month from its raw records only where
// its totals do not answer. It bypasses the snapshot cache and fills
// nothing in it. horizon is now minus usage.retention (zero: nothing is
// pruned). Returns EVehicleNotFound for a vehicle not activated now,
// EHistoryUnavailable for a KnownAt before the vehicle's history starts,
// EUsageHistoryPruned when the records needed were pruned.
func (db *DB) SnapshotAt(ctx context.Context, vin billing.VIN, p billing.Point, horizon time.Time, loc *time.Location) (billing.PointSnapshot, error) {
	q := db.onReader(ctx)
	var out billing.PointSnapshot
	cur, err := db.vehicle(q, vin, false)
	if err != nil {
		return out, err
	}
	out.Current = cur
	var (
		version int
		at      dbTime
		owner   string
		epoch   int64
	)
	found := false
	rows, err := q(db.versionAtStmt(), string(vin), db.timeArg(p.KnownAt))
	if err != nil {
		return out, fmt.Errorf("version of %s: %w", vin, err)
	}
	err = eachRow(rows, func() error {
		found = true
		return rows.Scan(&version, &at, &owner, &epoch)
	})
	if err != nil {
		return out, fmt.Errorf("version of %s: %w", vin, err)
	}
	if !found {
		return out, db.beforeHistory(q, vin, p, loc)
	}
	periods, err := db.periodVersions(q, vin, version)
	if err != nil {
		return out, err
	}
	v := cur
	v.OwnerID, v.Epoch = owner, epoch
	out.Known = true
	out.At = billing.Snapshot{Vehicle: v, Timeline: billing.Timeline{Periods: periods}}
	out.At.Usage, err = db.usageAt(q, vin, p, horizon, loc)
	return out, err
}

// beforeHistory explains a KnownAt before vin's first version: nil (not
// known then: not activated yet) when that version is its activation,
// EHistoryUnavailable when history began after the vehicle did.
func (db *DB) beforeHistory(q querier, vin billing.VIN, p billing.Point, loc *time.Location) error {
	rows, err := q(db.firstVersionStmt(), string(vin))
	if err != nil {
		return fmt.Errorf("first version of %s: %w", vin, err)
	}
	var (
		cause string
		at    dbTime
	)
	err = eachRow(rows, func() error { return rows.Scan(&cause, &at) })
	if err != nil {
		return fmt.Errorf("first version of %s: %w", vin, err)
	}
	if cause == string(billing.AuditVehicleActivated) {
		return nil
	}
	return billing.Errorf(billing.EHistoryUnavailable, "the timeline history of %s starts at %s; nothing is known of what was known before",
		vin, billing.Stamp(at.T, loc))
}

func (db *DB) firstVersionStmt() statement {
	return statement{"history/first", func() string {
		return `SELECT cause, ` + db.timeCol("recorded_at") + ` FROM timeline_versions WHERE vin = ? ORDER BY version LIMIT 1`
	}}
}

// usageAt reads the vehicle's cycle totals and, for the cycles whose
// totals do not answer p, their raw records (by the (vin, cycle) index).
func (db *DB) usageAt(q querier, vin billing.VIN, p billing.Point, horizon time.Time, loc *time.Location) (billing.Usage, error) {
	rows, err := q(db.cycleTotalsStmt(), string(vin))
	if err != nil {
		return billing.Usage{}, fmt.Errorf("usage of %s: %w", vin, err)
	}
	var cycles []billing.CycleTotals
	err = eachRow(rows, func() error {
		var (
			c           billing.CycleTotals
			last, upd   dbTime
			ent, basics sql.NullInt64
		)
		if err := rows.Scan(&c.Key, &ent, &basics, &last, &upd); err != nil {
			return err
		}
		c.EntertainmentBytes, c.BasicBytes, c.LastEndedAt, c.UpdatedAt = ent.Int64, basics.Int64, last.T, upd.T
		cycles = append(cycles, c)
		return nil
	})
	if err != nil {
		return billing.Usage{}, fmt.Errorf("usage of %s: %w", vin, err)
	}
	keys := billing.RawCycles(p, cycles, loc)
	if err := billing.CheckRetained(keys, horizon, loc); err != nil {
		return billing.Usage{}, err
	}
	var recs []billing.ReceivedRecord
	for _, k := range keys {
		rows, err := q(db.cycleRecordsStmt(), string(vin), k)
		if err != nil {
			return billing.Usage{}, fmt.Errorf("usage records of %s in %s: %w", vin, k, err)
		}
		err = eachRow(rows, func() error {
			var (
				r          billing.ReceivedRecord
				ended, rcv dbTime
				cat        string
			)
			if err := rows.Scan(&cat, &r.Bytes, &ended, &rcv); err != nil {
				return err
			}
			r.Cycle, r.Category, r.EndedAt, r.ReceivedAt = k, billing.Category(cat), ended.T, rcv.T
			recs = append(recs, r)
			return nil
		})
		if err != nil {
			return billing.Usage{}, fmt.Errorf("usage records of %s in %s: %w", vin, k, err)
		}
	}
	return billing.UsageAt(p, cycles, recs, loc), nil
}

func (db *DB) cycleTotalsStmt() statement {
	return statement{"history/cycles", func() string {
		return `SELECT cycle, entertainment_bytes, basic_bytes, ` + db.timeCol("last_ended_at") + `, ` + db.timeCol("updated_at") + `
			FROM usage_cycles WHERE vin = ?`
	}}
}

func (db *DB) cycleRecordsStmt() statement {
	return statement{"history/records", func() string {
		return `SELECT category, bytes, ` + db.timeCol("ended_at") + `, ` + db.timeCol("received_at") + `
			FROM usage_records WHERE vin = ? AND cycle = ?`
	}}
}

// seedVersions returns the first version of seeded vehicles and their
// periods (the rows of seedVehicleCols and seedPeriodCols), for bulkInsert.
func seedVersions(vehicles, periods [][]any) (versions, pvs [][]any) {
	for _, v := range vehicles {
		// vin, owner_id, model, activated_at, coverage_ends_at, created_at, updated_at
		versions = append(versions, []any{v[0], 1, v[6], causeSeeded, "system:seed", v[1], 0})
	}
	for _, p := range periods {
		// id, vin, seq, source, order_id, product, days, data_bytes_per_month, paid_at, starts_at, ends_at, created_at, updated_at
		pvs = append(pvs, []any{p[1], p[0], 1, p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10]})
	}
	return versions, pvs
}

var (
	seedVersionCols       = []string{"vin", "version", "recorded_at", "cause", "actor", "owner_id", "epoch"}
	seedPeriodVersionCols = []string{"vin", "period_id", "from_version", "seq", "source", "order_id", "product", "days",
		"data_bytes_per_month", "paid_at", "starts_at", "ends_at"}
)
