package billing

import "time"

// PaymentPlan is what a payment notification does to its order (PayOrder);
// the store records the notification with Outcome and, for an applied
// payment, carries out the rest in the same transaction.
type PaymentPlan struct {
	Outcome PaymentOutcome
	// Refused is the EAmountMismatch error of a refused notification.
	Refused error
	// The rest is set for OutcomeApplied only.
	Order       Order    // the order, paid
	Period      Period   // its new period, placed by the layout
	Moved       []Period // other periods the layout moved (none unless the stored layout was stale)
	CoverageEnd time.Time
	Notice      Notice // order.paid
}

// PayOrder decides what payment p does to order o of a vehicle owned by
// ownerID whose timeline is tl, at now:
//   - an amount or currency other than the order's is refused
//     (OutcomeAmountMismatch, Refused is EAmountMismatch);
//   - a failed payment changes nothing (OutcomeFailed);
//   - a payment of an order already paid, by another notification, changes
//     nothing (OutcomeAlreadyPaid);
//   - otherwise the order becomes paid at EffectivePaidAt (even if it had
//     been cancelled as stale: the money was taken), its period, with ID
//     periodID, is appended to the timeline and laid out (PaidStart), and
//     the order.paid notice says so (OutcomeApplied).
func PayOrder(o Order, p Payment, tl Timeline, ownerID, periodID string, loc *time.Location, now time.Time) PaymentPlan {
	switch err := p.Check(o); {
	case err != nil:
		return PaymentPlan{Outcome: OutcomeAmountMismatch, Refused: err}
	case p.Status == PaymentFailed:
		return PaymentPlan{Outcome: OutcomeFailed}
	case o.Paid():
		return PaymentPlan{Outcome: OutcomeAlreadyPaid}
	}
	paidAt := p.EffectivePaidAt(o, now)
	np := o.PaidPeriod(paidAt, tl.NextSeq())
	np.ID = periodID
	tl.Periods = append(append([]Period(nil), tl.Periods...), np)
	plan := PaymentPlan{Outcome: OutcomeApplied}
	for _, c := range tl.Layout(loc) {
		if c.ID != np.ID {
			plan.Moved = append(plan.Moved, c)
		}
	}
	plan.Period = tl.Periods[len(tl.Periods)-1]
	plan.CoverageEnd = tl.End()
	o.Status, o.PaidAt, o.TransactionID = OrderPaid, &paidAt, p.TransactionID
	plan.Order = o
	plan.Notice = OrderPaidNotice(o, ownerID, plan.Period, tl.At(now).CoveredUntil)
	return plan
}

// OrderPaidNotice is the order.paid notice of paid order o, whose period
// is p, with the vehicle covered until coveredUntil; created once per
// order.
func OrderPaidNotice(o Order, ownerID string, p Period, coveredUntil time.Time) Notice {
	var paidAt time.Time
	if o.PaidAt != nil {
		paidAt = *o.PaidAt
	}
	return Notice{
		VIN: o.VIN, OwnerID: ownerID, Kind: NoticeOrderPaid,
		DedupeKey: string(NoticeOrderPaid) + ":" + o.ID,
		Data: map[string]any{
			"order_id": o.ID, "amount_fen": o.AmountFen, "currency": o.Currency, "product": o.Product,
			"days": o.Days, "period_id": p.ID, "paid_at": paidAt.UTC().Format(time.RFC3339Nano),
			"starts_at": p.StartsAt.UTC().Format(time.RFC3339Nano), "ends_at": p.EndsAt.UTC().Format(time.RFC3339Nano),
			"transaction_id": o.TransactionID, "covered_until": coveredUntil.UTC().Format(time.RFC3339Nano),
		},
	}
}

// RefundIssuedNotice is the refund.issued notice of refund r of order o
// (o as it was before r), for the payment system; created once per refund.
func RefundIssuedNotice(r Refund, o Order, ownerID string) Notice {
	return Notice{
		VIN: o.VIN, OwnerID: ownerID, Kind: NoticeRefundIssued, DedupeKey: string(NoticeRefundIssued) + ":" + r.ID,
		Data: map[string]any{
			"refund_id": r.ID, "order_id": o.ID, "transaction_id": o.TransactionID, "amount_fen": r.AmountFen,
			"currency": r.Currency, "reason": string(r.Reason), "end_access": r.EndAccess,
			"order_refunded_fen": o.RefundedFen + r.AmountFen, "order_amount_fen": o.AmountFen,
		},
	}
}

// Remind reports whether a vehicle whose timeline is tl gets a
// coverage.expiring reminder at now: only while it is covered. Coverage
// that lapsed and resumes later (a payment stamped ahead of the clock, an
// activation a few minutes in the future) gets none until it is covered
// again.
func Remind(tl Timeline, now time.Time) bool { return tl.At(now).Covered }
