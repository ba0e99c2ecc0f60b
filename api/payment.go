package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"entitlements/billing"

	"github.com/gin-gonic/gin"
)

type paymentRequest struct {
	EventID       string                `json:"event_id"`
	OrderID       string                `json:"order_id"`
	Status        billing.PaymentStatus `json:"status"`
	AmountFen     *int64                `json:"amount_fen"`
	Currency      string                `json:"currency"`
	PaidAt        *string               `json:"paid_at"`
	TransactionID string                `json:"transaction_id"`
}

// paymentNotification handles POST /v1/payments/notifications. There is
// no bearer token: the Payment-Signature over the raw body is verified
// before the body is parsed, so nothing unauthenticated is interpreted.
// A missing or malformed header, or one whose t is out of tolerance, is
// refused before the body is read, so that unsigned requests cost no
// memory for their bodies.
// Answers 200 with the order (also for a failed payment and for repeats),
// 401 bad_signature, 404 order_not_found, 422 amount_mismatch.
func (s *Server) paymentNotification(c *gin.Context) {
	if err := billing.CheckPaymentHeader(c.GetHeader("Payment-Signature"), s.paymentSecret, s.now(), s.paymentTolerance); err != nil {
		s.fail(c, err)
		return
	}
	body, err := readBody(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	now := s.now()
	if err := billing.VerifyPayment(c.GetHeader("Payment-Signature"), body, s.paymentSecret, now, s.paymentTolerance); err != nil {
		s.fail(c, err)
		return
	}
	p, err := decodePayment(body)
	if err != nil {
		s.fail(c, err)
		return
	}
	// Verified by its signature, the notification acts as the provider.
	ctx := billing.WithActor(c.Request.Context(), billing.Actor{Role: billing.ActorProvider, RequestID: c.GetString(ctxRequestID)})
	o, err := s.store.ApplyPayment(ctx, p, s.loc, now)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, s.orderView(o, now))
}

// decodePayment parses a verified notification. Unlike requests from our
// own clients, fields we do not know are ignored: the provider adds fields
// to its payloads, and refusing a signed payment over that would leave a
// paid order unpaid. Trailing data and wrong types are still refused.
func decodePayment(body []byte) (billing.Payment, error) {
	var req paymentRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return billing.Payment{}, malformed(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return billing.Payment{}, billing.Errorf(billing.EMalformed, "request body has data after the JSON value")
	}
	p := billing.Payment{EventID: req.EventID, OrderID: req.OrderID, Status: req.Status,
		Currency: req.Currency, TransactionID: req.TransactionID}
	var fields []billing.FieldError
	if req.AmountFen == nil {
		fields = append(fields, billing.FieldError{Field: "amount_fen", Code: "required"})
	} else {
		p.AmountFen = *req.AmountFen
	}
	if req.PaidAt != nil {
		t, err := time.Parse(time.RFC3339Nano, *req.PaidAt)
		if err != nil {
			fields = append(fields, billing.FieldError{Field: "paid_at", Code: "invalid_time"})
		}
		p.PaidAt = t
	}
	if err := p.Validate(); err != nil || len(fields) > 0 {
		return p, mergeInvalid("payment notification is not valid", nil, appendFields(err, fields))
	}
	return p, nil
}

// appendFields adds fields to a validation error (or makes one).
func appendFields(err error, fields []billing.FieldError) error {
	if err == nil {
		return billing.Invalid("payment notification is not valid", fields...)
	}
	if be := (*billing.Error)(nil); errors.As(err, &be) {
		be.Fields = append(be.Fields, fields...)
	}
	return err
}
