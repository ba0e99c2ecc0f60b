package billing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// PaymentStatus is what the payment provider reports.
type PaymentStatus string

const (
	PaymentSucceeded PaymentStatus = "succeeded"
	PaymentFailed    PaymentStatus = "failed"
)

// PaymentOutcome is what the service did with a notification; it is kept
// with the notification so that a repeat gets the same answer.
type PaymentOutcome string

const (
	OutcomeApplied        PaymentOutcome = "applied"         // the order became paid and got its period
	OutcomeFailed         PaymentOutcome = "failed"          // a failed payment: recorded, order still payable
	OutcomeAlreadyPaid    PaymentOutcome = "already_paid"    // another event had paid the order: nothing changed
	OutcomeAmountMismatch PaymentOutcome = "amount_mismatch" // refused; for the billing team to look at
)

// Payment is one notification from the payment provider.
type Payment struct {
	EventID       string
	OrderID       string
	Status        PaymentStatus
	AmountFen     int64
	Currency      string
	PaidAt        time.Time
	TransactionID string
}

// Validate checks the notification's fields: the text fields against
// their TextField rules (a currency that is well formed but not the
// order's is for Check to refuse, so that the mismatch is recorded).
func (p Payment) Validate() error {
	var fields []FieldError
	fields = EventIDField.AppendCheck(fields, p.EventID)
	fields = OrderIDField.AppendCheck(fields, p.OrderID)
	if p.Status != PaymentSucceeded && p.Status != PaymentFailed {
		fields = append(fields, FieldError{"status", "invalid"})
	}
	if p.AmountFen < 0 {
		fields = append(fields, FieldError{"amount_fen", "negative"})
	}
	fields = CurrencyField.AppendCheck(fields, p.Currency)
	if p.Status == PaymentSucceeded && p.TransactionID == "" {
		fields = append(fields, FieldError{"transaction_id", "required"})
	} else {
		fields = TransactionIDField.AppendCheck(fields, p.TransactionID)
	}
	if len(fields) > 0 {
		return Invalid("payment notification is not valid", fields...)
	}
	return nil
}

// Repeats reports whether p is a repeat of first, the notification
// recorded under the same event_id: a provider that retries sends the same
// event again, so the order, status, amount, currency and transaction id
// must all be first's. Anything else is EEventIDReused: answering it with
// first's outcome would acknowledge a notification that was never applied
// (another order left pending, a success read as the earlier failure).
// paid_at is not compared: it only places the period, and the first
// delivery's value stands.
func (p Payment) Repeats(first Payment) error {
	if p.OrderID != first.OrderID {
		return Errorf(EEventIDReused, "event_id %s was already used for order %s; a payment of order %s needs its own event_id",
			p.EventID, first.OrderID, p.OrderID)
	}
	if p.Status != first.Status || p.AmountFen != first.AmountFen || p.Currency != first.Currency || p.TransactionID != first.TransactionID {
		return Errorf(EEventIDReused, "event_id %s was already used for a notification of order %s with another status, amount, currency or transaction_id",
			p.EventID, p.OrderID)
	}
	return nil
}

// Check compares the payment with the order it pays: the amount and the
// currency must be the order's. Returns EAmountMismatch.
func (p Payment) Check(o Order) error {
	if p.AmountFen != o.AmountFen || p.Currency != o.Currency {
		return Errorf(EAmountMismatch, "payment of %d %s does not match order %s of %d %s",
			p.AmountFen, p.Currency, o.ID, o.AmountFen, o.Currency)
	}
	return nil
}

// EffectivePaidAt is the instant the period of a paid order counts from:
// the provider's paid_at, but never before the order was created nor after
// the notification arrived (now), so that a wrong clock at the provider can
// neither back-date coverage nor schedule it in the future.
func (p Payment) EffectivePaidAt(o Order, now time.Time) time.Time {
	t := p.PaidAt
	if t.IsZero() || t.After(now) {
		t = now
	}
	if t.Before(o.CreatedAt) {
		t = o.CreatedAt
	}
	return t
}

// SignPayment returns the Payment-Signature header value for body at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">".
func SignPayment(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(paymentMAC(secret, ts, body))
}

func paymentMAC(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifyPayment checks a Payment-Signature header over the raw body: it
// must carry t and at least one v1 that is the HMAC of "<t>.<body>" under
// secret (several v1 values are allowed so the provider can sign with the
// old and the new secret while it is rotated), and t must be within
// tolerance of now in either direction. Every failure is EBadSignature;
// the message does not say which part failed beyond what the caller
// already knows. The comparison is constant-time.
func VerifyPayment(header string, body, secret []byte, now time.Time, tolerance time.Duration) error {
	bad := func(msg string) error { return Errorf(EBadSignature, "Payment-Signature %s", msg) }
	if header == "" {
		return bad("header is missing")
	}
	if len(secret) == 0 {
		return bad("cannot be verified: no secret is configured")
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return bad("is malformed")
		}
		switch k {
		case "t":
			if ts != "" {
				return bad("is malformed")
			}
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return bad("is malformed")
			}
			sigs = append(sigs, sig)
		}
		// Other schemes (v0, future versions) are ignored, as Stripe does.
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if ts == "" || err != nil || len(sigs) == 0 {
		return bad("is malformed")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return bad("timestamp is outside the tolerance")
	}
	want := paymentMAC(secret, ts, body)
	ok := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			ok = true // keep comparing: the time taken does not depend on which matched
		}
	}
	if !ok {
		return bad("does not match")
	}
	return nil
}
