package billing

import "time"

// Cursor is a position in a list ordered by (created_at, id); a page
// continues strictly after (or before, newest first) it.
type Cursor struct {
	At time.Time
	ID string
}

// OrderQuery selects a vehicle's orders, newest first.
type OrderQuery struct {
	VIN     VIN
	OwnerID string  // if set, only the orders this owner placed
	After   *Cursor // continue after this order (exclusive)
	Limit   int     // page size, at least 1
}

// RefundQuery selects refunds, oldest first: created in [From, To) (a zero
// bound is open), of one vehicle, one reason and one operator if set.
type RefundQuery struct {
	From, To time.Time
	VIN      VIN
	Reason   RefundReason
	Operator string // created_by: the operator who issued it
	After    *Cursor
	Limit    int
}
