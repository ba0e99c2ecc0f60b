package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"entitlements/billing"
)

// The payment notification's transaction is the busiest write of the
// service, and on SQLite it runs on the one writer: every microsecond it
// holds the writer is a microsecond no other payment can use
// (BenchmarkApplyPayment). Its reads and writes are therefore statements
// prepared once (stmtCache), scanned by hand, instead of gorm's
// reflection, which cost as much as SQLite's own work on this path. The
// reads of an order, a vehicle and a timeline are the same functions in
// every transaction and on the reader pool (a querier says where they
// run).

// The columns read, instants through timeCol.
func (db *DB) orderColumns() string {
	return `id, vin, owner_id, product, amount_fen, currency, days, data_bytes_per_month, status, ` +
		db.timeCol("created_at") + `, ` + db.timeCol("expires_at") + `, ` + db.timeCol("paid_at") + `, ` +
		db.timeCol("cancelled_at") + `, refunded_fen, transaction_id, ` + db.timeCol("updated_at")
}

func (db *DB) vehicleColumns() string {
	return `vin, owner_id, model, ` + db.timeCol("activated_at") + `, ` + db.timeCol("coverage_ends_at") + `, ` +
		db.timeCol("created_at") + `, ` + db.timeCol("updated_at")
}

// timelineColumns are what billing.Period holds.
func (db *DB) timelineColumns() string {
	return `id, seq, source, order_id, product, days, data_bytes_per_month, ` + db.timeCol("paid_at") + `, ` +
		db.timeCol("starts_at") + `, ` + db.timeCol("ends_at") + `, ` + db.timeCol("refunded_at")
}

// periodColumns are the columns of a period row, for inserts.
const periodColumns = `id, vin, seq, source, order_id, product, days, data_bytes_per_month,
	paid_at, starts_at, ends_at, refunded_at, created_at, updated_at`

func (db *DB) orderStmt() statement {
	return statement{key: "read/order", query: func() string {
		return `SELECT ` + db.orderColumns() + ` FROM orders WHERE id = ?`
	}}
}

// vehicleStmt reads a vehicle; with lock, its row stays locked until the
// transaction ends on PostgreSQL (SQLite's single writer serialises).
func (db *DB) vehicleStmt(lock bool) statement {
	if lock && db.dialect == Postgres {
		return statement{key: "read/vehicle-lock", query: func() string {
			return `SELECT ` + db.vehicleColumns() + ` FROM vehicles WHERE vin = ? FOR UPDATE`
		}}
	}
	return statement{key: "read/vehicle", query: func() string {
		return `SELECT ` + db.vehicleColumns() + ` FROM vehicles WHERE vin = ?`
	}}
}

func (db *DB) timelineStmt() statement {
	return statement{key: "read/timeline", query: func() string {
		return `SELECT ` + db.timelineColumns() + ` FROM periods WHERE vin = ? ORDER BY seq`
	}}
}

func (db *DB) claimEventStmt() statement {
	return statement{key: "pay/claim", query: func() string {
		return `INSERT INTO payments (event_id, order_id, status, outcome, amount_fen, currency, paid_at, transaction_id, received_at)
			VALUES (` + placeholders(9) + `) ON CONFLICT DO NOTHING`
	}}
}

func (db *DB) insertPeriodStmt() statement {
	return statement{key: "pay/period", query: func() string {
		return `INSERT INTO periods (` + periodColumns + `) VALUES (` + placeholders(14) + `)`
	}}
}

var coverageEndStmt = statement{key: "vehicle/coverage-end", query: func() string {
	return `UPDATE vehicles SET coverage_ends_at = ?, covered_since = ?, updated_at = ? WHERE vin = ?`
}}

func (db *DB) orderPaidStmt() statement {
	return statement{key: "pay/paid", query: func() string {
		return `UPDATE orders SET status = ?, paid_at = ?, transaction_id = ?, updated_at = ? WHERE id = ?`
	}}
}

// querier runs a read statement: in a transaction (Tx.query) or on the
// reader pool (onReader).
type querier func(st statement, args ...any) (*sql.Rows, error)

