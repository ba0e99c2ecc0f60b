package billing

import "time"

// OrderStatus is an order's lifecycle state; the values are public API.
type OrderStatus string

const (
	OrderPending           OrderStatus = "pending"
	OrderPaid              OrderStatus = "paid"
	OrderCancelled         OrderStatus = "cancelled"
	OrderRefunded          OrderStatus = "refunded"
	OrderPartiallyRefunded OrderStatus = "partially_refunded"
)

// Order is an owner's purchase of a product for a vehicle. It keeps the
// price, days and data allowance of the product as they were when it was
// created: a later change of the catalog does not touch it.
type Order struct {
	ID                string
	VIN               VIN
	OwnerID           string // who bought it
	Product           string
	AmountFen         int64
	Currency          string
	Days              int
	DataBytesPerMonth int64
	Status            OrderStatus // as stored; see StatusAt for what to show
	CreatedAt         time.Time
	ExpiresAt         time.Time // an unpaid order is cancelled from then on
	PaidAt            *time.Time
	CancelledAt       *time.Time
	RefundedFen       int64
	TransactionID     string // the payment provider's, once paid
}

// NewOrder prices a new order for p at now; it stays payable for ttl.
func NewOrder(vin VIN, ownerID string, p Product, now time.Time, ttl time.Duration) Order {
	return Order{
		VIN:               vin,
		OwnerID:           ownerID,
		Product:           p.Code,
		AmountFen:         p.PriceFen,
		Currency:          Currency,
		Days:              p.Days,
		DataBytesPerMonth: p.DataBytesPerMonth,
		Status:            OrderPending,
		CreatedAt:         now,
		ExpiresAt:         now.Add(ttl),
	}
}

// StatusAt is the status to show at now. A pending order past ExpiresAt
// is cancelled whether or not the job that cancels stale orders has run,
// so that what callers see never depends on the scheduler.
func (o Order) StatusAt(now time.Time) OrderStatus {
	if o.Status == OrderPending && !now.Before(o.ExpiresAt) {
		return OrderCancelled
	}
	return o.Status
}

// Paid reports whether money was taken for the order (whatever was
// refunded since).
func (o Order) Paid() bool {
	switch o.Status {
	case OrderPaid, OrderPartiallyRefunded, OrderRefunded:
		return true
	}
	return false
}

// RefundableFen is what may still be refunded: paid minus refunded.
func (o Order) RefundableFen() int64 {
	if !o.Paid() {
		return 0
	}
	return o.AmountFen - o.RefundedFen
}

// StatusAfterRefunds is the status of a paid order once refunded fen
// have been refunded in total.
func (o Order) StatusAfterRefunds(refunded int64) OrderStatus {
	switch {
	case refunded <= 0:
		return OrderPaid
	case refunded >= o.AmountFen:
		return OrderRefunded
	}
	return OrderPartiallyRefunded
}

// PaidPeriod is the period a paid order adds to the timeline. Its times
// are placed by Timeline.Layout.
func (o Order) PaidPeriod(paidAt time.Time, seq int) Period {
	return Period{
		VIN:               o.VIN,
		Source:            SourceOrder,
		OrderID:           o.ID,
		Product:           o.Product,
		Days:              o.Days,
		DataBytesPerMonth: o.DataBytesPerMonth,
		PaidAt:            paidAt,
		Seq:               seq,
	}
}

// ValidateIdempotencyKey checks an Idempotency-Key header: required
// (EIdempotencyKeyNeeded), then IdempotencyKeyField: 1 to 255 printable
// ASCII characters.
func ValidateIdempotencyKey(key string) error {
	if key == "" {
		return Errorf(EIdempotencyKeyNeeded, "the Idempotency-Key header is required")
	}
	return IdempotencyKeyField.Error(key)
}
