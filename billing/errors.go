package billing

import (
	"errors"
	"fmt"
)

// Error codes. They are part of the public API (the "code" member of a
// problem+json response); never rename one.
const (
	EInternal     = "internal"
	EInvalid      = "validation_failed" // a field has a bad value; see Error.Fields
	EInvalidVIN   = "invalid_vin"
	EMalformed    = "malformed_body" // not JSON, unknown field, wrong type, trailing data
	ETooLarge     = "body_too_large"
	EUnauthorized = "unauthorized"
	EForbidden    = "forbidden"
	ENotFound     = "not_found"

	EVehicleNotFound      = "vehicle_not_found"
	EAlreadyActivated     = "already_activated"
	ENotActivated         = "not_activated"
	EUnknownFeature       = "unknown_feature"
	EUnknownProduct       = "unknown_product"
	EOrderNotFound        = "order_not_found"
	EOrderNotPaid         = "order_not_paid"
	EIdempotencyKeyReused = "idempotency_key_reused"
	EIdempotencyKeyNeeded = "idempotency_key_required"
	EIdempotencyInFlight  = "idempotency_key_in_use"
	EBadSignature         = "bad_signature"
	EAmountMismatch       = "amount_mismatch"
	EEventIDReused        = "event_id_reused" // a payment event_id already used for another notification
	ERequestTimeout       = "request_timeout" // the request body did not arrive within the server's read timeout
	ENothingRefundable    = "nothing_refundable"
	ERefundExceedsBalance = "refund_exceeds_balance"
	EConflict             = "conflict"

	ECertificateUnavailable = "certificate_unavailable" // no signing key is configured
)

// FieldError names one field of a request and what is wrong with it.
type FieldError struct {
	Field string
	Code  string
}

// Error is the one error type callers act on. Code is stable and machine
// readable; Message is for people and may change.
type Error struct {
	Code    string
	Message string
	Fields  []FieldError
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns a validation error naming the offending fields.
func Invalid(message string, fields ...FieldError) *Error {
	return &Error{Code: EInvalid, Message: message, Fields: fields}
}

// ErrorCode returns the code of the first *Error in err's chain, or
// EInternal when there is none (an unexpected error).
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return EInternal
}

// ErrorMessage returns the human message of the first *Error in err's
// chain, or "internal error" so that unexpected causes are never shown.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// IsCode reports whether err carries the given code.
func IsCode(err error, code string) bool { return ErrorCode(err) == code }
