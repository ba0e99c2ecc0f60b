package billing

import (
	"testing"
	"time"
)

func TestPayOrder(t *testing.T) {
	loc, _ := time.LoadLocation("Asia/Shanghai")
	created := time.Date(2026, 6, 1, 2, 0, 0, 0, time.UTC)
	now := created.Add(10 * time.Minute)
	trialEnd := time.Date(2026, 6, 20, 16, 0, 0, 0, time.UTC)
	tl := NewTimeline([]Period{{ID: "per_trial", VIN: "V1", Source: SourceTrial, StartsAt: created.AddDate(-1, 0, 0), EndsAt: trialEnd}})
	o := Order{ID: "ord_1", VIN: "V1", OwnerID: "payer", AmountFen: 1990, Currency: Currency, Days: 31, Product: "monthly", Status: OrderPending, CreatedAt: created}
	paid := o
	paid.Status = OrderPaid
	pay := Payment{EventID: "e1", OrderID: "ord_1", Status: PaymentSucceeded, AmountFen: 1990, Currency: Currency, PaidAt: now.Add(-time.Minute), TransactionID: "tx1"}
	failed, wrong := pay, pay
	failed.Status = PaymentFailed
	wrong.AmountFen = 1

	for _, tc := range []struct {
		name  string
		o     Order
		p     Payment
		want  PaymentOutcome
		error string
	}{
		{"applied", o, pay, OutcomeApplied, ""},
		{"failed", o, failed, OutcomeFailed, ""},
		{"already paid", paid, pay, OutcomeAlreadyPaid, ""},
		{"wrong amount", o, wrong, OutcomeAmountMismatch, EAmountMismatch},
		{"wrong amount of a paid order", paid, wrong, OutcomeAmountMismatch, EAmountMismatch},
	} {
		plan := PayOrder(tc.o, tc.p, tl, "per_new", loc, now)
		if plan.Outcome != tc.want || (tc.error == "") != (plan.Refused == nil) || (tc.error != "" && !IsCode(plan.Refused, tc.error)) {
			t.Errorf("%s: PayOrder() = %s, %v; want %s, %q", tc.name, plan.Outcome, plan.Refused, tc.want, tc.error)
		}
		if tc.want != OutcomeApplied && (plan.Period.ID != "" || plan.Notice.Kind != "") {
			t.Errorf("%s: a plan that applies nothing has a period %q or a notice %q", tc.name, plan.Period.ID, plan.Notice.Kind)
		}
	}

	plan := PayOrder(o, pay, tl, "per_new", loc, now)
	wantEnd := PaidEnd(trialEnd, 31, loc)
	if p := plan.Period; p.ID != "per_new" || p.Seq != 1 || !p.StartsAt.Equal(trialEnd) || !p.EndsAt.Equal(wantEnd) || !p.PaidAt.Equal(pay.PaidAt) {
		t.Errorf("period = %+v; want per_new, seq 1, from the trial's end %s to %s, paid at %s", p, trialEnd, wantEnd, pay.PaidAt)
	}
	if plan.Order.Status != OrderPaid || plan.Order.PaidAt == nil || !plan.Order.PaidAt.Equal(pay.PaidAt) || plan.Order.TransactionID != "tx1" {
		t.Errorf("order = %+v; want paid at %s by tx1", plan.Order, pay.PaidAt)
	}
	if !plan.CoverageEnd.Equal(wantEnd) || len(plan.Moved) != 0 {
		t.Errorf("coverage end %s, moved %v; want %s and none", plan.CoverageEnd, plan.Moved, wantEnd)
	}
	n := plan.Notice
	if n.Kind != NoticeOrderPaid || n.DedupeKey != "order.paid:ord_1" || n.OwnerID != "payer" || n.VIN != "V1" ||
		n.Data["covered_until"] != Stamp(wantEnd, loc) || n.Data["period_id"] != "per_new" {
		t.Errorf("notice = %+v", n)
	}
	if len(tl.Periods) != 1 {
		t.Errorf("PayOrder changed the caller's timeline: %d periods", len(tl.Periods))
	}
}

func TestRemind(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	refunded := now.Add(-time.Hour)
	for _, tc := range []struct {
		name    string
		periods []Period
		want    bool
	}{
		{"covered", []Period{{StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour)}}, true},
		{"lapsed, resumes later", []Period{{StartsAt: now.Add(-2 * time.Hour), EndsAt: now.Add(-time.Hour)}, {Seq: 1, StartsAt: now.Add(time.Minute), EndsAt: now.Add(time.Hour)}}, false},
		{"refunded", []Period{{StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour), RefundedAt: &refunded}}, false},
		{"no periods", nil, false},
	} {
		if got := Remind(NewTimeline(tc.periods), now); got != tc.want {
			t.Errorf("%s: Remind() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestMonthKeyMatchesFormat(t *testing.T) {
	for _, tm := range []time.Time{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(999, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC), time.Date(-5, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(12345, 3, 1, 0, 0, 0, 0, time.UTC)} {
		if got, want := monthKey(tm), tm.Format("2006-01"); got != want {
			t.Errorf("monthKey(%v) = %q, want %q", tm, got, want)
		}
	}
}
