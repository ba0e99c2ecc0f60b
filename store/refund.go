package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"entitlements/billing"

	"gorm.io/gorm"
)

// refundRow is the stored form of billing.Refund; the table is
// append-only (a trigger refuses UPDATE and DELETE).
type refundRow struct {
	ID            string `gorm:"primaryKey"`
	OrderID       string
	VIN           string `gorm:"column:vin"`
	AmountFen     int64
	Currency      string
	Reason        string
	Note          string
	EndAccess     bool
	PeriodAction  string
	TransactionID string
	CreatedBy     string
	CreatedAt     time.Time
}

func (refundRow) TableName() string { return "refunds" }

func (r refundRow) refund() billing.Refund {
	return billing.Refund{
		ID: r.ID, OrderID: r.OrderID, VIN: billing.VIN(r.VIN), AmountFen: r.AmountFen, Currency: r.Currency,
		Reason: billing.RefundReason(r.Reason), Note: r.Note, EndAccess: r.EndAccess,
		PeriodAction: billing.PeriodAction(r.PeriodAction), TransactionID: r.TransactionID,
		CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt.UTC(),
	}
}

// RefundOrder refunds order orderID as req asks (billing.PlanRefund), on
// behalf of operator, under the idempotency key k, in one transaction with
// the vehicle locked: the refund row, the order's refunded_fen and status,
// the cut or removed period and the periods laid out again after it,
// vehicles.coverage_ends_at and the refund.issued notice commit together.
// Because every refund of a vehicle's orders holds the vehicle lock, the
// refunds of an order never add up to more than was paid, however many
// race. Returns EOrderNotFound, EOrderNotPaid, ENothingRefundable,
// ERefundExceedsBalance, EIdempotencyKeyReused.
func (db *DB) RefundOrder(ctx context.Context, orderID string, req billing.RefundRequest, operator string,
	k billing.IdempotencyKey, render billing.Render[billing.Refund], loc *time.Location, now time.Time) (billing.StoredResponse, error) {
	var out billing.StoredResponse
	var vin billing.VIN
	defer func() { db.forget(vin) }() // after the transaction, whatever its outcome
	err := db.tx(ctx, func(tx *gorm.DB) error {
		replay, err := claimKey(tx, k, now)
		if err != nil || replay != nil {
			if replay != nil {
				out = *replay
			}
			return err
		}
		o, err := db.order(db.inTx(tx), orderID)
		if err != nil {
			return err
		}
		vin = o.VIN
		if _, err := db.vehicle(db.inTx(tx), o.VIN, true); err != nil {
			return err
		}
		if o, err = db.order(db.inTx(tx), orderID); err != nil { // again, under the lock
			return err
		}
		tl, err := db.timeline(db.inTx(tx), o.VIN)
		if err != nil {
			return err
		}
		plan, err := billing.PlanRefund(o, periodOf(tl, o.ID), req, now)
		if err != nil {
			return err
		}
		if err := applyPeriodChanges(tx, &tl, o, plan, loc, now); err != nil {
			return err
		}
		r, err := db.insertRefund(tx, o, req, plan, operator, loc, now)
		if err != nil {
			return err
		}
		out, err = storeResponse(tx, k, r, render)
		return err
	})
	if err != nil {
		return billing.StoredResponse{}, err
	}
	return out, nil
}

func periodOf(tl billing.Timeline, orderID string) *billing.Period {
	for i := range tl.Periods {
		if tl.Periods[i].OrderID == orderID {
			return &tl.Periods[i]
		}
	}
	return nil
}

// applyPeriodChanges cuts or removes the order's period as planned, lays
// out the later periods again, keeps coverage_ends_at up to date and
// raises the vehicle's epoch (its coverage shrank).
func applyPeriodChanges(tx *gorm.DB, tl *billing.Timeline, o billing.Order, plan billing.RefundPlan, loc *time.Location, now time.Time) error {
	changed := tl.ApplyRefund(o.ID, plan.Action, loc, now)
	if len(changed) == 0 {
		return nil
	}
	var moved []billing.Period
	for _, p := range changed {
		if p.OrderID != o.ID {
			moved = append(moved, p)
			continue
		}
		err := tx.Model(&periodRow{}).Where("id = ?", p.ID).Updates(map[string]any{
			"refunded_at": utc(*p.RefundedAt), "ends_at": utc(p.EndsAt), "updated_at": utc(now),
		}).Error
		if err != nil {
			return fmt.Errorf("refund period %s: %w", p.ID, err)
		}
	}
	if err := savePeriodTimes(tx, moved, now); err != nil {
		return err
	}
	if err := tx.Exec(`UPDATE vehicles SET epoch = epoch + 1 WHERE vin = ?`, string(o.VIN)).Error; err != nil {
		return fmt.Errorf("raise epoch of %s: %w", o.VIN, err)
	}
	return setCoverageEnd(tx, o.VIN, *tl, now)
}

