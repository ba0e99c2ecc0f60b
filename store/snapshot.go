package store

import (
	"context"
	"database/sql"
	"fmt"

	"entitlements/billing"
)

// snapshotQuery reads a vehicle, its periods and its usage in one cycle in
// one statement: the hot path of every entitlement and feature check. One
// row per period (the vehicle and usage columns repeat); no row when the
// vehicle does not exist. as_of, the largest last_ended_at of the
// vehicle's cycles, is computed on the trial's row only (seq 0, which every
// activated vehicle has): SQLite evaluates a scalar subquery in the result
// once per row, and a car with packages would pay for it once per period
// (BenchmarkSnapshotWithUsageHistory, periods=3). Instants are read
// through timeCol, like every other read of the store.
func (db *DB) snapshotQuery() string {
	return `SELECT v.owner_id, v.model, ` + db.timeCol("v.activated_at") + `, ` + db.timeCol("v.created_at") + `, ` +
		db.timeCol("v.updated_at") + `, v.epoch,
	CASE WHEN p.seq IS NULL OR p.seq = 0
		THEN (SELECT MAX(ua.last_ended_at) FROM usage_cycles ua WHERE ua.vin = v.vin) END,
	uc.entertainment_bytes, uc.basic_bytes,
	p.id, p.seq, p.source, p.order_id, p.product, p.days, p.data_bytes_per_month, ` +
		db.timeCol("p.paid_at") + `, ` + db.timeCol("p.starts_at") + `, ` + db.timeCol("p.ends_at") + `, ` + db.timeCol("p.refunded_at") + `
FROM vehicles v
LEFT JOIN usage_cycles uc ON uc.vin = v.vin AND uc.cycle = ?1
LEFT JOIN periods p ON p.vin = v.vin
WHERE v.vin = ?2
ORDER BY p.seq`
}

// snapshotStmt is the snapshot read, prepared once on the reader pool
// (database/sql prepares it again, transparently, on each connection that
// runs it).
func (db *DB) snapshotStmt() statement {
	return statement{key: "read/snapshot", query: db.snapshotQuery}
}

// Snapshot returns what vin's entitlement in cycle is computed from, or
// EVehicleNotFound. It is one indexed statement on the reader pool.
//
// On PostgreSQL a read marked by billing.WithOwnershipCheck skips the
// snapshot cache: another replica's transfer reaches this replica's cache
// by a notification a moment after that replica acknowledged it. On
// SQLite the cache forgets every write before the write is acknowledged,
// so such reads use it too.
func (db *DB) Snapshot(ctx context.Context, vin billing.VIN, cycle billing.Cycle) (billing.Snapshot, error) {
	if db.cache == nil || (db.dialect == Postgres && billing.OwnershipChecked(ctx)) {
		return db.readSnapshot(ctx, vin, cycle)
	}
	s, e, ok := db.cache.lookup(vin, cycle.Key())
	if ok {
		return s, nil
	}
	s, err := db.readSnapshot(ctx, vin, cycle)
	if err == nil {
		db.cache.fill(vin, e, s)
	}
	return s, err
}

func (db *DB) readSnapshot(ctx context.Context, vin billing.VIN, cycle billing.Cycle) (billing.Snapshot, error) {
	stmt, err := db.reads.onPool(ctx, db.snapshotStmt())
	if err != nil {
		return billing.Snapshot{}, fmt.Errorf("prepare snapshot: %w", err)
	}
	if db.dialect == SQLite {
		ctx = uninterrupted(ctx) // one indexed statement: no goroutine per row to make it interruptible
	}
	rows, err := stmt.QueryContext(ctx, cycle.Key(), string(vin))
	if err != nil {
		return billing.Snapshot{}, fmt.Errorf("snapshot %s: %w", vin, err)
	}
	defer rows.Close()
	var s billing.Snapshot
	found := false
	for rows.Next() {
		var (
			activated, created, updated          dbTime
			paidAt, startsAt, endsAt, refundedAt dbTime
			asOf                                 dbTime
			ent, basic, days, dataBytes, seq     sql.NullInt64
			id, source, orderID, product         sql.NullString
			v                                    billing.Vehicle
		)
		if err := rows.Scan(&v.OwnerID, &v.Model, &activated, &created, &updated, &v.Epoch,
			&asOf, &ent, &basic,
			&id, &seq, &source, &orderID, &product, &days, &dataBytes,
			&paidAt, &startsAt, &endsAt, &refundedAt); err != nil {
			return billing.Snapshot{}, fmt.Errorf("snapshot %s: %w", vin, err)
		}
		if !found {
			found = true
			v.VIN = vin
			v.ActivatedAt, v.CreatedAt, v.UpdatedAt = activated.T, created.T, updated.T
			s.Vehicle = v
			s.Usage = billing.Usage{EntertainmentBytes: ent.Int64, BasicBytes: basic.Int64}
		}
		if asOf.Valid {
			s.Usage.AsOf = asOf.T // on the trial's row (see snapshotQuery)
		}
		if !id.Valid {
			continue // a vehicle without periods (never, after activation)
		}
		p := billing.Period{
			ID: id.String, VIN: vin, Source: billing.Source(source.String), OrderID: orderID.String,
			Product: product.String, Days: int(days.Int64), DataBytesPerMonth: dataBytes.Int64,
			PaidAt: paidAt.T, StartsAt: startsAt.T, EndsAt: endsAt.T, RefundedAt: refundedAt.ptr(), Seq: int(seq.Int64),
		}
		s.Timeline.Periods = append(s.Timeline.Periods, p)
	}
	if err := rows.Err(); err != nil {
		return billing.Snapshot{}, fmt.Errorf("snapshot %s: %w", vin, err)
	}
	if !found {
		return billing.Snapshot{}, billing.Errorf(billing.EVehicleNotFound, "vehicle %s is not activated", vin)
	}
	return s, nil
}
