package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"entitlements/billing"
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
//
// The refund is audited with it; a refusal by the refund rules
// (refusedCodes) is audited in a transaction of its own, since the
// refund's rolls back.
func (db *DB) RefundOrder(ctx context.Context, orderID string, req billing.RefundRequest, operator string,
	k billing.IdempotencyKey, render billing.Render[billing.Refund], loc *time.Location, now time.Time) (billing.StoredResponse, error) {
	var (
		out billing.StoredResponse
		vin billing.VIN
	)
	err := db.write(ctx, nil, func(tx *Tx) error {
		replay, err := claimKey(tx, k, now)
		if err != nil || replay != nil {
			if replay != nil {
				out = *replay
			}
			return err
		}
		o, err := db.order(tx.query, orderID)
		if err != nil {
			return err
		}
		tx.touch(o.VIN)
		vin = o.VIN
		if _, err := db.vehicle(tx.query, o.VIN, true); err != nil { // the lock
			return err
		}
		if o, err = db.order(tx.query, orderID); err != nil { // again, under the lock
			return err
		}
		tl, err := db.timelineForWrite(tx, o.VIN)
		if err != nil {
			return err
		}
		plan, err := billing.PlanRefund(o, periodOf(tl, o.ID), req, now)
		if err != nil {
			return err
		}
		coveredUntil := tl.End()
		if err := applyPeriodChanges(tx, &tl, o, plan, loc, now); err != nil {
			return err
		}
		r, err := db.insertRefund(tx, o, req, plan, operator, loc, now)
		if err != nil {
			return err
		}
		if err := previewStop(ctx, r, tl); err != nil {
			return err // a dry run (PreviewRefund): roll everything back
		}
		tx.audit(billing.AuditEntry{At: now, Action: billing.AuditRefundIssued, VIN: o.VIN, OrderID: o.ID, RefundID: r.ID,
			Before: billing.Fields{"status": string(o.Status), "refunded_fen": o.RefundedFen, "coverage_ends_at": coveredUntil},
			After: billing.Fields{"status": string(o.StatusAfterRefunds(o.RefundedFen + r.AmountFen)),
				"refunded_fen": o.RefundedFen + r.AmountFen, "amount_fen": r.AmountFen, "reason": string(r.Reason),
				"period_action": string(r.PeriodAction), "end_access": r.EndAccess, "coverage_ends_at": tl.End()}})
		out, err = storeResponse(tx, k, r, render)
		return err
	})
	// A refused dry run is not an attempt: only refused refunds are recorded.
	if code := billing.ErrorCode(err); slices.Contains(refusedCodes, code) && !isPreview(ctx) {
		after := billing.Fields{"code": code, "reason": string(req.Reason), "end_access": req.EndAccess}
		if req.AmountFen != nil {
			after["amount_fen"] = *req.AmountFen
		}
		e := billing.AuditEntry{At: now, Action: billing.AuditRefundRefused, VIN: vin, OrderID: orderID, After: after}
		// Recorded even if the caller has gone meanwhile: it was refused.
		if aerr := db.RecordAudit(context.WithoutCancel(ctx), e); aerr != nil {
			return billing.StoredResponse{}, fmt.Errorf("refund of %s refused (%s), and the refusal not recorded: %w", orderID, code, aerr)
		}
	}
	if err != nil {
		return billing.StoredResponse{}, err
	}
	return out, nil
}

// refusedCodes are the refusals of the refund rules that the audit trail
// records: attempts by billing that changed nothing.
var refusedCodes = []string{billing.ENothingRefundable, billing.ERefundExceedsBalance, billing.EOrderNotPaid}

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
// raiseEpochStmt raises a vehicle's epoch: offline certificates issued
// before it are to be discarded.
var raiseEpochStmt = statement{"vehicle/raise-epoch", func() string {
	return `UPDATE vehicles SET epoch = epoch + 1 WHERE vin = ?`
}}

