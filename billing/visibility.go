package billing

import "context"

// Who may see which record (SPEC section 3). The rule is written here once;
// the API applies it to every VIN- and order-scoped endpoint, and the store
// applies the queries it builds.
//
//   - Staff (billing, ops) see every vehicle, order and notice, and may
//     learn that a VIN is not activated.
//   - A vehicle sees itself, and may learn that it is not activated yet.
//   - An owner sees the vehicles they own now, the orders they placed
//     (whichever car they were for), the orders of their car that they
//     placed, and the notices of their car addressed to them (NoticeQuery).
//   - Anything else a vehicle or owner asks for is answered exactly like a
//     record that does not exist: VehicleNotFound or OrderNotFound, whether
//     the VIN is another's, was never activated, or belongs to no car at
//     all.

// Audience is the kind of caller a Viewer is.
type Audience int

const (
	AudienceNone    Audience = iota // sees no vehicle-scoped record (carrier)
	AudienceVehicle                 // Subject is the car's VIN
	AudienceOwner                   // Subject is an owner_id
	AudienceStaff                   // billing and ops: sees everything
)

// Viewer is the caller a visibility decision is made for.
type Viewer struct {
	Audience Audience
	Subject  string
}

// MayAsk reports whether the viewer may have vin looked up at all: a
// vehicle asks only about itself, and is answered VehicleNotFound for any
// other VIN before anything is read.
func (w Viewer) MayAsk(vin VIN) bool {
	switch w.Audience {
	case AudienceStaff, AudienceOwner:
		return true
	case AudienceVehicle:
		return w.Subject == string(vin)
	}
	return false
}

// MaySeeVehicle reports whether the viewer may see the activated vehicle
// vin whose current owner is owner.
func (w Viewer) MaySeeVehicle(vin VIN, owner string) bool {
	switch w.Audience {
	case AudienceStaff:
		return true
	case AudienceVehicle:
		return w.Subject == string(vin)
	case AudienceOwner:
		return w.Subject == owner
	}
	return false
}

// MayLearnNotActivated reports whether the viewer may be told that vin has
// no vehicle (is not activated) rather than VehicleNotFound: staff, and the
// car itself. An owner cannot own a car that is not activated, so for an
// owner it is indistinguishable from another's car.
func (w Viewer) MayLearnNotActivated(vin VIN) bool {
	switch w.Audience {
	case AudienceStaff:
		return true
	case AudienceVehicle:
		return w.Subject == string(vin)
	}
	return false
}

// MaySeeOrder reports whether the viewer may read o by its ID: staff
// always, an owner the orders they placed (also for a car sold since: the
// money was theirs), a vehicle never.
func (w Viewer) MaySeeOrder(o Order) bool {
	switch w.Audience {
	case AudienceStaff:
		return true
	case AudienceOwner:
		return w.Subject == o.OwnerID
	}
	return false
}

// OrderQuery narrows q to the orders the viewer may list for a vehicle it
// may see: an owner lists only the orders they placed.
func (w Viewer) OrderQuery(q OrderQuery) OrderQuery {
	if w.Audience != AudienceStaff {
		q.OwnerID = w.Subject
	}
	return q
}

// NoticeQuery selects the notices of vin the viewer may list, newest
// first, at most limit. A notice is addressed to the owner_id recorded on
// it when it was created: for a coverage notice the car's owner at that
// moment, for a money notice (order.paid, refund.issued) the owner who
// placed the order (see OrderPaidNotice, RefundIssuedNotice). An owner
// lists only the notices addressed to them; staff list all of them.
func (w Viewer) NoticeQuery(vin VIN, limit int) NoticeQuery {
	q := NoticeQuery{VIN: vin, Limit: limit}
	if w.Audience != AudienceStaff {
		q.OwnerID = w.Subject
	}
	return q
}

// NoticeQuery selects a vehicle's notices, newest first.
type NoticeQuery struct {
	VIN     VIN
	OwnerID string // if set, only the notices addressed to this owner
	Limit   int    // at least 1
}

// VehicleNotFound is the answer to a VIN the caller may not see: the same
// code and text whether the car is another's, not activated, or unknown.
func VehicleNotFound(vin VIN) *Error {
	return Errorf(EVehicleNotFound, "vehicle %s not found", vin)
}

// OrderNotFound is the answer to an order the caller may not see: the same
// code and text whether the order is another's or does not exist.
func OrderNotFound(id string) *Error {
	return Errorf(EOrderNotFound, "order %s not found", id)
}

type ownershipKey struct{}

// WithOwnershipCheck marks ctx as a request whose answer turns on who owns
// the vehicle at this moment: an owner's. A store whose cached reads can
// lag a write acknowledged by another replica reads such a request's
// vehicle from the database, so that once a transfer is acknowledged the
// former owner no longer sees the car and the new owner does, on every
// replica.
func WithOwnershipCheck(ctx context.Context) context.Context {
	return context.WithValue(ctx, ownershipKey{}, true)
}

// OwnershipChecked reports whether ctx is marked by WithOwnershipCheck.
func OwnershipChecked(ctx context.Context) bool {
	checked, _ := ctx.Value(ownershipKey{}).(bool)
	return checked
}
