package billing

import (
	"context"
	"time"
)

// The audit trail. Every change a person or a system makes to vehicles,
// orders, payments, refunds, usage and notices is recorded as an
// AuditEntry in the same transaction as the change: the entry exists if
// and only if the change does. Entries are never updated or deleted.
//
// Who acted travels in the context (WithActor): the API sets the token's
// role and subject once a request is authenticated, a scheduler job sets
// system:<job>, the payment notification handler sets provider. The store
// stamps every entry of a write with the actor of the context the write
// was given.

// Actor is who caused a change, and the request that carried it.
type Actor struct {
	// Role is a token's role (billing, ops, owner, carrier, vehicle),
	// ActorSystem for the service's own jobs, or ActorProvider for the
	// payment provider.
	Role string
	// Subject is the token's sub, or the job's name for ActorSystem.
	Subject string
	// RequestID is the HTTP request's id (X-Request-Id), "" for jobs.
	RequestID string
}

// Roles of actors that are not bearer tokens.
const (
	ActorSystem   = "system"
	ActorProvider = "provider"
)

// SystemActor is the actor of a scheduler job or of start-up.
func SystemActor(job string) Actor { return Actor{Role: ActorSystem, Subject: job} }

// String is the actor as entries store it and the audit filter takes it:
// "role:subject", or the role alone when there is no subject
// ("provider"). The zero Actor is "unknown".
func (a Actor) String() string {
	switch {
	case a.Role == "":
		return "unknown"
	case a.Subject == "":
		return a.Role
	}
	return a.Role + ":" + a.Subject
}

type actorKey struct{}

// WithActor returns ctx carrying a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor ctx carries, and whether it carries one.
func ActorFrom(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}

// AuditAction names what an entry records. Part of the public API (the
// action filter and the console use them): never rename one.
type AuditAction string

const (
	AuditVehicleActivated    AuditAction = "vehicle.activated"
	AuditOwnerTransferred    AuditAction = "vehicle.owner_transferred"
	AuditOrderCreated        AuditAction = "order.created"
	AuditOrderCancelledStale AuditAction = "order.cancelled_stale"
	AuditPaymentApplied      AuditAction = "payment.applied"
	AuditPaymentFailed       AuditAction = "payment.failed"
	AuditPaymentMismatch     AuditAction = "payment.amount_mismatch"
	AuditPaymentAlreadyPaid  AuditAction = "payment.already_paid"
	AuditRefundIssued        AuditAction = "refund.issued"
	AuditRefundRefused       AuditAction = "refund.refused"
	AuditUsageAccepted       AuditAction = "usage.accepted"
	AuditNoticeSuperseded    AuditAction = "notice.superseded"
	AuditNoticeDead          AuditAction = "notice.dead"
	AuditConfigLoaded        AuditAction = "config.loaded"
)

// AuditActions lists every action, for validation and documentation.
var AuditActions = []AuditAction{
	AuditVehicleActivated, AuditOwnerTransferred, AuditOrderCreated, AuditOrderCancelledStale,
	AuditPaymentApplied, AuditPaymentFailed, AuditPaymentMismatch, AuditPaymentAlreadyPaid,
	AuditRefundIssued, AuditRefundRefused, AuditUsageAccepted,
	AuditNoticeSuperseded, AuditNoticeDead, AuditConfigLoaded,
}

// Fields is a compact set of field values, the before or after of a
// change: only the fields that changed (or, for a new thing, the ones that
// say what it is). Values are strings, integers, booleans, lists of
// strings, or time.Time; a field whose name ends in "_at" or "_until" holds
// an instant.
type Fields map[string]any

// AuditEntry is one recorded change. ID, At, Actor and RequestID are set
// by the store when the entry is written.
type AuditEntry struct {
	ID        string
	At        time.Time
	Actor     string
	RequestID string
	Action    AuditAction
	VIN       VIN
	OrderID   string
	RefundID  string
	Before    Fields
	After     Fields
}

// AuditQuery selects entries, newest first: created in [From, To) (a zero
// bound is open) and matching every filter that is set. Actor matches the
// whole actor string ("billing:alice", "system:expire", "provider").
type AuditQuery struct {
	From, To time.Time
	VIN      VIN
	OrderID  string
	Actor    string
	Action   AuditAction
	Before   *Cursor // continue with the entries older than this one
	Limit    int
}

// The text rules of the audit filters: an actor is a role, a colon and a
// token's subject (SubjectField, which may hold spaces); an order id as
// OrderIDField, but optional.
var (
	AuditActorField   = TextField{Name: "actor", Kind: Line, Max: 140}
	AuditOrderIDField = TextField{Name: "order_id", Kind: Identifier, Max: 128}
)

// Valid reports whether a is a known action.
func (a AuditAction) Valid() bool {
	for _, x := range AuditActions {
		if x == a {
			return true
		}
	}
	return false
}