func applyPeriodChanges(tx *Tx, tl *billing.Timeline, o billing.Order, plan billing.RefundPlan, loc *time.Location, now time.Time) error {
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
		tx.touch(p.VIN)
		if err := tx.periodWritten(p, false); err != nil {
			return err
		}
		_, err := tx.exec(refundPeriodStmt, tx.db.timeArg(*p.RefundedAt), tx.db.timeArg(p.EndsAt), tx.db.timeArg(now), p.ID)
		if err != nil {
			return fmt.Errorf("refund period %s: %w", p.ID, err)
		}
	}
	if err := savePeriodTimes(tx, moved, now); err != nil {
		return err
	}
	if err := tx.timelineChanged(o.VIN); err != nil {
		return err
	}
	if _, err := tx.exec(raiseEpochStmt, string(o.VIN)); err != nil {
		return fmt.Errorf("raise epoch of %s: %w", o.VIN, err)
	}
	return setCoverageEnd(tx, o.VIN, tl.End(), tl.CoveredSince(), now)
}

// insertRefund appends the refund, adds it to the order and writes the
// refund.issued notice for the payment system.
func (db *DB) insertRefund(tx *Tx, o billing.Order, req billing.RefundRequest, plan billing.RefundPlan, operator string, loc *time.Location, now time.Time) (billing.Refund, error) {
	row := refundRow{
		ID: newID("rfd", now), OrderID: o.ID, VIN: string(o.VIN), AmountFen: plan.AmountFen, Currency: o.Currency,
		Reason: string(req.Reason), Note: req.Note, EndAccess: plan.EndAccess, PeriodAction: string(plan.Action),
		TransactionID: o.TransactionID, CreatedBy: operator, CreatedAt: utc(now),
	}
	_, err := tx.exec(insertRefundStmt, row.ID, row.OrderID, row.VIN, row.AmountFen, row.Currency, row.Reason, row.Note,
		row.EndAccess, row.PeriodAction, row.TransactionID, row.CreatedBy, db.timeArg(row.CreatedAt))
	if err != nil {
		return billing.Refund{}, fmt.Errorf("insert refund: %w", err)
	}
	total := o.RefundedFen + plan.AmountFen
	// The guard in WHERE (and the CHECK on the column) make an over-refund
	// impossible even if the lock were missing.
	n, err := tx.update(addRefundStmt, plan.AmountFen, string(o.StatusAfterRefunds(total)), db.timeArg(now), o.ID, plan.AmountFen)
	if err != nil {
		return billing.Refund{}, fmt.Errorf("add refund to order %s: %w", o.ID, err)
	}
	if n != 1 {
		return billing.Refund{}, billing.Errorf(billing.ERefundExceedsBalance, "refund would exceed what was paid for order %s", o.ID)
	}
	r := row.refund()
	_, err = db.insertNotice(tx, billing.RefundIssuedNotice(o, r, total, loc), now)
	return r, err
}

var (
	refundPeriodStmt = statement{"refund/period", func() string {
		return `UPDATE periods SET refunded_at = ?, ends_at = ?, updated_at = ? WHERE id = ?`
	}}
	insertRefundStmt = statement{"refund/insert", func() string {
		return `INSERT INTO refunds (id, order_id, vin, amount_fen, currency, reason, note, end_access, period_action,
			transaction_id, created_by, created_at) VALUES (` + placeholders(12) + `)`
	}}
	addRefundStmt = statement{"refund/order", func() string {
		return `UPDATE orders SET refunded_fen = refunded_fen + ?1, status = ?2, updated_at = ?3
			WHERE id = ?4 AND refunded_fen + ?5 <= amount_fen`
	}}
)

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
	if q.Operator != "" {
		tx = tx.Where("created_by = ?", q.Operator)
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
	if err != nil {
		return 0, fmt.Errorf("sum refunds of %s: %w", orderID, err)
	}
	if sum == nil {
		return 0, nil
	}
	return *sum, nil
}
