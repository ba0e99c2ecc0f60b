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
