package store

import (
	"context"
	"fmt"
	"time"

	"entitlements/billing"
)

// paymentRow is one payment notification as received, with what was done
// with it. Append-only: it is the record the billing team reconciles
// against the provider (amount mismatches, second payments of an order).
type paymentRow struct {
	EventID       string `gorm:"primaryKey"`
	OrderID       string
	Status        string
	Outcome       string
	AmountFen     int64
	Currency      string
	PaidAt        *time.Time
	TransactionID string
	ReceivedAt    time.Time
}

func (paymentRow) TableName() string { return "payments" }

func (r paymentRow) payment() billing.Payment {
	p := billing.Payment{EventID: r.EventID, OrderID: r.OrderID, Status: billing.PaymentStatus(r.Status),
		AmountFen: r.AmountFen, Currency: r.Currency, TransactionID: r.TransactionID}
	if r.PaidAt != nil {
		p.PaidAt = r.PaidAt.UTC()
	}
	return p
}

// ApplyPayment records the notification p and applies it as
// billing.PayOrder decides, in one transaction with the vehicle locked
// (lockOrderVehicleStmt):
// the payment row with its outcome and, for an applied payment, the new
// period (and any period the layout moved), vehicles.coverage_ends_at,
// the paid order and the order.paid notice. A refused payment is recorded
// and returns EAmountMismatch.
//
// The event_id makes it idempotent: a repeat (see billing.Payment.Repeats)
// returns the order and the error of the first delivery and changes
// nothing; the same event_id with another order or content is
// EEventIDReused and changes nothing either. Returns EOrderNotFound.
func (db *DB) ApplyPayment(ctx context.Context, p billing.Payment, loc *time.Location, now time.Time) (billing.Order, error) {
	var (
		o       billing.Order
		refused error
	)
	now, p.PaidAt = utc(now), utc(p.PaidAt) // what is stored is what the plan is computed from
	err := db.write(ctx, nil, func(tx *Tx) error {
		var err error
		if db.dialect == Postgres { // lock the order's vehicle (an order never changes vehicle), then read the order
			if _, err := tx.exec(lockOrderVehicleStmt, p.OrderID); err != nil {
				return fmt.Errorf("lock the vehicle of order %s: %w", p.OrderID, err)
			}
		}
		if o, err = db.order(tx.query, p.OrderID); err != nil {
			return err
		}
		tl, err := db.timelineForWrite(tx, o.VIN)
		if err != nil {
			return err
		}
		plan := billing.PayOrder(o, p, tl, newID("per", now), loc, now)
		claimed, err := db.txClaimEvent(tx, p, plan.Outcome, now)
		if err != nil {
			return err
		}
		if !claimed {
			o, refused, err = db.replayPayment(tx, p, o)
			return err
		}
		refused = plan.Refused
		tx.audit(paymentAudit(o, p, plan, tl.End(), now))
		if plan.Outcome != billing.OutcomeApplied {
			return nil
		}
		o = plan.Order
		return db.txApplyPayment(tx, plan, now)
	})
	if err != nil {
		return billing.Order{}, err
	}
	return o, refused
}

// paymentAudit is the audit entry of a notification claimed for the first
// time, about order o (as it was) of a vehicle covered until coveredUntil.
// An applied payment records the order's and the coverage's change; the
// others change no order: a mismatch records the order's amount before and
// the notification's after, a failed payment or a second payment of a paid
// order the notification.
func paymentAudit(o billing.Order, p billing.Payment, plan billing.PaymentPlan, coveredUntil, now time.Time) billing.AuditEntry {
	e := billing.AuditEntry{At: now, VIN: o.VIN, OrderID: o.ID}
	event := billing.Fields{"event_id": p.EventID, "amount_fen": p.AmountFen, "currency": p.Currency}
	if p.TransactionID != "" {
		event["transaction_id"] = p.TransactionID
	}
	switch plan.Outcome {
	case billing.OutcomeApplied:
		e.Action = billing.AuditPaymentApplied
		e.Before = billing.Fields{"status": string(o.Status), "coverage_ends_at": coveredUntil}
		event["status"], event["paid_at"], event["coverage_ends_at"] = string(plan.Order.Status), *plan.Order.PaidAt, plan.CoverageEnd
	case billing.OutcomeAmountMismatch:
		e.Action = billing.AuditPaymentMismatch
		e.Before = billing.Fields{"amount_fen": o.AmountFen, "currency": o.Currency}
	case billing.OutcomeFailed:
		e.Action = billing.AuditPaymentFailed
	default:
		e.Action = billing.AuditPaymentAlreadyPaid
		e.Before = billing.Fields{"status": string(o.Status)}
	}
	e.After = event
	return e
}

