package billing

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// history replays a vehicle's orders, payments and refunds through
// billing's own rules (NewOrder, EffectivePaidAt, PaidPeriod, Layout,
// PlanRefund, ApplyRefund), as the store does, and checks the timeline
// after every step.
type history struct {
	t      *testing.T
	loc    *time.Location
	now    time.Time
	tl     Timeline
	orders []Order
	log    []string // what happened, for the failure message
}

func (h *history) fatalf(format string, args ...any) {
	h.t.Helper()
	h.t.Fatalf("%s\nhistory:\n  %s", fmt.Sprintf(format, args...), strings.Join(h.log, "\n  "))
}

// check asserts the layout invariants: live paid periods (in Seq order)
// start at max(paid_at, end of what came before), never before paid_at,
// last their product's calendar days in loc, and do not overlap anything
// before them; the trial is never moved; laying out again changes nothing.
func (h *history) check(trial Period) {
	h.t.Helper()
	var prevEnd time.Time
	for i, p := range h.tl.Periods {
		if i > 0 && p.Seq <= h.tl.Periods[i-1].Seq {
			h.fatalf("periods out of Seq order: %d after %d", p.Seq, h.tl.Periods[i-1].Seq)
		}
		if p.Source == SourceTrial {
			if !p.StartsAt.Equal(trial.StartsAt) || !p.EndsAt.Equal(trial.EndsAt) {
				h.fatalf("trial moved to [%s, %s), was [%s, %s)", p.StartsAt, p.EndsAt, trial.StartsAt, trial.EndsAt)
			}
		}
		if p.Refunded() {
			if end := p.ServedUntil(); end.After(prevEnd) {
				prevEnd = end
			}
			continue
		}
		if p.Source == SourceOrder {
			want := p.PaidAt
			if prevEnd.After(want) {
				want = prevEnd
			}
			if !p.StartsAt.Equal(want) {
				h.fatalf("period %d starts %s, want max(paid_at %s, previous end %s)", p.Seq, p.StartsAt, p.PaidAt, prevEnd)
			}
			if p.StartsAt.Before(p.PaidAt) {
				h.fatalf("period %d starts %s before it was paid at %s", p.Seq, p.StartsAt, p.PaidAt)
			}
			if want := p.StartsAt.In(h.loc).AddDate(0, 0, p.Days); !p.EndsAt.Equal(want) {
				h.fatalf("period %d of %d days is [%s, %s), want it to end %s", p.Seq, p.Days, p.StartsAt, p.EndsAt, want)
			}
		}
		if p.StartsAt.Before(prevEnd) {
			h.fatalf("period %d [%s, %s) overlaps coverage up to %s", p.Seq, p.StartsAt, p.EndsAt, prevEnd)
		}
		if p.EndsAt.After(prevEnd) {
			prevEnd = p.EndsAt
		}
	}
	again := NewTimeline(h.tl.Periods)
	if changed := again.Layout(h.loc); len(changed) != 0 {
		h.fatalf("Layout is not stable: a second pass moved %d periods", len(changed))
	}
	h.checkCoveredSince()
}

// checkCoveredSince asserts that CoveredSince starts the stretch that
// ends at End: covered from it (At chaining to End), at every period
// boundary inside it, and not reaching End from just before it.
func (h *history) checkCoveredSince() {
	h.t.Helper()
	since, end := h.tl.CoveredSince(), h.tl.End()
	if since.IsZero() {
		if !end.IsZero() && h.tl.At(end.Add(-time.Nanosecond)).Covered {
			h.fatalf("CoveredSince is zero, but the instant before End %s is covered", end)
		}
		return
	}
	for _, p := range h.tl.Periods {
		for _, t := range []time.Time{since, p.StartsAt, p.EndsAt, p.EndsAt.Add(-time.Nanosecond)} {
			if t.Before(since) || !t.Before(end) {
				continue
			}
			if cov := h.tl.At(t); !cov.Covered || !cov.CoveredUntil.Equal(end) {
				h.fatalf("At(%s), inside [CoveredSince %s, End %s), = %+v", t, since, end, cov)
			}
		}
	}
	if cov := h.tl.At(since.Add(-time.Nanosecond)); cov.Covered && cov.CoveredUntil.Equal(end) {
		h.fatalf("the instant before CoveredSince %s is covered through End %s", since, end)
	}
}

