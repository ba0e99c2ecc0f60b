package billing

import "time"

// NoticeKind names a notice; the values are public API (the webhook "type").
type NoticeKind string

const (
	NoticeExpiring       NoticeKind = "coverage.expiring"
	NoticeExpired        NoticeKind = "coverage.expired"
	NoticeQuotaThreshold NoticeKind = "quota.threshold"
	NoticeOrderPaid      NoticeKind = "order.paid"
	NoticeRefundIssued   NoticeKind = "refund.issued"
)

// NoticeStatus is a notice's delivery state.
type NoticeStatus string

const (
	NoticePending    NoticeStatus = "pending"
	NoticeSent       NoticeStatus = "sent"
	NoticeSuperseded NoticeStatus = "superseded"
	NoticeDead       NoticeStatus = "dead"
)

// Notice is an outbox entry: created in the transaction of the change that
// caused it, delivered later (at least once) with a stable ID.
type Notice struct {
	ID            string
	VIN           VIN
	OwnerID       string // the owner when the notice was created
	Kind          NoticeKind
	DedupeKey     string         // unique: a notice is created once per key
	Stage         int            // days before CoveredUntil, for coverage.expiring; 0 otherwise
	CoveredUntil  *time.Time     // the coverage end a coverage notice is about; nil for other kinds
	Data          map[string]any // the kind's fields; vin and owner_id are added on delivery
	Status        NoticeStatus
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	CreatedAt     time.Time
	SentAt        *time.Time
}

// Payload is the notice's "data" as delivered and shown: its kind's fields
// with the vin and the owner_id it was created for.
func (n Notice) Payload() map[string]any {
	data := make(map[string]any, len(n.Data)+2)
	for k, v := range n.Data {
		data[k] = v
	}
	data["vin"], data["owner_id"] = string(n.VIN), n.OwnerID
	return data
}

// OrderPaidNotice is the order.paid notice of o, paid at paidAt, whose
// period p was added, leaving the vehicle covered until coveredUntil (zero
// if not covered now). It is addressed to the owner who placed the order:
// the money was theirs, also when the car has changed hands since.
func OrderPaidNotice(o Order, p Period, paidAt, coveredUntil time.Time, loc *time.Location) Notice {
	var until any
	if !coveredUntil.IsZero() {
		until = Stamp(coveredUntil, loc)
	}
	return Notice{
		VIN: o.VIN, OwnerID: o.OwnerID, Kind: NoticeOrderPaid,
		DedupeKey: string(NoticeOrderPaid) + ":" + o.ID,
		Data: map[string]any{
			"order_id": o.ID, "amount_fen": o.AmountFen, "currency": o.Currency, "product": o.Product,
			"days": o.Days, "period_id": p.ID, "paid_at": Stamp(paidAt, loc),
			"starts_at": Stamp(p.StartsAt, loc), "ends_at": Stamp(p.EndsAt, loc),
			"transaction_id": o.TransactionID, "covered_until": until,
		},
	}
}

// RefundIssuedNotice is the refund.issued notice of r, a refund of o that
// brings the order's refunded total to refundedFen. Like the order's
// notice it is addressed to the owner who placed the order.
func RefundIssuedNotice(o Order, r Refund, refundedFen int64, loc *time.Location) Notice {
	return Notice{
		VIN: o.VIN, OwnerID: o.OwnerID, Kind: NoticeRefundIssued,
		DedupeKey: string(NoticeRefundIssued) + ":" + r.ID,
		Data: map[string]any{
			"refund_id": r.ID, "order_id": o.ID, "transaction_id": o.TransactionID, "amount_fen": r.AmountFen,
			"currency": r.Currency, "reason": string(r.Reason), "end_access": r.EndAccess,
			"order_refunded_fen": refundedFen, "order_amount_fen": o.AmountFen,
			"created_at": Stamp(r.CreatedAt, loc),
		},
	}
}
