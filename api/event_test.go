package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestEventIDReused: a payment notification whose event_id was used before
// for another order, or for the same order with another status, amount,
// currency or transaction_id, is 409 event_id_reused and records nothing;
// an exact repeat (paid_at aside) gets the first answer.
func TestEventIDReused(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2600001")
		h.activate(v, "alice", time.Date(2025, 1, 10, 9, 0, 0, 0, shanghai))
		a := h.createOrder(v, "alice", "monthly")
		b := h.createOrder(v, "alice", "yearly")
		first := succeeded(a, "evt-1", h.clock.Now())
		if res := h.notify(first); res.Code != http.StatusOK {
			t.Fatalf("payment of A = %d %s, want 200", res.Code, res.Body)
		}
		failedFirst := succeeded(b, "evt-2", h.clock.Now())
		failedFirst.Status, failedFirst.TransactionID = "failed", ""
		if res := h.notify(failedFirst); res.Code != http.StatusOK {
			t.Fatalf("failed payment of B = %d %s, want 200", res.Code, res.Body)
		}
		edit := func(p payment, f func(*payment)) payment { f(&p); return p }
		tests := []struct {
			name string
			p    payment
		}{
			{"another order", edit(succeeded(b, "evt-1", h.clock.Now()), func(p *payment) { p.TransactionID = first.TransactionID })},
			{"another status", edit(first, func(p *payment) { p.Status, p.TransactionID = "failed", "" })},
			{"another amount", edit(first, func(p *payment) { p.AmountFen++ })},
			{"another currency", edit(first, func(p *payment) { p.Currency = "USD" })},
			{"another transaction", edit(first, func(p *payment) { p.TransactionID = "tx-other" })},
			{"a success after the failure", edit(succeeded(b, "evt-2", h.clock.Now()), func(*payment) {})},
		}
		for _, tc := range tests {
			res := h.notify(tc.p)
			wantProblem(t, tc.name, res, http.StatusConflict, "event_id_reused")
		}
		// Exact repeats, paid_at aside, get the first answers.
		repeat := edit(first, func(p *payment) { p.PaidAt = h.clock.Now().Add(-time.Minute).Format(time.RFC3339) })
		if res := h.notify(repeat); res.Code != http.StatusOK {
			t.Errorf("repeat of evt-1 = %d %s, want 200", res.Code, res.Body)
		}
		var o orderBody
		if res := h.notify(failedFirst); res.Code != http.StatusOK {
			t.Errorf("repeat of evt-2 = %d %s, want 200", res.Code, res.Body)
		} else if res.decode(t, &o); o.ID != b.ID || o.Status != "pending" {
			t.Errorf("repeat of evt-2 = order %s %s, want %s pending", o.ID, o.Status, b.ID)
		}
		// B is still pending with only its failed payment recorded; A is
		// paid once.
		if got := h.orderOf(b.ID); got.Status != "pending" {
			t.Errorf("order B is %s, want pending", got.Status)
		}
		for id, want := range map[string]int{a.ID: 1, b.ID: 1} {
			events, err := h.db.PaymentEvents(context.Background(), id)
			if err != nil || len(events) != want {
				t.Errorf("payment events of %s = %+v, %v; want %d", id, events, err, want)
			}
		}
		if n := len(paidPeriods(h.entitlementOf(v))); n != 1 {
			t.Errorf("paid periods = %d, want 1", n)
		}
	})
}
