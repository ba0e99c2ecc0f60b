package billing

import (
	"sort"
	"time"
)

// Source says where a period comes from.
type Source string

const (
	SourceTrial Source = "trial"
	SourceOrder Source = "order"
)

// PeriodStatus is derived from a period's timestamps and now.
type PeriodStatus string

const (
	PeriodActive    PeriodStatus = "active"
	PeriodScheduled PeriodStatus = "scheduled"
	PeriodEnded     PeriodStatus = "ended"
	PeriodRefunded  PeriodStatus = "refunded"
)

// Period is one stretch of coverage, half-open: [StartsAt, EndsAt).
//
// A paid period records what it was bought with (PaidAt, Days) so that
// Layout can place it again after an earlier period changes. A refunded
// period no longer counts as coverage; RefundedAt is the instant its access
// ended. Refunded before it started, it is removed: it holds nothing back.
// Refunded while running, it is cut at RefundedAt: the part it ran,
// [StartsAt, min(EndsAt, RefundedAt)), still holds later periods back, so
// they start at the cut (see ServedUntil).
type Period struct {
	ID                string
	VIN               VIN
	Source            Source
	OrderID           string // empty for the trial
	Product           string // product code; "trial" for the trial
	Days              int    // length of a paid period in calendar days
	DataBytesPerMonth int64  // entertainment allowance per cycle; 0 = unlimited
	PaidAt            time.Time
	StartsAt          time.Time
	EndsAt            time.Time
	RefundedAt        *time.Time // set when refunded; the period is then out of the layout
	Seq               int        // order of payment: the trial is 0, then 1, 2, ...
}

// Refunded reports whether the period was refunded (cut or removed).
func (p Period) Refunded() bool { return p.RefundedAt != nil }

// ServedUntil is the end of the coverage the period actually gave: EndsAt
// for a live period; for a refunded one the instant it was cut if it had
// started by then, else its StartsAt (a period removed before it started
// gave nothing). Layout places the next period after it.
func (p Period) ServedUntil() time.Time {
	if p.RefundedAt == nil {
		return p.EndsAt
	}
	if !p.RefundedAt.After(p.StartsAt) {
		return time.Time{}
	}
	if p.RefundedAt.Before(p.EndsAt) {
		return *p.RefundedAt
	}
	return p.EndsAt
}

// Contains reports whether t lies in [StartsAt, EndsAt).
func (p Period) Contains(t time.Time) bool {
	return !t.Before(p.StartsAt) && t.Before(p.EndsAt)
}

// Status derives the period's status at now.
func (p Period) Status(now time.Time) PeriodStatus {
	switch {
	case p.Refunded():
		return PeriodRefunded
	case now.Before(p.StartsAt):
		return PeriodScheduled
	case now.Before(p.EndsAt):
		return PeriodActive
	default:
		return PeriodEnded
	}
}

// Timeline is a vehicle's periods in their order (Seq). Periods that were
// refunded stay in the list for the record but are skipped by every rule.
type Timeline struct {
	Periods []Period
}

// NewTimeline sorts periods by Seq.
func NewTimeline(periods []Period) Timeline {
	ps := append([]Period(nil), periods...)
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Seq < ps[j].Seq })
	return Timeline{Periods: ps}
}

// PaidStart is the rule that places a paid period: it starts when it was
// paid, or when the coverage before it ends, whichever is later.
func PaidStart(paidAt, previousEnd time.Time) time.Time {
	if previousEnd.After(paidAt) {
		return previousEnd
	}
	return paidAt
}

// PaidEnd returns the end of a paid period of days calendar days starting
// at start, computed in loc (so that a period keeps its wall-clock time).
func PaidEnd(start time.Time, days int, loc *time.Location) time.Time {
	return start.In(loc).AddDate(0, 0, days).UTC()
}