// FuzzLayout generates histories from bytes: an activation, then steps of
// four bytes each (what, which order, how long after the previous step,
// how far back the provider dates a payment). Besides the invariants of
// check, a payment never shortens coverage and a refund never lengthens
// it: neither the end of the timeline nor the coverage at now.
func FuzzLayout(f *testing.F) {
	f.Add(uint8(0), uint32(3600), []byte{0, 0, 1, 0, 1, 0, 2, 5})
	f.Add(uint8(1), uint32(86400*300), []byte{0, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 4, 1, 0, 0, 2, 0, 200, 0, 0, 0, 0, 0})
	f.Add(uint8(2), uint32(0), []byte{0, 1, 0, 0, 4, 0, 0, 9, 0, 0, 0, 0, 4, 1, 0, 0, 2, 0, 250, 0, 2, 1, 100, 0})
	// A yearly package paid during the trial and refunded before it
	// starts (removed); four days-apart orders; the last one paid after
	// the trial and refunded while it runs (cut).
	f.Add(uint8(0), uint32(3600), []byte{0, 2, 0, 0, 1, 0, 0, 0, 2, 0, 5, 0, 0, 1, 255, 0, 0, 1, 255, 0, 0, 1, 255, 0, 0, 1, 255, 0, 1, 4, 0, 0, 2, 4, 10, 0})
	f.Add(uint8(3), uint32(1<<25), []byte{0, 0, 255, 0, 1, 0, 3, 255, 2, 0, 255, 0, 0, 1, 1, 0, 1, 1, 1, 100, 3, 0, 1, 0, 5, 1, 1, 0})
	zones := []string{"Asia/Shanghai", "America/New_York", "UTC", "Australia/Lord_Howe"}
	locs := make([]*time.Location, len(zones))
	for i, z := range zones {
		loc, err := time.LoadLocation(z)
		if err != nil {
			f.Fatalf("zone %s: %v", z, err)
		}
		locs[i] = loc
	}
	products := []Product{
		{Code: "daily", PriceFen: 100, Days: 1},
		{Code: "monthly", PriceFen: 1990, Days: 31},
		{Code: "yearly", PriceFen: 19900, Days: 365},
		{Code: "odd", PriceFen: 7, Days: 3},
	}
	const ttl = 30 * time.Minute
	f.Fuzz(func(t *testing.T, zone uint8, activatedSec uint32, steps []byte) {
		loc := locs[int(zone)%len(locs)]
		activated := time.Date(2024, 1, 1, 0, 0, 0, 0, loc).Add(time.Duration(activatedSec) * time.Second)
		const vin = VIN("1HGCM82633A004352")
		trial := TrialTerms{Months: 12}.TrialPeriod(vin, activated, loc)
		h := &history{t: t, loc: loc, now: activated, tl: NewTimeline([]Period{trial})}
		h.log = append(h.log, fmt.Sprintf("activated %s in %s: trial [%s, %s)", activated, loc, trial.StartsAt, trial.EndsAt))
		h.check(trial)
		for len(steps) >= 4 {
			op, which, wait, back := steps[0], int(steps[1]), steps[2], steps[3]
			steps = steps[4:]
			// Waits span minutes to months: 0-63 minutes, then hours, then days.
			switch {
			case wait < 64:
				h.now = h.now.Add(time.Duration(wait) * time.Minute)
			case wait < 160:
				h.now = h.now.Add(time.Duration(wait-63) * time.Hour)
			default:
				h.now = h.now.Add(time.Duration(wait-159) * 24 * time.Hour)
			}
			before := h.tl
			before.Periods = append([]Period(nil), h.tl.Periods...)
			switch op % 4 {
			case 0: // buy
				o := NewOrder(vin, "owner", products[which%len(products)], h.now, ttl)
				o.ID = fmt.Sprintf("ord_%d", len(h.orders))
				h.orders = append(h.orders, o)
				h.log = append(h.log, fmt.Sprintf("%s buy %s (%s)", h.now, o.ID, o.Product))
			case 1: // pay, dated back by the provider
				if len(h.orders) == 0 {
					continue
				}
				o := &h.orders[which%len(h.orders)]
				if o.Paid() || o.StatusAt(h.now) != OrderPending {
					continue
				}
				p := Payment{PaidAt: h.now.Add(-time.Duration(back) * time.Minute)}
				paidAt := p.EffectivePaidAt(*o, h.now).UTC()
				o.Status, o.PaidAt = OrderPaid, &paidAt
				np := o.PaidPeriod(paidAt, h.tl.NextSeq())
				np.ID = "per_" + o.ID
				h.tl.Periods = append(h.tl.Periods, np)
				h.tl.Layout(loc)
				np = h.tl.Periods[len(h.tl.Periods)-1]
				h.log = append(h.log, fmt.Sprintf("%s pay %s paid_at %s: [%s, %s)", h.now, o.ID, paidAt, np.StartsAt, np.EndsAt))
				if h.tl.End().Before(before.End()) {
					h.fatalf("payment shortened coverage: ends %s, was %s", h.tl.End(), before.End())
				}
			case 2, 3: // refund: the unused value, or an amount with or without ending access
				if len(h.orders) == 0 {
					continue
				}
				o := &h.orders[which%len(h.orders)]
				req := RefundRequest{Reason: ReasonRequestedByCustomer}
				if op%4 == 3 {
					amount := int64(back%8 + 1)
					req.AmountFen, req.EndAccess = &amount, which&1 == 1
				}
				var period *Period
				for i := range h.tl.Periods {
					if h.tl.Periods[i].OrderID == o.ID {
						period = &h.tl.Periods[i]
					}
				}
				plan, err := PlanRefund(*o, period, req, h.now)
				if err != nil {
					h.log = append(h.log, fmt.Sprintf("%s refund %s refused: %v", h.now, o.ID, err))
					continue
				}
				o.RefundedFen += plan.AmountFen
				o.Status = o.StatusAfterRefunds(o.RefundedFen)
				if o.RefundedFen > o.AmountFen {
					h.fatalf("refunds of %s add up to %d fen, more than the %d paid", o.ID, o.RefundedFen, o.AmountFen)
				}
				h.tl.ApplyRefund(o.ID, plan.Action, loc, h.now)
				h.log = append(h.log, fmt.Sprintf("%s refund %s %d fen, %s", h.now, o.ID, plan.AmountFen, plan.Action))
				if plan.Action != PeriodKept {
					// The order's period ended now: cut here, or removed
					// with its times kept and nothing served.
					var p Period
					for _, q := range h.tl.Periods {
						if q.OrderID == o.ID {
							p = q
						}
					}
					switch {
					case p.RefundedAt == nil || !p.RefundedAt.Equal(h.now):
						h.fatalf("refunded period of %s has RefundedAt %v, want %s", o.ID, p.RefundedAt, h.now)
					case plan.Action == PeriodCut && !p.EndsAt.Equal(h.now):
						h.fatalf("cut period of %s ends %s, want %s", o.ID, p.EndsAt, h.now)
					case plan.Action == PeriodCut && !p.ServedUntil().Equal(h.now) && !(p.StartsAt.Equal(h.now) && p.ServedUntil().IsZero()):
						// Cut at the instant it starts, it served nothing.
						h.fatalf("cut period of %s [%s, %s) served until %s, want %s", o.ID, p.StartsAt, p.EndsAt, p.ServedUntil(), h.now)
					case plan.Action == PeriodRemoved && (!p.StartsAt.After(h.now) || !p.ServedUntil().IsZero()):
						h.fatalf("removed period of %s starts %s, served until %s: want a start after %s and nothing served", o.ID, p.StartsAt, p.ServedUntil(), h.now)
					}
				}
				if h.tl.End().After(before.End()) {
					h.fatalf("refund lengthened coverage: ends %s, was %s", h.tl.End(), before.End())
				}
				was, is := before.At(h.now), h.tl.At(h.now)
				if is.Covered && (!was.Covered || is.CoveredUntil.After(was.CoveredUntil)) {
					h.fatalf("refund lengthened coverage at %s: covered until %s, was %v until %s", h.now, is.CoveredUntil, was.Covered, was.CoveredUntil)
				}
			}
			h.check(trial)
		}
	})
}