// onReader runs statements prepared once on the reader pool.
func (db *DB) onReader(ctx context.Context) querier {
	return func(st statement, args ...any) (*sql.Rows, error) {
		s, err := db.reads.onPool(ctx, st)
		if err != nil {
			return nil, err
		}
		return s.QueryContext(ctx, args...)
	}
}

// order reads order id, or EOrderNotFound.
func (db *DB) order(q querier, id string) (billing.Order, error) {
	rows, err := q(db.orderStmt(), id)
	if err != nil {
		return billing.Order{}, fmt.Errorf("find order %s: %w", id, err)
	}
	var r orderRow
	found := false
	err = eachRow(rows, func() error {
		var created, expires, paid, cancelled, updated dbTime
		found = true
		err := rows.Scan(&r.ID, &r.VIN, &r.OwnerID, &r.Product, &r.AmountFen, &r.Currency, &r.Days, &r.DataBytesPerMonth,
			&r.Status, &created, &expires, &paid, &cancelled, &r.RefundedFen, &r.TransactionID, &updated)
		r.CreatedAt, r.ExpiresAt, r.UpdatedAt = created.T, expires.T, updated.T
		r.PaidAt, r.CancelledAt = paid.ptr(), cancelled.ptr()
		return err
	})
	if err != nil {
		return billing.Order{}, fmt.Errorf("find order %s: %w", id, err)
	}
	if !found {
		return billing.Order{}, billing.Errorf(billing.EOrderNotFound, "order %s not found", id)
	}
	return r.order(), nil
}

// vehicle reads vin (see vehicleStmt for lock), or EVehicleNotFound.
func (db *DB) vehicle(q querier, vin billing.VIN, lock bool) (billing.Vehicle, error) {
	rows, err := q(db.vehicleStmt(lock), string(vin))
	if err != nil {
		return billing.Vehicle{}, fmt.Errorf("find vehicle %s: %w", vin, err)
	}
	var r vehicleRow
	found := false
	err = eachRow(rows, func() error {
		var activated, ends, created, updated dbTime
		found = true
		err := rows.Scan(&r.VIN, &r.OwnerID, &r.Model, &activated, &ends, &created, &updated)
		r.ActivatedAt, r.CoverageEndsAt, r.CreatedAt, r.UpdatedAt = activated.T, ends.T, created.T, updated.T
		return err
	})
	if err != nil {
		return billing.Vehicle{}, fmt.Errorf("find vehicle %s: %w", vin, err)
	}
	if !found {
		return billing.Vehicle{}, billing.Errorf(billing.EVehicleNotFound, "vehicle %s is not activated", vin)
	}
	return r.vehicle(), nil
}

// timeline reads vin's periods, refunded ones included, in seq order; an
// unknown VIN has an empty timeline.
func (db *DB) timeline(q querier, vin billing.VIN) (billing.Timeline, error) {
	ps, err := vinPeriods(q, vin, db.timelineStmt(), string(vin))
	if err != nil {
		return billing.Timeline{}, fmt.Errorf("load timeline %s: %w", vin, err)
	}
	return billing.NewTimeline(ps), nil
}

// vinPeriods runs st, a statement that selects vin's periods as
// scanPeriod reads them (without their VIN), and scans them.
func vinPeriods(q querier, vin billing.VIN, st statement, args ...any) ([]billing.Period, error) {
	return vinPeriodsThen(q, vin, st, args)
}

// vinPeriodsThen is vinPeriods of a statement whose rows carry, after the
// period, the columns extra scans (the same on every row).
func vinPeriodsThen(q querier, vin billing.VIN, st statement, args []any, extra ...any) ([]billing.Period, error) {
	rows, err := q(st, args...)
	if err != nil {
		return nil, err
	}
	var ps []billing.Period
	err = eachRow(rows, func() error {
		p, err := scanPeriod(rows, false, extra...)
		p.VIN = vin
		ps = append(ps, p)
		return err
	})
	return ps, err
}

