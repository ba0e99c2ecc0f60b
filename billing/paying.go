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
	Order        Order    // the order, paid
	Period       Period   // its new period, placed by the layout
	Moved        []Period // other periods the layout moved (none unless the stored layout was stale)
	CoverageEnd  time.Time
	CoveredSince time.Time // the start of the stretch that ends at CoverageEnd (Timeline.CoveredSince)
	Notice       Notice    // order.paid
}

// PayOrder decides what payment p does to order o, of a vehicle whose
// timeline is tl, at now:
//   - an amount or currency other than the order's is refused
//     (OutcomeAmountMismatch, Refused is EAmountMismatch);
//   - a failed payment changes nothing (OutcomeFailed);
//   - a payment of an order already paid, by another notification, changes
//     nothing (OutcomeAlreadyPaid);
//   - otherwise the order becomes paid at EffectivePaidAt (even if it had
//     been cancelled as stale: the money was taken), its period, with ID
//     periodID, is appended to the timeline and laid out (PaidStart), and
//     the order.paid notice says so (OutcomeApplied).
func PayOrder(o Order, p Payment, tl Timeline, periodID string, loc *time.Location, now time.Time) PaymentPlan {
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
	plan.CoverageEnd, plan.CoveredSince = tl.End(), tl.CoveredSince()
	o.Status, o.PaidAt, o.TransactionID = OrderPaid, &paidAt, p.TransactionID
	plan.Order = o
	plan.Notice = OrderPaidNotice(o, plan.Period, paidAt, tl.At(now).CoveredUntil, loc)
	return plan
}

// Remind reports whether a vehicle whose timeline is tl gets a
// coverage.expiring reminder at now: only while it is covered. Coverage
// that lapsed and resumes later (a payment stamped ahead of the clock, an
// activation a few minutes in the future) gets none until it is covered
// again.
func Remind(tl Timeline, now time.Time) bool { return tl.At(now).Covered }
