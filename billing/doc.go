// Package billing holds the domain of the data plan entitlement service:
// vehicles, their coverage timeline, products, orders, refunds, data quota,
// feature decisions and notices. It imports only the standard library.
//
// # The model
//
// A vehicle (identified by its VIN) is activated once, at hand-over. From
// that moment it owns a Timeline: a sequence of half-open periods
// [StartsAt, EndsAt) laid end to end. The first is the free trial, which
// starts at local midnight of the activation day and ends at local midnight
// of the same calendar date Trial.Months later, clamped to the month's last
// day (see AddMonthsClamped). Every paid order adds a period that starts at
// max(PaidAt, end of the period before it) and lasts its product's days. A
// refund cuts or removes a period; Layout lays every later period out again
// by the same rule, so coverage stays continuous.
//
// Access is derived from these timestamps at request time (Timeline.At),
// never from a status a background job wrote. The benefit belongs to the
// vehicle, not to its owner: an ownership transfer changes OwnerID and
// nothing else on the timeline.
//
// # Offline certificates
//
// IssueCertificate states a vehicle's coverage from now on (merged
// windows, each with its data allowance), the current cycle's usage and
// the vehicle's Epoch, for a car to decide features offline with
// Certificate.DecideAt: the same Decide rules, applied at any instant of
// the certificate's validity. Epoch rises whenever coverage shrinks.
//
// # Time
//
// Nothing in this package reads the clock. Every rule that depends on the
// present takes now as a parameter; calendar rules take the *time.Location
// they are computed in (the service's configured zone). Instants are UTC
// when they leave this package for the store.
//
// # Money
//
// Money is an int64 number of fen (1/100 CNY). Pro-rata arithmetic is done
// in integers and rounds down in the customer's disfavour by at most one fen.
//
// # Errors
//
// Every error a caller may act on is an *Error with a stable Code (see
// errors.go); the API maps codes to HTTP statuses in one table.
package billing