// replayPayment answers a repeated notification as the first delivery
// was answered: with its order and, when it was refused, EAmountMismatch
// (refused). A notification that reuses the event_id with another order
// or content is EEventIDReused (err): nothing is recorded.
func (db *DB) replayPayment(tx *Tx, p billing.Payment, o billing.Order) (_ billing.Order, refused, err error) {
	var prev paymentRow
	var paidAt dbTime
	_, err = tx.queryRow(findPaymentStmt, []any{p.EventID}, &prev.OrderID, &prev.Status, &prev.Outcome,
		&prev.AmountFen, &prev.Currency, &paidAt, &prev.TransactionID)
	if err != nil {
		return o, nil, fmt.Errorf("read payment %s: %w", p.EventID, err)
	}
	prev.PaidAt = paidAt.ptr()
	if err := p.Repeats(prev.payment()); err != nil {
		return o, nil, err
	}
	if billing.PaymentOutcome(prev.Outcome) == billing.OutcomeAmountMismatch {
		return o, billing.Errorf(billing.EAmountMismatch, "payment event %s was refused: amount or currency did not match order %s", p.EventID, o.ID), nil
	}
	return o, nil, nil
}

// lockOrderVehicleStmt locks, on PostgreSQL, the row of the vehicle of
// an order (none when there is no such order) until the transaction
// ends, in one round trip: every write of a vehicle's timeline takes this
// lock first, so what is read after it is what the last of them left.
// On SQLite the writer slot serialises writes instead.
var lockOrderVehicleStmt = statement{"pay/lock", func() string {
	return `SELECT vin FROM vehicles WHERE vin = (SELECT vin FROM orders WHERE id = ?) FOR UPDATE`
}}

var findPaymentStmt = statement{"pay/find", func() string {
	return `SELECT order_id, status, outcome, amount_fen, currency, paid_at, transaction_id FROM payments WHERE event_id = ?`
}}

// txApplyPayment carries out an applied payment's plan; tx holds the
// vehicle lock.
func (db *DB) txApplyPayment(tx *Tx, plan billing.PaymentPlan, now time.Time) error {
	o := plan.Order
	if err := db.txInsertPeriod(tx, newPeriodRow(plan.Period, now)); err != nil {
		return fmt.Errorf("insert period of order %s: %w", o.ID, err)
	}
	if err := savePeriodTimes(tx, plan.Moved, now); err != nil {
		return err
	}
	if err := setCoverageEnd(tx, o.VIN, plan.CoverageEnd, plan.CoveredSince, now); err != nil {
		return fmt.Errorf("set coverage end of %s: %w", o.VIN, err)
	}
	_, err := tx.exec(db.orderPaidStmt(), string(billing.OrderPaid), db.timeArg(*o.PaidAt), o.TransactionID, db.timeArg(now), o.ID)
	if err != nil {
		return fmt.Errorf("mark order %s paid: %w", o.ID, err)
	}
	_, err = db.insertNotice(tx, plan.Notice, now)
	return err
}

// PaymentEvents returns the notifications recorded for an order, oldest
// first, for reconciliation.
func (db *DB) PaymentEvents(ctx context.Context, orderID string) ([]PaymentEvent, error) {
	var rows []paymentRow
	err := db.read.WithContext(ctx).Where("order_id = ?", orderID).Order("received_at, event_id").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list payments of %s: %w", orderID, err)
	}
	out := make([]PaymentEvent, len(rows))
	for i, r := range rows {
		out[i] = PaymentEvent{EventID: r.EventID, OrderID: r.OrderID, Status: billing.PaymentStatus(r.Status),
			Outcome: billing.PaymentOutcome(r.Outcome), AmountFen: r.AmountFen, Currency: r.Currency,
			ReceivedAt: r.ReceivedAt.UTC()}
	}
	return out, nil
}

// PaymentEvent is a recorded notification.
type PaymentEvent struct {
	EventID    string
	OrderID    string
	Status     billing.PaymentStatus
	Outcome    billing.PaymentOutcome
	AmountFen  int64
	Currency   string
	ReceivedAt time.Time
}
