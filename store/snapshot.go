package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"entitlements/billing"
)

// snapshotQuery reads a vehicle, its periods and its usage in one cycle in
// one statement: the hot path of every entitlement and feature check. One
// row per period (the vehicle and usage columns repeat); no row when the
// vehicle does not exist. as_of, the largest last_ended_at of the
// vehicle's cycles, is computed on the trial's row only (seq 0, which every
// activated vehicle has): SQLite evaluates a scalar subquery in the result
// once per row, and a car with two packages paid for it three times
// (BenchmarkSnapshotWithUsageHistory: 50-55 against 42-44 µs with three
// periods and two years of usage).
const snapshotQuery = `SELECT v.owner_id, v.model, v.activated_at, v.created_at, v.updated_at, v.epoch,
	CASE WHEN p.seq IS NULL OR p.seq = 0
		THEN (SELECT MAX(ua.last_ended_at) FROM usage_cycles ua WHERE ua.vin = v.vin) END,
	uc.entertainment_bytes, uc.basic_bytes,
	p.id, p.seq, p.source, p.order_id, p.product, p.days, p.data_bytes_per_month,
	p.paid_at, p.starts_at, p.ends_at, p.refunded_at
FROM vehicles v
LEFT JOIN usage_cycles uc ON uc.vin = v.vin AND uc.cycle = $1
LEFT JOIN periods p ON p.vin = v.vin
WHERE v.vin = $2
ORDER BY p.seq`

// readStmt is a statement prepared once on the reader pool (database/sql
// prepares it again, transparently, on each connection that runs it).
type readStmt struct {
	once sync.Once
	stmt *sql.Stmt
	err  error
}

func (db *DB) snapshotStmt(ctx context.Context) (*sql.Stmt, error) {
	rs := &db.snapshot
	rs.once.Do(func() {
		r, err := db.read.DB()
		if err != nil {
			rs.err = err
			return
		}
		rs.stmt, rs.err = r.PrepareContext(ctx, snapshotQuery)
	})
	return rs.stmt, rs.err
}

// Snapshot returns what vin's entitlement in cycle is computed from, or
// EVehicleNotFound. It is one indexed statement on the reader pool.
func (db *DB) Snapshot(ctx context.Context, vin billing.VIN, cycle billing.Cycle) (billing.Snapshot, error) {
	if db.cache == nil {
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
	stmt, err := db.snapshotStmt(ctx)
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
			paidAt, startsAt, endsAt, refundedAt sql.NullTime
			asOf                                 dbTime // an expression: text on SQLite
			ent, basic, days, dataBytes, seq     sql.NullInt64
			id, source, orderID, product         sql.NullString
			v                                    billing.Vehicle
		)
		if err := rows.Scan(&v.OwnerID, &v.Model, &v.ActivatedAt, &v.CreatedAt, &v.UpdatedAt, &v.Epoch,
			&asOf, &ent, &basic,
			&id, &seq, &source, &orderID, &product, &days, &dataBytes,
			&paidAt, &startsAt, &endsAt, &refundedAt); err != nil {
			return billing.Snapshot{}, fmt.Errorf("snapshot %s: %w", vin, err)
		}
		if !found {
			found = true
			v.VIN = vin
			v.ActivatedAt, v.CreatedAt, v.UpdatedAt = v.ActivatedAt.UTC(), v.CreatedAt.UTC(), v.UpdatedAt.UTC()
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
			PaidAt: utcOrZero(paidAt), StartsAt: utcOrZero(startsAt), EndsAt: utcOrZero(endsAt), Seq: int(seq.Int64),
		}
		if refundedAt.Valid {
			t := refundedAt.Time.UTC()
			p.RefundedAt = &t
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

func utcOrZero(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}