// Layout places every non-refunded paid period again, in Seq order, by the
// PaidStart rule, and returns the periods whose times changed. The trial
// and refunded periods keep their times. It is called after a period is
// cut or removed so that coverage stays continuous. A period cut by a
// refund still counts up to the instant it was cut (ServedUntil): the
// period after it starts there, not earlier, so nothing is granted twice.
func (tl *Timeline) Layout(loc *time.Location) []Period {
	var changed []Period
	var prevEnd time.Time
	for i := range tl.Periods {
		p := &tl.Periods[i]
		if p.Refunded() {
			if end := p.ServedUntil(); end.After(prevEnd) {
				prevEnd = end
			}
			continue
		}
		if p.Source == SourceOrder {
			start := PaidStart(p.PaidAt, prevEnd)
			end := PaidEnd(start, p.Days, loc)
			if !start.Equal(p.StartsAt) || !end.Equal(p.EndsAt) {
				p.StartsAt, p.EndsAt = start, end
				changed = append(changed, *p)
			}
		}
		if p.EndsAt.After(prevEnd) {
			prevEnd = p.EndsAt
		}
	}
	return changed
}

// End returns the end of the last non-refunded period (zero if none).
func (tl Timeline) End() time.Time {
	var end time.Time
	for _, p := range tl.Periods {
		if !p.Refunded() && p.EndsAt.After(end) {
			end = p.EndsAt
		}
	}
	return end
}

// CoveredSince returns the start of the last stretch of coverage: the
// run of back-to-back live periods (each starting at or before the end of
// the run so far, as At chains them) that ends at End. An instant in
// [CoveredSince, End) is covered; one before it may be too, by an earlier
// stretch. Zero when no live period exists.
func (tl Timeline) CoveredSince() time.Time {
	end := tl.End()
	since := end
	for moved := true; moved; {
		moved = false
		for _, p := range tl.Periods {
			if !p.Refunded() && p.StartsAt.Before(since) && !p.EndsAt.Before(since) && p.EndsAt.After(p.StartsAt) {
				since = p.StartsAt
				moved = true
			}
		}
	}
	if since.Equal(end) {
		return time.Time{}
	}
	return since
}

// NextSeq returns the Seq for a period appended now.
func (tl Timeline) NextSeq() int {
	n := 0
	for _, p := range tl.Periods {
		if p.Seq >= n {
			n = p.Seq + 1
		}
	}
	return n
}

// Coverage is what a timeline grants at one instant.
type Coverage struct {
	Covered      bool
	Current      *Period   // the period containing now, nil if not covered
	CoveredUntil time.Time // end of the continuous coverage containing now; zero if not covered
}

// At computes coverage at now: the period that contains now, and the end of
// the chain of back-to-back periods that continues from it.
func (tl Timeline) At(now time.Time) Coverage {
	var cov Coverage
	for i := range tl.Periods {
		p := tl.Periods[i]
		if p.Refunded() || !p.Contains(now) {
			continue
		}
		cov.Covered = true
		cov.Current = &tl.Periods[i]
		cov.CoveredUntil = p.EndsAt
		break
	}
	if !cov.Covered {
		return cov
	}
	// Extend through periods that start exactly where coverage ends. The
	// list is short (a handful of periods), so a fixed-point loop is fine.
	for extended := true; extended; {
		extended = false
		for _, p := range tl.Periods {
			if p.Refunded() {
				continue
			}
			if !p.StartsAt.After(cov.CoveredUntil) && p.EndsAt.After(cov.CoveredUntil) {
				cov.CoveredUntil = p.EndsAt
				extended = true
			}
		}
	}
	return cov
}

// State is the vehicle's entitlement state at now.
type State string

const (
	StateTrial   State = "trial"
	StatePaid    State = "paid"
	StateExpired State = "expired"
)

// State returns trial or paid after the source of the period covering now,
// or expired when nothing covers now.
func (c Coverage) State() State {
	switch {
	case !c.Covered:
		return StateExpired
	case c.Current.Source == SourceTrial:
		return StateTrial
	default:
		return StatePaid
	}
}

// DaysLeft is the remaining covered time in days, rounded up; 0 when not
// covered.
func (c Coverage) DaysLeft(now time.Time) int {
	if !c.Covered {
		return 0
	}
	d := c.CoveredUntil.Sub(now)
	days := int(d / (24 * time.Hour))
	if d%(24*time.Hour) != 0 {
		days++
	}
	return days
}
