package billing

import (
	"math/bits"
	"time"
)

// RefundReason says why money went back; the values are public API.
type RefundReason string

const (
	ReasonRequestedByCustomer RefundReason = "requested_by_customer"
	ReasonDuplicate           RefundReason = "duplicate"
	ReasonServiceIssue        RefundReason = "service_issue"
	ReasonVehicleTransferred  RefundReason = "vehicle_transferred"
	ReasonFraudulent          RefundReason = "fraudulent"
	ReasonOther               RefundReason = "other"
)

// RefundReasons lists every reason.
var RefundReasons = []RefundReason{ReasonRequestedByCustomer, ReasonDuplicate, ReasonServiceIssue,
	ReasonVehicleTransferred, ReasonFraudulent, ReasonOther}

// Valid reports whether r is one of RefundReasons.
func (r RefundReason) Valid() bool {
	for _, x := range RefundReasons {
		if r == x {
			return true
		}
	}
	return false
}

// MaxRefundNote is the longest note, in characters.
const MaxRefundNote = 500

// PeriodAction is what a refund did to the order's period.
type PeriodAction string

const (
	PeriodKept    PeriodAction = "kept"    // access unchanged
	PeriodRemoved PeriodAction = "removed" // not started yet: taken out of the timeline
	PeriodCut     PeriodAction = "cut"     // running: ends at the refund instant
)

// Refund is money returned on an order. Refunds are append-only: never
// edited or deleted.
type Refund struct {
	ID            string
	OrderID       string
	VIN           VIN
	AmountFen     int64
	Currency      string
	Reason        RefundReason
	Note          string
	EndAccess     bool         // access was cut (always with the default amount)
	PeriodAction  PeriodAction // what happened to the order's period
	TransactionID string       // the payment the money goes back to
	CreatedBy     string       // the operator: the token's subject
	CreatedAt     time.Time
}

// RefundRequest is what the billing team asks for. Without AmountFen the
// unused value is refunded and access ends; with it, that amount (a
// goodwill or partial refund) is refunded and access ends only if
// EndAccess.
type RefundRequest struct {
	Reason    RefundReason
	Note      string
	AmountFen *int64
	EndAccess bool
}

// Validate checks the request's fields.
func (r RefundRequest) Validate() error {
	var fields []FieldError
	switch {
	case r.Reason == "":
		fields = append(fields, FieldError{"reason", "required"})
	case !r.Reason.Valid():
		fields = append(fields, FieldError{"reason", "invalid"})
	}
	fields = NoteField.AppendCheck(fields, r.Note)
	if r.AmountFen != nil && *r.AmountFen < 1 {
		fields = append(fields, FieldError{"amount_fen", "not_positive"})
	}
	if len(fields) > 0 {
		return Invalid("refund is not valid", fields...)
	}
	return nil
}

// RefundPlan is what a refund will do: how much goes back and what
// happens to the order's period.
type RefundPlan struct {
	AmountFen int64
	Action    PeriodAction
	EndAccess bool
}

// PlanRefund applies the refund rules of SPEC section 2 to order o, whose
// period is p (nil if it has none), at now:
//   - the order must be paid: EOrderNotPaid;
//   - without an amount: a period not started is refunded in full (what is
//     left of the payment) and removed; a running one gets
//     Prorate(price, unused, length) and ends now; an ended or already
//     refunded one, or a value that rounds down to 0 fen, is
//     ENothingRefundable;
//   - with an amount: 1 ≤ amount ≤ paid − refunded, else
//     ERefundExceedsBalance; the period is cut only if EndAccess.
//
// The refunds of an order never add up to more than was paid.
func PlanRefund(o Order, p *Period, r RefundRequest, now time.Time) (RefundPlan, error) {
	if !o.Paid() {
		return RefundPlan{}, Errorf(EOrderNotPaid, "order %s is %s, not paid: there is nothing to refund", o.ID, o.StatusAt(now))
	}
	balance := o.RefundableFen()
	if r.AmountFen != nil {
		if *r.AmountFen > balance {
			return RefundPlan{}, Errorf(ERefundExceedsBalance, "refund of %d fen exceeds what is left of order %s: %d fen", *r.AmountFen, o.ID, balance)
		}
		plan := RefundPlan{AmountFen: *r.AmountFen, Action: PeriodKept, EndAccess: r.EndAccess}
		if r.EndAccess {
			plan.Action = cutFor(p, now)
		}
		return plan, nil
	}
	action := cutFor(p, now)
	var value int64
	switch action {
	case PeriodRemoved:
		value = balance
	case PeriodCut:
		value = min(Prorate(o.AmountFen, p.EndsAt.Sub(now), p.EndsAt.Sub(p.StartsAt)), balance)
	}
	if value <= 0 {
		return RefundPlan{}, Errorf(ENothingRefundable, "order %s has no unused value left to refund", o.ID)
	}
	return RefundPlan{AmountFen: value, Action: action, EndAccess: true}, nil
}

// cutFor is what ending access does to p at now.
func cutFor(p *Period, now time.Time) PeriodAction {
	switch {
	case p == nil || p.Refunded():
		return PeriodKept
	case now.Before(p.StartsAt):
		return PeriodRemoved
	case now.Before(p.EndsAt):
		return PeriodCut
	}
	return PeriodKept
}

// Prorate returns floor(priceFen × unused_seconds / period_seconds), the
// value of the unused part of a period, in whole seconds and integer
// arithmetic (128-bit intermediate, so it cannot overflow). unused is
// clamped to [0, period]; a non-positive period is worth 0.
func Prorate(priceFen int64, unused, period time.Duration) int64 {
	us, ps := int64(unused/time.Second), int64(period/time.Second)
	if priceFen <= 0 || ps <= 0 || us <= 0 {
		return 0
	}
	if us >= ps {
		return priceFen
	}
	hi, lo := bits.Mul64(uint64(priceFen), uint64(us))
	q, _ := bits.Div64(hi, lo, uint64(ps)) // hi < ps because us < ps: no overflow
	return int64(q)
}

// ApplyRefund changes the order's period in the timeline as plan says and
// lays out the periods after it again. It returns every period whose
// stored form must change (the refunded one included).
func (tl *Timeline) ApplyRefund(orderID string, action PeriodAction, loc *time.Location, now time.Time) []Period {
	if action == PeriodKept {
		return nil
	}
	var changed []Period
	for i := range tl.Periods {
		p := &tl.Periods[i]
		if p.OrderID != orderID || p.Refunded() {
			continue
		}
		at := now
		p.RefundedAt = &at
		if action == PeriodCut {
			p.EndsAt = now
		}
		changed = append(changed, *p)
	}
	return append(changed, tl.Layout(loc)...)
}
