package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"entitlements/billing"
	"entitlements/store"
	"entitlements/store/storetest"
)

// TestCoveredSinceFollowsTheTimeline: every timeline write keeps
// vehicles.covered_since equal to billing's CoveredSince of the stored
// timeline, which the remind job trusts instead of reading periods:
// through an activation, a purchase that extends coverage, one after a
// lapse (a gap), a refund that lays the later periods out again, and an
// activation ahead of the clock (a stretch not begun).
func TestCoveredSinceFollowsTheTimeline(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		vin := billing.VIN(billing.FixCheckDigit("LSVCS4E10P2000001"))
		t0 := time.Date(2026, 1, 31, 23, 30, 0, 0, shanghai) // a month end, late in the local day
		check := func(step string, want time.Time) {
			t.Helper()
			tl, err := db.Timeline(ctx, vin)
			if err != nil {
				t.Fatal(err)
			}
			if got := tl.CoveredSince(); !got.Equal(want) {
				t.Fatalf("%s: the timeline's CoveredSince = %s, want %s (the test's own expectation is off)", step, got, want)
			}
			var stored sql.NullTime
			if err := storetest.Query(db, &stored, `SELECT covered_since FROM vehicles WHERE vin = ?`, string(vin)); err != nil {
				t.Fatal(err)
			}
			if !stored.Valid || !stored.Time.Equal(want) {
				t.Fatalf("%s: vehicles.covered_since = %v, want %s", step, stored, want)
			}
		}
		n := 0
		pay := func(paidAt, now time.Time) string {
			t.Helper()
			n++
			return payNewOrder(t, db, vin, "o1", fmt.Sprint(n), paidAt, now)
		}
		refund := func(orderID string, now time.Time) {
			t.Helper()
			n++
			req := billing.RefundRequest{Reason: billing.ReasonRequestedByCustomer, EndAccess: true}
			_, err := db.RefundOrder(ctx, orderID, req, "billing-1", billing.IdempotencyKey{Scope: "billing", Key: fmt.Sprint("r", n), RequestHash: "h"},
				func(r billing.Refund) (int, []byte, error) { return 201, []byte(r.ID), nil }, shanghai, now)
			if err != nil {
				t.Fatal(err)
			}
		}

		if _, _, err := db.Activate(ctx, vin, billing.Activation{ActivatedAt: t0, OwnerID: "o1"}, billing.TrialTerms{Months: 1}, shanghai, t0); err != nil {
			t.Fatal(err)
		}
		startOf := func(match func(billing.Period) bool) time.Time {
			t.Helper()
			tl, err := db.Timeline(ctx, vin)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tl.Periods {
				if match(p) {
					return p.StartsAt
				}
			}
			t.Fatal("no such period")
			return time.Time{}
		}
		trial := startOf(func(p billing.Period) bool { return p.Source == billing.SourceTrial })
		ofOrder := func(id string) time.Time {
			return startOf(func(p billing.Period) bool { return p.OrderID == id })
		}
		check("activated", trial)
		trialEnd := billing.AddMonthsClamped(t0, 1, shanghai)

		pay(t0.Add(24*time.Hour), t0.Add(24*time.Hour))
		check("a purchase while covered extends the stretch", trial)

		lapsed := trialEnd.AddDate(0, 0, 31+10)
		second := pay(lapsed, lapsed)
		if !ofOrder(second).Equal(lapsed) {
			t.Fatalf("the purchase after the lapse starts %s, want when it was paid, %s", ofOrder(second), lapsed)
		}
		check("a purchase after a lapse starts a stretch", lapsed)

		pay(lapsed.Add(time.Hour), lapsed.Add(time.Hour))
		check("a purchase in the new stretch keeps its start", lapsed)

		refund(second, lapsed.Add(2*time.Hour))
		tl, err := db.Timeline(ctx, vin)
		if err != nil {
			t.Fatal(err)
		}
		if since := tl.CoveredSince(); !since.After(lapsed) {
			t.Fatalf("after refunding the first purchase of the stretch, CoveredSince = %s; want the next one's start, after %s", since, lapsed)
		}
		check("refunding the first of a stretch lays the rest out again", tl.CoveredSince())

		// Activated at 00:30 the next local day, at 23:30: the trial, and
		// the stretch, begin at that day's start, half an hour from now.
		vin = billing.VIN(billing.FixCheckDigit("LSVCS4E10P2000002"))
		if _, _, err := db.Activate(ctx, vin, billing.Activation{ActivatedAt: t0.Add(time.Hour), OwnerID: "o2"}, billing.TrialTerms{Months: 12}, shanghai, t0); err != nil {
			t.Fatal(err)
		}
		ahead := startOf(func(p billing.Period) bool { return p.Source == billing.SourceTrial })
		if !ahead.After(t0) {
			t.Fatalf("the trial of a car activated ahead of the clock starts %s, not after now %s", ahead, t0)
		}
		check("activated ahead of the clock", ahead)
	})
}

// payNewOrder creates a monthly order of vin for owner at now and applies
// its payment, stamped paidAt, at now; n tells the order's idempotency key
// and the payment's event and transaction apart. It returns the order's
// id.
func payNewOrder(t *testing.T, db *store.DB, vin billing.VIN, owner, n string, paidAt, now time.Time) string {
	t.Helper()
	ctx := context.Background()
	o := billing.NewOrder(vin, owner, benchMonthly, now, time.Hour)
	res, err := db.CreateOrder(ctx, o, billing.IdempotencyKey{Scope: "owner:" + owner, Key: "k" + n, RequestHash: "h"}, renderOrder)
	if err != nil {
		t.Fatal(err)
	}
	o.ID = string(res.Body)
	p := billing.Payment{EventID: "evt-" + n, OrderID: o.ID, Status: billing.PaymentSucceeded,
		AmountFen: o.AmountFen, Currency: o.Currency, PaidAt: paidAt, TransactionID: "tx-" + n}
	if _, err := db.ApplyPayment(ctx, p, shanghai, now); err != nil {
		t.Fatal(err)
	}
	return o.ID
}
