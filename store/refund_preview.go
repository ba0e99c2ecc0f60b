package store

import (
	"context"
	"errors"
	"time"

	"entitlements/billing"
)

// refundPreview is what a refund would do: the refund RefundOrder would
// append (its ID is not kept) and the vehicle's timeline after it.
type refundPreview struct {
	refund   billing.Refund
	timeline billing.Timeline
}

// previewKey marks a context whose RefundOrder is a dry run.
type previewKey struct{}

// previewResult carries a dry run's result out of the transaction it
// rolls back: RefundOrder's callback returns it as its error.
type previewResult struct{ p refundPreview }

func (*previewResult) Error() string { return "refund preview: rolled back" }

// previewStop is called by RefundOrder once every change of the refund is
// made inside its transaction. For a dry run it returns the error that
// rolls the transaction back and carries r and tl out; otherwise nil.
func previewStop(ctx context.Context, r billing.Refund, tl billing.Timeline) error {
	if !isPreview(ctx) {
		return nil
	}
	return &previewResult{p: refundPreview{refund: r, timeline: tl}}
}

// isPreview reports whether ctx is a dry run's (PreviewRefund).
func isPreview(ctx context.Context) bool {
	_, ok := ctx.Value(previewKey{}).(bool)
	return ok
}

// PreviewRefund answers what RefundOrder would do: the refund it would
// append (its ID is not kept) and the vehicle's timeline after it, for
// the same arguments at now. It writes nothing: it runs RefundOrder
// itself, with the same rules, locks and statements, and rolls its
// transaction back at the end.
// The refusals are RefundOrder's (EOrderNotFound, EOrderNotPaid,
// ENothingRefundable, ERefundExceedsBalance).
func (db *DB) PreviewRefund(ctx context.Context, orderID string, req billing.RefundRequest, operator string,
	loc *time.Location, now time.Time) (billing.Refund, billing.Timeline, error) {
	// The transaction claims this key and never commits it.
	k := billing.IdempotencyKey{Scope: "refund-preview", Key: newID("dry", now), RequestHash: "-"}
	never := func(billing.Refund) (int, []byte, error) {
		return 0, nil, errors.New("refund preview reached the response")
	}
	_, err := db.RefundOrder(context.WithValue(ctx, previewKey{}, true), orderID, req, operator, k, never, loc, now)
	var res *previewResult
	if errors.As(err, &res) {
		return res.p.refund, res.p.timeline, nil
	}
	if err == nil {
		err = errors.New("refund preview: the transaction was not rolled back")
	}
	return billing.Refund{}, billing.Timeline{}, err
}
