package store

import (
	"context"
	"fmt"
	"time"

	"entitlements/billing"

	"gorm.io/gorm"
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

// ApplyPayment records the notification p and applies it, in one
// transaction with the vehicle locked:
//   - a succeeded payment of the order's amount and currency makes the
//     order paid (even if it had been cancelled as stale: the money was
//     taken), appends its period to the timeline at
//     max(paid_at, end of the coverage before it), keeps
//     vehicles.coverage_ends_at up to date and writes the order.paid notice;
//   - a failed payment is recorded and the order stays as it was;
//   - a payment of an order already paid (another event) changes nothing;
//   - a wrong amount or currency is recorded and refused: EAmountMismatch.
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
	err := db.groupTx(ctx, func(tx *gorm.DB) error {
		refused = nil
		var err error
		if o, err = db.order(db.inTx(tx), p.OrderID); err != nil {
			return err
		}
		if _, err := db.vehicle(db.inTx(tx), o.VIN, true); err != nil { // the lock; an order never changes vehicle
			return err
		}
		if db.dialect == Postgres { // read again under the vehicle's lock
			if o, err = db.order(db.inTx(tx), p.OrderID); err != nil {
				return err
			}
		}
		outcome := paymentOutcome(p, o)
		claimed, err := db.txClaimEvent(tx, p, outcome, now)
		if err != nil {
			return err
		}
		if !claimed {
			var prev paymentRow
			if err := tx.Where("event_id = ?", p.EventID).Take(&prev).Error; err != nil {
				return fmt.Errorf("read payment %s: %w", p.EventID, err)
			}
			if err := p.Repeats(prev.payment()); err != nil {
				return err // nothing recorded: the transaction rolls back
			}
			outcome = billing.PaymentOutcome(prev.Outcome)
			if outcome == billing.OutcomeAmountMismatch {
				refused = billing.Errorf(billing.EAmountMismatch, "payment event %s was refused: amount or currency did not match order %s", p.EventID, o.ID)
			}
			return nil
		}
		switch outcome {
		case billing.OutcomeAmountMismatch:
			refused = p.Check(o)
			return nil
		case billing.OutcomeApplied:
			o, err = db.markPaid(tx, o, p, loc, now)
			return err
		}
		return nil
	})
	if o.VIN != "" {
		db.forget(o.VIN)
	}
	if err != nil {
		return billing.Order{}, err
	}
	return o, refused
}

func paymentOutcome(p billing.Payment, o billing.Order) billing.PaymentOutcome {
	switch {
	case p.Check(o) != nil:
		return billing.OutcomeAmountMismatch
	case p.Status == billing.PaymentFailed:
		return billing.OutcomeFailed
	case o.Paid():
		return billing.OutcomeAlreadyPaid
	}
	return billing.OutcomeApplied
}

// markPaid makes o paid by p and adds its period; tx holds the vehicle lock.
func (db *DB) markPaid(tx *gorm.DB, o billing.Order, p billing.Payment, loc *time.Location, now time.Time) (billing.Order, error) {
	tl, err := db.timeline(db.inTx(tx), o.VIN)
	if err != nil {
		return o, err
	}
	paidAt := utc(p.EffectivePaidAt(o, now))
	np := o.PaidPeriod(paidAt, tl.NextSeq())
	np.ID = newID("per", now)
	tl.Periods = append(tl.Periods, np)
	var moved []billing.Period
	for _, c := range tl.Layout(loc) {
		if c.ID != np.ID {
			moved = append(moved, c) // none unless the stored layout was stale
		}
	}
	np = tl.Periods[len(tl.Periods)-1]
	if err := db.txInsertPeriod(tx, newPeriodRow(np, now)); err != nil {
		return o, fmt.Errorf("insert period of order %s: %w", o.ID, err)
	}
	if err := savePeriodTimes(tx, moved, now); err != nil {
		return o, err
	}
	if _, err := db.txExec(tx, db.coverageEndStmt(), db.timeArg(tl.End()), db.timeArg(now), string(o.VIN)); err != nil {
		return o, fmt.Errorf("set coverage end of %s: %w", o.VIN, err)
	}
	_, err = db.txExec(tx, db.orderPaidStmt(), string(billing.OrderPaid), db.timeArg(paidAt), p.TransactionID, db.timeArg(now), o.ID)
	if err != nil {
		return o, fmt.Errorf("mark order %s paid: %w", o.ID, err)
	}
	o.Status, o.PaidAt, o.TransactionID = billing.OrderPaid, &paidAt, p.TransactionID
	_, err = db.insertNotice(tx, billing.OrderPaidNotice(o, np, paidAt, tl.At(now).CoveredUntil, loc), now)
	return o, err
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
