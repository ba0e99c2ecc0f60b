package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"entitlements/billing"
)

// The reads of the timeline history (history.go): the versions of a
// vehicle, and what a point-in-time read is computed from.

// TimelineHistory returns vin's timeline versions, newest first, each
// with the periods it added or changed. Returns EVehicleNotFound for a
// vehicle not activated.
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
		out[i].Periods = all.writtenBy(out[i].Version)
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
		return `SELECT from_version, period_id, seq, source, order_id, product, days, data_bytes_per_month, ` +
			db.timeCol("paid_at") + `, ` + db.timeCol("starts_at") + `, ` + db.timeCol("ends_at") + `, ` + db.timeCol("refunded_at") + `
			FROM period_versions WHERE vin = ?`
	}}
}

// periodVersion is a row of period_versions: the state of a period that
// version from wrote.
type periodVersion struct {
	from int
	p    billing.Period
}

type periodVersions []periodVersion

// writtenBy returns the period rows version v wrote, in seq order.
func (pv periodVersions) writtenBy(v int) []billing.Period {
	var out []billing.Period
	for _, r := range pv {
		if r.from == v {
			out = append(out, r.p)
		}
	}
	return billing.NewTimeline(out).Periods
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
			orderID                      sql.NullString
			paid, starts, ends, refunded dbTime
		)
		p := &r.p
		if err := rows.Scan(&r.from, &p.ID, &p.Seq, &p.Source, &orderID, &p.Product, &p.Days, &p.DataBytesPerMonth,
			&paid, &starts, &ends, &refunded); err != nil {
			return err
		}
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
// totals do not answer p, what each usage batch brought to them
// (usage_arrivals, one seek per cycle).
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
		rows, err := q(db.cycleArrivalsStmt(), k, string(vin))
		if err != nil {
			return billing.Usage{}, fmt.Errorf("usage arrivals of %s in %s: %w", vin, k, err)
		}
		err = eachRow(rows, func() error {
			var (
				rcv dbTime
				v   string
			)
			if err := rows.Scan(&rcv, &v); err != nil {
				return err
			}
			recs, err = decodeArrivals(recs, k, rcv.T, v)
			return err
		})
		if err != nil {
			return billing.Usage{}, fmt.Errorf("usage arrivals of %s in %s: %w", vin, k, err)
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

func (db *DB) cycleArrivalsStmt() statement {
	return statement{"history/arrivals", func() string {
		return `SELECT ` + db.timeCol("received_at") + `, records FROM usage_arrivals WHERE cycle = ? AND vin = ?`
	}}
}
