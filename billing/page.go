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
