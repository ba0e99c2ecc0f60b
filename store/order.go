package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"entitlements/billing"
)

// orderRow is the stored form of billing.Order.
type orderRow struct {
	ID                string `gorm:"primaryKey"`
	VIN               string `gorm:"column:vin"`
	OwnerID           string
	Product           string
	AmountFen         int64
	Currency          string
	Days              int
	DataBytesPerMonth int64
	Status            string
	CreatedAt         time.Time
	ExpiresAt         time.Time
	PaidAt            *time.Time
	CancelledAt       *time.Time
	RefundedFen       int64
	TransactionID     string
	UpdatedAt         time.Time
}

func (orderRow) TableName() string { return "orders" }

func (r orderRow) order() billing.Order {
	o := billing.Order{
		ID:                r.ID,
		VIN:               billing.VIN(r.VIN),
		OwnerID:           r.OwnerID,
		Product:           r.Product,
		AmountFen:         r.AmountFen,
		Currency:          r.Currency,
		Days:              r.Days,
		DataBytesPerMonth: r.DataBytesPerMonth,
		Status:            billing.OrderStatus(r.Status),
		CreatedAt:         r.CreatedAt.UTC(),
		ExpiresAt:         r.ExpiresAt.UTC(),
		RefundedFen:       r.RefundedFen,
		TransactionID:     r.TransactionID,
	}
	if r.PaidAt != nil {
		t := r.PaidAt.UTC()
		o.PaidAt = &t
	}
	if r.CancelledAt != nil {
		t := r.CancelledAt.UTC()
		o.CancelledAt = &t
	}
	return o
}

func newOrderRow(o billing.Order, now time.Time) orderRow {
	return orderRow{
		ID: o.ID, VIN: string(o.VIN), OwnerID: o.OwnerID, Product: o.Product,
		AmountFen: o.AmountFen, Currency: o.Currency, Days: o.Days, DataBytesPerMonth: o.DataBytesPerMonth,
		Status: string(o.Status), CreatedAt: utc(o.CreatedAt), ExpiresAt: utc(o.ExpiresAt),
		PaidAt: utcp(o.PaidAt), CancelledAt: utcp(o.CancelledAt), RefundedFen: o.RefundedFen,
		TransactionID: o.TransactionID, UpdatedAt: utc(now),
	}
}

// CreateOrder stores o (a new order from billing.NewOrder; its ID is
// assigned here) under the idempotency key k, in one transaction: the key
// is claimed, the vehicle locked and checked to still belong to o.OwnerID,
// the order inserted and render's response stored with the key. A retry
// with the same key and request gets the stored response (Replayed);
// another request with the key gets EIdempotencyKeyReused. Returns
// ENotActivated for a VIN that has no vehicle and EVehicleNotFound when
// the vehicle is no longer the owner's.
func (db *DB) CreateOrder(ctx context.Context, o billing.Order, k billing.IdempotencyKey, render billing.Render[billing.Order]) (billing.StoredResponse, error) {
	var out billing.StoredResponse
	err := db.write(ctx, nil, func(tx *Tx) error {
		replay, err := claimKey(tx, k, o.CreatedAt)
		if err != nil || replay != nil {
			if replay != nil {
				out = *replay
			}
			return err
		}
		v, err := db.vehicle(tx.query, o.VIN, true)
		if billing.IsCode(err, billing.EVehicleNotFound) {
			return billing.Errorf(billing.ENotActivated, "vehicle %s is not activated", o.VIN)
		}
		if err != nil {
			return err
		}
		if v.OwnerID != o.OwnerID {
			return billing.Errorf(billing.EVehicleNotFound, "vehicle %s not found", o.VIN)
		}
		o.ID = newID("ord", o.CreatedAt)
		row := newOrderRow(o, o.CreatedAt)
		if err := db.txInsertOrder(tx, row); err != nil {
			return fmt.Errorf("insert order: %w", err)
		}
		tx.audit(billing.AuditEntry{At: o.CreatedAt, Action: billing.AuditOrderCreated, VIN: o.VIN, OrderID: o.ID,
			After: billing.Fields{"status": string(o.Status), "owner_id": o.OwnerID, "product": o.Product,
				"amount_fen": o.AmountFen, "currency": o.Currency, "expires_at": o.ExpiresAt}})
		out, err = storeResponse(tx, k, row.order(), render)
		return err
	})
	if err != nil {
		return billing.StoredResponse{}, err
	}
	return out, nil
}

// Order returns the order, or EOrderNotFound.
func (db *DB) Order(ctx context.Context, id string) (billing.Order, error) {
	return db.order(db.onReader(ctx), id)
}

