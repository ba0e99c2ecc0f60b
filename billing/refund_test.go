package billing

import (
	"math"
	"testing"
	"time"
)

var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return loc
}()

func fen(n int64) *int64 { return &n }

func TestPlanRefund(t *testing.T) {
	start := time.Date(2026, 7, 1, 0, 0, 0, 0, shanghai)
	monthly := Period{OrderID: "o1", Source: SourceOrder, StartsAt: start, EndsAt: start.AddDate(0, 0, 31)}
	length := monthly.EndsAt.Sub(monthly.StartsAt)
	paid := Order{ID: "o1", AmountFen: 1990, Status: OrderPaid}
	odd := Order{ID: "o1", AmountFen: 1999, Status: OrderPaid}
	goodwilled := Order{ID: "o1", AmountFen: 1990, Status: OrderPartiallyRefunded, RefundedFen: 1500}
	refundedAt := start.Add(time.Hour)
	cut := monthly
	cut.RefundedAt, cut.EndsAt = &refundedAt, refundedAt
	tests := []struct {
		name   string
		order  Order
		period *Period
		req    RefundRequest
		now    time.Time
		want   RefundPlan
		code   string
	}{
		{"not started: full, removed", paid, &monthly, RefundRequest{}, start.Add(-time.Hour), RefundPlan{1990, PeriodRemoved, true}, ""},
		{"at the first instant: full, cut", paid, &monthly, RefundRequest{}, start, RefundPlan{1990, PeriodCut, true}, ""},
		{"half used: half", paid, &monthly, RefundRequest{}, start.Add(length / 2), RefundPlan{995, PeriodCut, true}, ""},
		{"half used, odd price: half rounded down", odd, &monthly, RefundRequest{}, start.Add(length / 2), RefundPlan{999, PeriodCut, true}, ""},
		{"one second left: rounds down to nothing", paid, &monthly, RefundRequest{}, monthly.EndsAt.Add(-time.Second), RefundPlan{}, ENothingRefundable},
		{"one day left", paid, &monthly, RefundRequest{}, monthly.EndsAt.Add(-24 * time.Hour), RefundPlan{64, PeriodCut, true}, ""}, // 1990/31 = 64.19
		{"ended", paid, &monthly, RefundRequest{}, monthly.EndsAt, RefundPlan{}, ENothingRefundable},
		{"already cut", paid, &cut, RefundRequest{}, refundedAt.Add(time.Hour), RefundPlan{}, ENothingRefundable},
		{"unused value capped by the balance", goodwilled, &monthly, RefundRequest{}, start.Add(length / 2), RefundPlan{490, PeriodCut, true}, ""},
		{"not started after a goodwill: what is left", goodwilled, &monthly, RefundRequest{}, start.Add(-time.Hour), RefundPlan{490, PeriodRemoved, true}, ""},
		{"goodwill at the balance", paid, &monthly, RefundRequest{AmountFen: fen(1990)}, start.Add(length / 2), RefundPlan{1990, PeriodKept, false}, ""},
		{"goodwill over the balance", paid, &monthly, RefundRequest{AmountFen: fen(1991)}, start.Add(length / 2), RefundPlan{}, ERefundExceedsBalance},
		{"goodwill over what is left", goodwilled, &monthly, RefundRequest{AmountFen: fen(491)}, start, RefundPlan{}, ERefundExceedsBalance},
		{"goodwill at what is left", goodwilled, &monthly, RefundRequest{AmountFen: fen(490)}, start, RefundPlan{490, PeriodKept, false}, ""},
		{"goodwill ending access of a running period", paid, &monthly, RefundRequest{AmountFen: fen(100), EndAccess: true}, start.Add(time.Hour), RefundPlan{100, PeriodCut, true}, ""},
		{"goodwill ending access of a future period", paid, &monthly, RefundRequest{AmountFen: fen(100), EndAccess: true}, start.Add(-time.Hour), RefundPlan{100, PeriodRemoved, true}, ""},
		{"goodwill on an ended period", paid, &monthly, RefundRequest{AmountFen: fen(100), EndAccess: true}, monthly.EndsAt.Add(time.Hour), RefundPlan{100, PeriodKept, true}, ""},
		{"unpaid", Order{ID: "o1", AmountFen: 1990, Status: OrderPending}, nil, RefundRequest{}, start, RefundPlan{}, EOrderNotPaid},
		{"cancelled", Order{ID: "o1", AmountFen: 1990, Status: OrderCancelled}, nil, RefundRequest{AmountFen: fen(1)}, start, RefundPlan{}, EOrderNotPaid},
		{"fully refunded", Order{ID: "o1", AmountFen: 1990, Status: OrderRefunded, RefundedFen: 1990}, &monthly, RefundRequest{AmountFen: fen(1)}, start, RefundPlan{}, ERefundExceedsBalance},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PlanRefund(tc.order, tc.period, tc.req, tc.now)
			if code := ErrorCode(err); code != tc.code {
				t.Fatalf("PlanRefund() error = %v, want code %q", err, tc.code)
			}
			if got != tc.want {
				t.Errorf("PlanRefund() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestProrate(t *testing.T) {
	tests := []struct {
		name           string
		price          int64
		unused, period time.Duration
		want           int64
	}{
		{"all unused", 19900, 365 * 24 * time.Hour, 365 * 24 * time.Hour, 19900},
		{"nothing unused", 19900, 0, 365 * 24 * time.Hour, 0},
		{"a third, rounded down", 100, time.Hour, 3 * time.Hour, 33},
		{"two thirds, rounded down", 100, 2 * time.Hour, 3 * time.Hour, 66},
		{"sub-second unused counts as 0 seconds", 100, 999 * time.Millisecond, 10 * time.Second, 0},
		{"no 64-bit overflow", math.MaxInt64, 2 * time.Second, 3 * time.Second, 6148914691236517204},
		{"more unused than the period", 500, 2 * time.Hour, time.Hour, 500},
		{"empty period", 500, time.Hour, 0, 0},
	}
	for _, tc := range tests {
		if got := Prorate(tc.price, tc.unused, tc.period); got != tc.want {
			t.Errorf("%s: Prorate(%d, %v, %v) = %d, want %d", tc.name, tc.price, tc.unused, tc.period, got, tc.want)
		}
	}
}

// A monthly period cut by a refund pulls the yearly stacked after it
// earlier by exactly the time that was cut off.
func TestApplyRefundRelaysLaterPeriods(t *testing.T) {
	trialEnd := time.Date(2026, 6, 1, 0, 0, 0, 0, shanghai)
	paid1 := time.Date(2026, 6, 10, 12, 0, 0, 0, shanghai)
	paid2 := paid1.Add(24 * time.Hour)
	tl := NewTimeline([]Period{
		{ID: "trial", Source: SourceTrial, StartsAt: trialEnd.AddDate(-1, 0, 0), EndsAt: trialEnd, Seq: 0},
		{ID: "m", Source: SourceOrder, OrderID: "om", Days: 31, PaidAt: paid1, Seq: 1},
		{ID: "y", Source: SourceOrder, OrderID: "oy", Days: 365, PaidAt: paid2, Seq: 2},
	})
	tl.Layout(shanghai)
	before := tl.Periods[2]
	if want := paid1.AddDate(0, 0, 31); !before.StartsAt.Equal(want) {
		t.Fatalf("yearly starts %v, want %v", before.StartsAt, want)
	}
	now := paid1.Add(10 * 24 * time.Hour)
	cutOff := tl.Periods[1].EndsAt.Sub(now)
	changed := tl.ApplyRefund("om", PeriodCut, shanghai, now)
	if len(changed) != 2 {
		t.Fatalf("ApplyRefund() changed %d periods, want 2 (monthly and yearly)", len(changed))
	}
	m, y := tl.Periods[1], tl.Periods[2]
	if !m.Refunded() || !m.EndsAt.Equal(now) || m.Status(now) != PeriodRefunded {
		t.Errorf("monthly = %+v, want refunded, ending %v", m, now)
	}
	if got := before.StartsAt.Sub(y.StartsAt); got != cutOff {
		t.Errorf("yearly moved earlier by %v, want %v", got, cutOff)
	}
	if !y.StartsAt.Equal(now) || !y.EndsAt.Equal(now.AddDate(0, 0, 365)) {
		t.Errorf("yearly = %v..%v, want %v..%v", y.StartsAt, y.EndsAt, now, now.AddDate(0, 0, 365))
	}
	if cov := tl.At(now); !cov.Covered || !cov.CoveredUntil.Equal(y.EndsAt) || cov.State() != StatePaid {
		t.Errorf("At(now) = %+v, want covered by the yearly until %v", cov, y.EndsAt)
	}
	// Removing the yearly before it starts leaves nothing after the cut.
	later := NewTimeline(tl.Periods)
	changed = later.ApplyRefund("oy", PeriodRemoved, shanghai, now.Add(-time.Minute))
	if len(changed) != 1 || !later.End().Equal(trialEnd) {
		t.Errorf("after removing the yearly: changed %d, End() = %v, want 1, %v", len(changed), later.End(), trialEnd)
	}
}