// insertRefund appends the refund, adds it to the order and writes the
// refund.issued notice for the payment system.
func (db *DB) insertRefund(tx *gorm.DB, o billing.Order, req billing.RefundRequest, plan billing.RefundPlan, operator string, loc *time.Location, now time.Time) (billing.Refund, error) {
	row := refundRow{
		ID: newID("rfd", now), OrderID: o.ID, VIN: string(o.VIN), AmountFen: plan.AmountFen, Currency: o.Currency,
		Reason: string(req.Reason), Note: req.Note, EndAccess: plan.EndAccess, PeriodAction: string(plan.Action),
		TransactionID: o.TransactionID, CreatedBy: operator, CreatedAt: utc(now),
	}
	if err := tx.Create(&row).Error; err != nil {
		return billing.Refund{}, fmt.Errorf("insert refund: %w", err)
	}
	total := o.RefundedFen + plan.AmountFen
	// The guard in WHERE (and the CHECK on the column) make an over-refund
	// impossible even if the lock were missing.
	res := tx.Model(&orderRow{}).Where("id = ? AND refunded_fen + ? <= amount_fen", o.ID, plan.AmountFen).Updates(map[string]any{
		"refunded_fen": gorm.Expr("refunded_fen + ?", plan.AmountFen),
		"status":       string(o.StatusAfterRefunds(total)),
		"updated_at":   utc(now),
	})
	if res.Error != nil {
		return billing.Refund{}, fmt.Errorf("add refund to order %s: %w", o.ID, res.Error)
	}
	if res.RowsAffected != 1 {
		return billing.Refund{}, billing.Errorf(billing.ERefundExceedsBalance, "refund would exceed what was paid for order %s", o.ID)
	}
	r := row.refund()
	_, err := db.insertNotice(tx, billing.RefundIssuedNotice(o, r, total, loc), now)
	return r, err
}

// Refunds returns a page of refunds matching q, oldest first, and the
// cursor of the next page (nil on the last page).
func (db *DB) Refunds(ctx context.Context, q billing.RefundQuery) ([]billing.Refund, *billing.Cursor, error) {
	tx := db.read.WithContext(ctx).Model(&refundRow{})
	if !q.From.IsZero() {
		tx = tx.Where("created_at >= ?", utc(q.From))
	}
	if !q.To.IsZero() {
		tx = tx.Where("created_at < ?", utc(q.To))
	}
	if q.VIN != "" {
		tx = tx.Where("vin = ?", string(q.VIN))
	}
	if q.Reason != "" {
		tx = tx.Where("reason = ?", string(q.Reason))
	}
	if q.After != nil {
		at := utc(q.After.At)
		tx = tx.Where("(created_at > ? OR (created_at = ? AND id > ?))", at, at, q.After.ID)
	}
	var rows []refundRow
	if err := tx.Order("created_at, id").Limit(q.Limit + 1).Find(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("list refunds: %w", err)
	}
	rows, next := page(rows, q.Limit, func(r refundRow) billing.Cursor { return billing.Cursor{At: r.CreatedAt.UTC(), ID: r.ID} })
	out := make([]billing.Refund, len(rows))
	for i, r := range rows {
		out[i] = r.refund()
	}
	return out, next, nil
}

// RefundedFen returns the sum of the order's refunds, for reconciliation
// against orders.refunded_fen.
func (db *DB) RefundedFen(ctx context.Context, orderID string) (int64, error) {
	var sum *int64
	err := db.read.WithContext(ctx).Model(&refundRow{}).Where("order_id = ?", orderID).
		Select("SUM(amount_fen)").Row().Scan(&sum)
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return 0, fmt.Errorf("sum refunds of %s: %w", orderID, err)
	}
	if sum == nil {
		return 0, nil
	}
	return *sum, nil
}