// Orders returns a page of orders and the cursor of the next page (nil on
// the last page).
func (db *DB) Orders(ctx context.Context, q billing.OrderQuery) ([]billing.Order, *billing.Cursor, error) {
	tx := db.read.WithContext(ctx).Where("vin = ?", string(q.VIN))
	if q.OwnerID != "" {
		tx = tx.Where("owner_id = ?", q.OwnerID)
	}
	if q.After != nil {
		at := utc(q.After.At)
		tx = tx.Where("(created_at < ? OR (created_at = ? AND id < ?))", at, at, q.After.ID)
	}
	var rows []orderRow
	if err := tx.Order("created_at DESC, id DESC").Limit(q.Limit + 1).Find(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("list orders %s: %w", q.VIN, err)
	}
	rows, next := page(rows, q.Limit, func(r orderRow) billing.Cursor { return billing.Cursor{At: r.CreatedAt.UTC(), ID: r.ID} })
	out := make([]billing.Order, len(rows))
	for i, r := range rows {
		out[i] = r.order()
	}
	return out, next, nil
}

// CancelStaleOrders cancels every order still pending whose time to pay
// has run out at now (created ttl or more before now, or past the
// expires_at it was given), and returns how many it cancelled. It is
// state-driven, so a run missed while the service was down is caught up by
// the next. A payment that arrives later still makes the order paid. It
// holds the JobCancelUnpaid lock (see jobWrite): while another replica
// runs it, it cancels nothing and returns 0.
func (db *DB) CancelStaleOrders(ctx context.Context, now time.Time, ttl time.Duration) (int, error) {
	var n int
	err := db.jobWrite(ctx, JobCancelUnpaid, writeUnbounded, func(tx *Tx) error {
		at := db.timeArg(now)
		rows, err := tx.query(cancelStaleStmt, string(billing.OrderCancelled), at, at,
			string(billing.OrderPending), at, db.timeArg(now.Add(-ttl)))
		if err != nil {
			return err
		}
		n = 0
		return eachRow(rows, func() error {
			var id, vin string
			if err := rows.Scan(&id, &vin); err != nil {
				return err
			}
			n++
			tx.audit(billing.AuditEntry{At: now, Action: billing.AuditOrderCancelledStale, VIN: billing.VIN(vin), OrderID: id,
				Before: billing.Fields{"status": string(billing.OrderPending)},
				After:  billing.Fields{"status": string(billing.OrderCancelled), "cancelled_at": now}})
			return nil
		})
	})
	if errors.Is(err, errJobBusy) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cancel stale orders: %w", err)
	}
	return n, nil
}

// cancelPendingOrders cancels the unpaid orders ownerID placed for vin,
// inside tx (an ownership transfer), and returns their ids, sorted.
func cancelPendingOrders(tx *Tx, vin billing.VIN, ownerID string, now time.Time) ([]string, error) {
	at := tx.db.timeArg(now)
	rows, err := tx.query(cancelOwnersOrdersStmt, string(billing.OrderCancelled), at, at, string(vin), ownerID, string(billing.OrderPending))
	if err != nil {
		return nil, fmt.Errorf("cancel orders of %s on %s: %w", ownerID, vin, err)
	}
	var ids []string
	err = eachRow(rows, func() error {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cancel orders of %s on %s: %w", ownerID, vin, err)
	}
	slices.Sort(ids)
	return ids, nil
}

var (
	cancelOwnersOrdersStmt = statement{"order/cancel-owners", func() string {
		return `UPDATE orders SET status = ?, cancelled_at = ?, updated_at = ? WHERE vin = ? AND owner_id = ? AND status = ?
			RETURNING id`
	}}
	cancelStaleStmt = statement{"order/cancel-stale", func() string {
		return `UPDATE orders SET status = ?, cancelled_at = ?, updated_at = ?
			WHERE status = ? AND (expires_at <= ? OR created_at <= ?)
			RETURNING id, vin`
	}}
	insertOrderStmt = statement{"order/insert", func() string {
		return `INSERT INTO orders (id, vin, owner_id, product, amount_fen, currency, days, data_bytes_per_month, status,
			created_at, expires_at, paid_at, cancelled_at, refunded_fen, transaction_id, updated_at)
			VALUES (` + placeholders(16) + `)`
	}}
)

// txInsertOrder inserts the order row r.
func (db *DB) txInsertOrder(tx *Tx, r orderRow) error {
	_, err := tx.exec(insertOrderStmt, r.ID, r.VIN, r.OwnerID, r.Product, r.AmountFen, r.Currency, r.Days, r.DataBytesPerMonth,
		r.Status, db.timeArg(r.CreatedAt), db.timeArg(r.ExpiresAt), db.timePtr(r.PaidAt), db.timePtr(r.CancelledAt),
		r.RefundedFen, r.TransactionID, db.timeArg(r.UpdatedAt))
	return err
}