// timelineForWrite is timeline, read in a write that may then change
// vin's timeline: the same statement also reads the version guard
// (versionGuardStmt's two instants, before the write changes anything),
// which timelineChanged would otherwise read in a round trip of its own.
func (db *DB) timelineForWrite(tx *Tx, vin billing.VIN) (billing.Timeline, error) {
	var updated, recorded dbTime
	ps, err := vinPeriodsThen(tx.query, vin, db.timelineGuardStmt(), []any{string(vin)}, &updated, &recorded)
	if err != nil {
		return billing.Timeline{}, fmt.Errorf("load timeline %s: %w", vin, err)
	}
	if len(ps) > 0 && updated.Valid { // no period, or no vehicle: timelineChanged reads the guard itself
		tx.knowGuard(vin, updated, recorded)
	}
	return billing.NewTimeline(ps), nil
}

// timelineGuardStmt is timelineStmt with the vehicle's last change and its
// last version's time on every row. They do not depend on the row, so
// both databases evaluate them once.
func (db *DB) timelineGuardStmt() statement {
	return statement{key: "write/timeline", query: func() string {
		return `SELECT ` + db.timelineColumns() + `,
			(SELECT ` + db.timeCol("v.updated_at") + ` FROM vehicles v WHERE v.vin = ?1), ` + db.lastVersionAt("?1") + `
			FROM periods WHERE vin = ?1 ORDER BY seq`
	}}
}

// scanPeriod scans timelineColumns, after the VIN when withVIN, then
// extra.
func scanPeriod(rows *sql.Rows, withVIN bool, extra ...any) (billing.Period, error) {
	var (
		p                            billing.Period
		vin, orderID                 sql.NullString
		paid, starts, ends, refunded dbTime
	)
	dest := []any{&p.ID, &p.Seq, &p.Source, &orderID, &p.Product, &p.Days, &p.DataBytesPerMonth,
		&paid, &starts, &ends, &refunded}
	if withVIN {
		dest = append([]any{&vin}, dest...)
	}
	dest = append(dest, extra...)
	if err := rows.Scan(dest...); err != nil {
		return p, err
	}
	p.VIN, p.OrderID = billing.VIN(vin.String), orderID.String
	p.PaidAt, p.StartsAt, p.EndsAt, p.RefundedAt = paid.T, starts.T, ends.T, refunded.ptr()
	return p, nil
}

// txClaimEvent records the notification unless its event_id was seen;
// it reports whether this call recorded it.
func (db *DB) txClaimEvent(tx *Tx, p billing.Payment, outcome billing.PaymentOutcome, now time.Time) (bool, error) {
	var paidAt any
	if !p.PaidAt.IsZero() {
		paidAt = db.timeArg(p.PaidAt)
	}
	res, err := tx.exec(db.claimEventStmt(), p.EventID, p.OrderID, string(p.Status), string(outcome),
		p.AmountFen, p.Currency, paidAt, p.TransactionID, db.timeArg(now))
	if err != nil {
		return false, fmt.Errorf("record payment %s: %w", p.EventID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("record payment %s: %w", p.EventID, err)
	}
	return n == 1, nil
}

// txInsertPeriod inserts the period row r.
func (db *DB) txInsertPeriod(tx *Tx, r periodRow) error {
	tx.touch(billing.VIN(r.VIN))
	if err := tx.periodWritten(r.period(), true); err != nil {
		return err
	}
	var orderID, paid, refunded any
	if r.OrderID != nil {
		orderID = *r.OrderID
	}
	if r.PaidAt != nil {
		paid = db.timeArg(*r.PaidAt)
	}
	if r.RefundedAt != nil {
		refunded = db.timeArg(*r.RefundedAt)
	}
	_, err := tx.exec(db.insertPeriodStmt(), r.ID, r.VIN, r.Seq, r.Source, orderID, r.Product, r.Days, r.DataBytesPerMonth,
		paid, db.timeArg(r.StartsAt), db.timeArg(r.EndsAt), refunded, db.timeArg(r.CreatedAt), db.timeArg(r.UpdatedAt))
	return err
}
