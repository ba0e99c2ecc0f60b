package billing

import (
	"testing"
	"time"
)

const day = 24 * time.Hour

// trialFrom returns the 12-month trial of a car activated at s in Shanghai.
func trialFrom(t *testing.T, s string) Period {
	t.Helper()
	return TrialTerms{Months: 12, DataBytesPerMonth: 15 << 30}.TrialPeriod("1HGCM82633A004352", mustTime(t, s), mustZone(t, "Asia/Shanghai"))
}

// paid returns an unplaced paid period; Layout gives it its times.
func paid(t *testing.T, seq int, paidAt string, days int) Period {
	t.Helper()
	return Period{
		ID:       "per_" + string(rune('a'+seq)),
		VIN:      "1HGCM82633A004352",
		Source:   SourceOrder,
		OrderID:  "ord_" + string(rune('a'+seq)),
		Product:  "monthly",
		Days:     days,
		PaidAt:   mustTime(t, paidAt),
		Seq:      seq,
		StartsAt: time.Time{},
		EndsAt:   time.Time{},
	}
}

// laidOut returns the timeline of periods after Layout in Shanghai.
func laidOut(t *testing.T, periods ...Period) Timeline {
	t.Helper()
	tl := NewTimeline(periods)
	tl.Layout(mustZone(t, "Asia/Shanghai"))
	return tl
}

func TestLayoutPlacesPaidPeriods(t *testing.T) {
	sh := mustZone(t, "Asia/Shanghai")
	trial := trialFrom(t, "2025-04-03T15:20:00+08:00") // ends 2026-04-03T00:00+08:00
	tests := []struct {
		name    string
		periods []Period
		want    [][2]string // StartsAt, EndsAt of each paid period in Seq order
	}{
		{"paid during the trial starts at its end",
			[]Period{trial, paid(t, 1, "2026-03-01T10:00:00+08:00", 31)},
			[][2]string{{"2026-04-03T00:00:00+08:00", "2026-05-04T00:00:00+08:00"}}},
		{"paid after the lapse starts when paid",
			[]Period{trial, paid(t, 1, "2026-05-10T13:45:10+08:00", 31)},
			[][2]string{{"2026-05-10T13:45:10+08:00", "2026-06-10T13:45:10+08:00"}}},
		{"paid exactly at the trial end",
			[]Period{trial, paid(t, 1, "2026-04-03T00:00:00+08:00", 31)},
			[][2]string{{"2026-04-03T00:00:00+08:00", "2026-05-04T00:00:00+08:00"}}},
		{"two paid back to back",
			[]Period{trial, paid(t, 1, "2026-03-01T10:00:00+08:00", 31), paid(t, 2, "2026-03-02T10:00:00+08:00", 365)},
			[][2]string{{"2026-04-03T00:00:00+08:00", "2026-05-04T00:00:00+08:00"}, {"2026-05-04T00:00:00+08:00", "2027-05-04T00:00:00+08:00"}}},
		{"second paid after the first lapsed",
			[]Period{trial, paid(t, 1, "2026-03-01T10:00:00+08:00", 31), paid(t, 2, "2026-06-01T09:00:00+08:00", 31)},
			[][2]string{{"2026-04-03T00:00:00+08:00", "2026-05-04T00:00:00+08:00"}, {"2026-06-01T09:00:00+08:00", "2026-07-02T09:00:00+08:00"}}},
		{"Seq order, not slice order",
			[]Period{paid(t, 2, "2026-03-02T10:00:00+08:00", 31), trial, paid(t, 1, "2026-03-01T10:00:00+08:00", 31)},
			[][2]string{{"2026-04-03T00:00:00+08:00", "2026-05-04T00:00:00+08:00"}, {"2026-05-04T00:00:00+08:00", "2026-06-04T00:00:00+08:00"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := NewTimeline(tt.periods)
			changed := tl.Layout(sh)
			if len(changed) != len(tt.want) {
				t.Errorf("Layout() changed %d periods, want %d", len(changed), len(tt.want))
			}
			if got := tl.Periods[0]; got.Source != SourceTrial || !got.StartsAt.Equal(trial.StartsAt) || !got.EndsAt.Equal(trial.EndsAt) {
				t.Errorf("Layout() moved the trial to [%s, %s)", got.StartsAt, got.EndsAt)
			}
			for i, w := range tt.want {
				p := tl.Periods[i+1]
				if p.Seq != i+1 {
					t.Fatalf("Periods[%d].Seq = %d, want %d", i+1, p.Seq, i+1)
				}
				if ws := mustTime(t, w[0]); !p.StartsAt.Equal(ws) {
					t.Errorf("period %d StartsAt = %s, want %s", p.Seq, p.StartsAt.In(sh).Format(time.RFC3339), w[0])
				}
				if we := mustTime(t, w[1]); !p.EndsAt.Equal(we) {
					t.Errorf("period %d EndsAt = %s, want %s", p.Seq, p.EndsAt.In(sh).Format(time.RFC3339), w[1])
				}
			}
			if again := tl.Layout(sh); len(again) != 0 {
				t.Errorf("second Layout() changed %d periods, want 0", len(again))
			}
		})
	}
}

func TestCoverageAt(t *testing.T) {
	trial := trialFrom(t, "2025-04-03T15:20:00+08:00") // [2025-04-03, 2026-04-03) Shanghai
	removed := paid(t, 1, "2026-03-01T10:00:00+08:00", 31)
	removedAt := mustTime(t, "2026-03-05T10:00:00+08:00")
	tests := []struct {
		name      string
		tl        Timeline
		now       string
		covered   bool
		until     string // covered_until; "" when not covered
		state     State
		current   int // Seq of the current period; -1 when none
		wantDays  int
		wantStart bool // Current is the period starting exactly now
	}{
		{"trial at its start instant", laidOut(t, trial), "2025-04-03T00:00:00+08:00",
			true, "2026-04-03T00:00:00+08:00", StateTrial, 0, 365, true},
		{"before the trial starts", laidOut(t, trial), "2025-04-02T23:59:59+08:00",
			false, "", StateExpired, -1, 0, false},
		{"trial active", laidOut(t, trial), "2025-10-01T12:00:00+08:00",
			true, "2026-04-03T00:00:00+08:00", StateTrial, 0, 184, false},
		{"trial one second before its end", laidOut(t, trial), "2026-04-02T23:59:59+08:00",
			true, "2026-04-03T00:00:00+08:00", StateTrial, 0, 1, false},
		{"trial exactly at its end is not covered", laidOut(t, trial), "2026-04-03T00:00:00+08:00",
			false, "", StateExpired, -1, 0, false},
		{"trial ended", laidOut(t, trial), "2026-06-01T00:00:00+08:00",
			false, "", StateExpired, -1, 0, false},
		{"trial with paid after it: covered until the paid end", laidOut(t, trial, paid(t, 1, "2026-03-01T10:00:00+08:00", 31)), "2026-03-02T00:00:00+08:00",
			true, "2026-05-04T00:00:00+08:00", StateTrial, 0, 63, false},
		{"paid at the trial end is paid", laidOut(t, trial, paid(t, 1, "2026-03-01T10:00:00+08:00", 31)), "2026-04-03T00:00:00+08:00",
			true, "2026-05-04T00:00:00+08:00", StatePaid, 1, 31, true},
		{"two paid back to back extend covered_until", laidOut(t, trial, paid(t, 1, "2026-03-01T10:00:00+08:00", 31), paid(t, 2, "2026-03-02T10:00:00+08:00", 365)), "2025-12-01T00:00:00+08:00",
			true, "2027-05-04T00:00:00+08:00", StateTrial, 0, 519, false},
		{"in the second paid period", laidOut(t, trial, paid(t, 1, "2026-03-01T10:00:00+08:00", 31), paid(t, 2, "2026-03-02T10:00:00+08:00", 365)), "2026-05-04T00:00:00+08:00",
			true, "2027-05-04T00:00:00+08:00", StatePaid, 2, 365, true},
		{"a gap stops covered_until", laidOut(t, trial, paid(t, 1, "2026-05-10T00:00:00+08:00", 31)), "2026-04-01T00:00:00+08:00",
			true, "2026-04-03T00:00:00+08:00", StateTrial, 0, 2, false},
		{"in the gap after the trial", laidOut(t, trial, paid(t, 1, "2026-05-10T00:00:00+08:00", 31)), "2026-05-09T23:59:59+08:00",
			false, "", StateExpired, -1, 0, false},
		{"paid after the lapse, at paid_at", laidOut(t, trial, paid(t, 1, "2026-05-10T00:00:00+08:00", 31)), "2026-05-10T00:00:00+08:00",
			true, "2026-06-10T00:00:00+08:00", StatePaid, 1, 31, true},
		{"a removed period does not extend covered_until", func() Timeline {
			tl := laidOut(t, trial, removed)
			tl.Periods[1].RefundedAt = &removedAt
			return tl
		}(), "2026-03-06T00:00:00+08:00",
			true, "2026-04-03T00:00:00+08:00", StateTrial, 0, 28, false},
		{"a removed period does not cover", func() Timeline {
			tl := laidOut(t, trial, removed)
			tl.Periods[1].RefundedAt = &removedAt
			return tl
		}(), "2026-04-10T00:00:00+08:00",
			false, "", StateExpired, -1, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := mustTime(t, tt.now)
			cov := tt.tl.At(now)
			if cov.Covered != tt.covered {
				t.Errorf("At(%s).Covered = %v, want %v", tt.now, cov.Covered, tt.covered)
			}
			if tt.until == "" {
				if !cov.CoveredUntil.IsZero() {
					t.Errorf("At(%s).CoveredUntil = %s, want zero", tt.now, cov.CoveredUntil)
				}
			} else if want := mustTime(t, tt.until); !cov.CoveredUntil.Equal(want) {
				t.Errorf("At(%s).CoveredUntil = %s, want %s", tt.now, cov.CoveredUntil, tt.until)
			}
			if s := cov.State(); s != tt.state {
				t.Errorf("At(%s).State() = %q, want %q", tt.now, s, tt.state)
			}
			switch {
			case tt.current < 0 && cov.Current != nil:
				t.Errorf("At(%s).Current = seq %d, want nil", tt.now, cov.Current.Seq)
			case tt.current >= 0 && cov.Current == nil:
				t.Errorf("At(%s).Current = nil, want seq %d", tt.now, tt.current)
			case tt.current >= 0 && cov.Current.Seq != tt.current:
				t.Errorf("At(%s).Current = seq %d, want seq %d", tt.now, cov.Current.Seq, tt.current)
			case tt.current >= 0 && cov.Current.StartsAt.Equal(now) != tt.wantStart:
				t.Errorf("At(%s).Current starts at %s; starting now = %v, want %v", tt.now, cov.Current.StartsAt, !tt.wantStart, tt.wantStart)
			}
			if d := cov.DaysLeft(now); d != tt.wantDays {
				t.Errorf("At(%s).DaysLeft() = %d, want %d", tt.now, d, tt.wantDays)
			}
		})
	}
}

func TestLayoutAfterRefund(t *testing.T) {
	sh := mustZone(t, "Asia/Shanghai")
	trial := trialFrom(t, "2025-04-03T15:20:00+08:00") // ends 2026-04-03T00:00+08:00
	// p1 [2026-04-03, 2026-05-04), p2 [2026-05-04, 2027-05-04), p3 [2027-05-04, 2027-06-04)
	base := func() Timeline {
		return laidOut(t, trial,
			paid(t, 1, "2026-03-01T10:00:00+08:00", 31),
			paid(t, 2, "2026-03-02T10:00:00+08:00", 365),
			paid(t, 3, "2026-03-03T10:00:00+08:00", 31))
	}
	refund := func(tl *Timeline, seq int, at time.Time, cutEnd bool) {
		p := &tl.Periods[seq]
		p.RefundedAt = &at
		if cutEnd && at.Before(p.EndsAt) && at.After(p.StartsAt) {
			p.EndsAt = at
		}
	}
	tests := []struct {
		name    string
		seq     int // the refunded period
		at      string
		cutEnd  bool // the refund also sets EndsAt to the cut
		changed []int
		want    map[int][2]string // Seq -> StartsAt, EndsAt after Layout
		until   string            // covered_until at the refund instant
	}{
		{"removed before it started: later periods move earlier by its length", 2, "2026-04-10T09:00:00+08:00", false, []int{3},
			map[int][2]string{
				1: {"2026-04-03T00:00:00+08:00", "2026-05-04T00:00:00+08:00"},
				2: {"2026-05-04T00:00:00+08:00", "2027-05-04T00:00:00+08:00"}, // keeps its times, for the record
				3: {"2026-05-04T00:00:00+08:00", "2026-06-04T00:00:00+08:00"}},
			"2026-06-04T00:00:00+08:00"},
		{"removed during the trial", 1, "2025-12-01T00:00:00+08:00", false, []int{2, 3},
			map[int][2]string{
				2: {"2026-04-03T00:00:00+08:00", "2027-04-03T00:00:00+08:00"},
				3: {"2027-04-03T00:00:00+08:00", "2027-05-04T00:00:00+08:00"}},
			"2027-05-04T00:00:00+08:00"},
		{"running period cut: later periods start at the cut", 1, "2026-04-20T15:30:00+08:00", true, []int{2, 3},
			map[int][2]string{
				1: {"2026-04-03T00:00:00+08:00", "2026-04-20T15:30:00+08:00"},
				2: {"2026-04-20T15:30:00+08:00", "2027-04-20T15:30:00+08:00"},
				3: {"2027-04-20T15:30:00+08:00", "2027-05-21T15:30:00+08:00"}},
			"2027-05-21T15:30:00+08:00"},
		{"running period cut, EndsAt kept: later periods start at RefundedAt", 1, "2026-04-20T15:30:00+08:00", false, []int{2, 3},
			map[int][2]string{
				2: {"2026-04-20T15:30:00+08:00", "2027-04-20T15:30:00+08:00"},
				3: {"2027-04-20T15:30:00+08:00", "2027-05-21T15:30:00+08:00"}},
			"2027-05-21T15:30:00+08:00"},
		{"last period cut: nothing moves", 3, "2027-05-10T00:00:00+08:00", true, nil,
			map[int][2]string{
				2: {"2026-05-04T00:00:00+08:00", "2027-05-04T00:00:00+08:00"},
				3: {"2027-05-04T00:00:00+08:00", "2027-05-10T00:00:00+08:00"}},
			""},
		{"refunded at its start instant counts as removed", 2, "2026-05-04T00:00:00+08:00", false, []int{3},
			map[int][2]string{
				3: {"2026-05-04T00:00:00+08:00", "2026-06-04T00:00:00+08:00"}},
			"2026-06-04T00:00:00+08:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := base()
			at := mustTime(t, tt.at)
			refund(&tl, tt.seq, at, tt.cutEnd)
			before := tl.Periods[tt.seq]
			changed := tl.Layout(sh)
			var seqs []int
			for _, p := range changed {
				seqs = append(seqs, p.Seq)
			}
			if len(seqs) != len(tt.changed) {
				t.Errorf("Layout() changed seqs %v, want %v", seqs, tt.changed)
			} else {
				for i := range seqs {
					if seqs[i] != tt.changed[i] {
						t.Errorf("Layout() changed seqs %v, want %v", seqs, tt.changed)
						break
					}
				}
			}
			if got := tl.Periods[tt.seq]; !got.StartsAt.Equal(before.StartsAt) || !got.EndsAt.Equal(before.EndsAt) {
				t.Errorf("Layout() moved the refunded period to [%s, %s), want [%s, %s)", got.StartsAt, got.EndsAt, before.StartsAt, before.EndsAt)
			}
			for seq, w := range tt.want {
				p := tl.Periods[seq]
				if ws := mustTime(t, w[0]); !p.StartsAt.Equal(ws) {
					t.Errorf("period %d StartsAt = %s, want %s", seq, p.StartsAt.In(sh).Format(time.RFC3339), w[0])
				}
				if we := mustTime(t, w[1]); !p.EndsAt.Equal(we) {
					t.Errorf("period %d EndsAt = %s, want %s", seq, p.EndsAt.In(sh).Format(time.RFC3339), w[1])
				}
			}
			for _, p := range tl.Periods {
				if p.Source == SourceOrder && !p.Refunded() && p.EndsAt.Sub(p.StartsAt) != time.Duration(p.Days)*day {
					t.Errorf("period %d lasts %s, want %d days", p.Seq, p.EndsAt.Sub(p.StartsAt), p.Days)
				}
			}
			cov := tl.At(at)
			switch {
			case tt.until == "" && cov.Covered:
				t.Errorf("At(refund) covered until %s, want not covered", cov.CoveredUntil)
			case tt.until != "" && !cov.CoveredUntil.Equal(mustTime(t, tt.until)):
				t.Errorf("At(refund).CoveredUntil = %s, want %s", cov.CoveredUntil.In(sh).Format(time.RFC3339), tt.until)
			}
			if end := tl.End(); tt.until != "" && !end.Equal(mustTime(t, tt.until)) {
				t.Errorf("End() = %s, want %s", end.In(sh).Format(time.RFC3339), tt.until)
			}
		})
	}
}

// Removing a not-started period moves every later one earlier by exactly
// the removed period's length.
func TestLayoutRemovalShift(t *testing.T) {
	sh := mustZone(t, "Asia/Shanghai")
	trial := trialFrom(t, "2025-04-03T15:20:00+08:00")
	for _, days := range []int{31, 365} {
		tl := laidOut(t, trial,
			paid(t, 1, "2026-03-01T10:00:00+08:00", 31),
			paid(t, 2, "2026-03-02T10:00:00+08:00", days),
			paid(t, 3, "2026-03-03T10:00:00+08:00", 31))
		oldStart, oldEnd := tl.Periods[3].StartsAt, tl.Periods[3].EndsAt
		at := mustTime(t, "2026-04-10T00:00:00+08:00")
		tl.Periods[2].RefundedAt = &at
		tl.Layout(sh)
		if shift := oldStart.Sub(tl.Periods[3].StartsAt); shift != time.Duration(days)*day {
			t.Errorf("removing %d days moved the next start by %s, want %s", days, shift, time.Duration(days)*day)
		}
		if shift := oldEnd.Sub(tl.Periods[3].EndsAt); shift != time.Duration(days)*day {
			t.Errorf("removing %d days moved the next end by %s, want %s", days, shift, time.Duration(days)*day)
		}
	}
}

func TestDaysLeft(t *testing.T) {
	now := mustTime(t, "2026-03-01T12:00:00+08:00")
	tests := []struct {
		name    string
		covered bool
		left    time.Duration
		want    int
	}{
		{"1 nanosecond", true, time.Nanosecond, 1},
		{"1 second", true, time.Second, 1},
		{"23h59m59s", true, day - time.Second, 1},
		{"exactly 24h", true, day, 1},
		{"24h and 1 second", true, day + time.Second, 2},
		{"exactly 48h", true, 2 * day, 2},
		{"31 days", true, 31 * day, 31},
		{"365 days and 1 second", true, 365*day + time.Second, 366},
		{"not covered", false, 10 * day, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cov := Coverage{Covered: tt.covered}
			if tt.covered {
				cov.CoveredUntil = now.Add(tt.left)
				cov.Current = &Period{Source: SourceOrder}
			}
			if got := cov.DaysLeft(now); got != tt.want {
				t.Errorf("DaysLeft() with %s left = %d, want %d", tt.left, got, tt.want)
			}
		})
	}
}

func TestPaidEnd(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	sh := mustZone(t, "Asia/Shanghai")
	tests := []struct {
		name  string
		loc   *time.Location
		start string
		days  int
		want  string
		dur   time.Duration
	}{
		{"31 days across spring forward keep 10:00", ny, "2026-03-01T10:00:00-05:00", 31, "2026-04-01T10:00:00-04:00", 31*day - time.Hour},
		{"31 days across fall back keep 10:00", ny, "2026-10-15T10:00:00-04:00", 31, "2026-11-15T10:00:00-05:00", 31*day + time.Hour},
		{"365 days across both", ny, "2026-01-10T10:00:00-05:00", 365, "2027-01-10T10:00:00-05:00", 365 * day},
		{"Shanghai has no DST", sh, "2026-03-01T10:00:00+08:00", 31, "2026-04-01T10:00:00+08:00", 31 * day},
		{"365 days over a leap day", sh, "2027-06-01T00:00:00+08:00", 365, "2028-05-31T00:00:00+08:00", 365 * day},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := mustTime(t, tt.start)
			got := PaidEnd(start, tt.days, tt.loc)
			if want := mustTime(t, tt.want); !got.Equal(want) {
				t.Errorf("PaidEnd(%s, %d) = %s, want %s", tt.start, tt.days, got.In(tt.loc).Format(time.RFC3339), tt.want)
			}
			if d := got.Sub(start); d != tt.dur {
				t.Errorf("PaidEnd(%s, %d) - start = %s, want %s", tt.start, tt.days, d, tt.dur)
			}
			if got.Location() != time.UTC {
				t.Errorf("PaidEnd(%s, %d) in %s, want UTC", tt.start, tt.days, got.Location())
			}
		})
	}
}

func TestPaidStart(t *testing.T) {
	a := mustTime(t, "2026-03-01T10:00:00+08:00")
	b := a.Add(time.Hour)
	tests := []struct {
		name            string
		paidAt, prevEnd time.Time
		want            time.Time
	}{
		{"previous ends later", a, b, b},
		{"paid later", b, a, b},
		{"equal", a, a, a},
		{"no previous period", a, time.Time{}, a},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PaidStart(tt.paidAt, tt.prevEnd); !got.Equal(tt.want) {
				t.Errorf("PaidStart(%s, %s) = %s, want %s", tt.paidAt, tt.prevEnd, got, tt.want)
			}
		})
	}
}

func TestPeriodStatus(t *testing.T) {
	p := laidOut(t, trialFrom(t, "2025-04-03T15:20:00+08:00"), paid(t, 1, "2026-03-01T10:00:00+08:00", 31)).Periods[1]
	refunded := p
	at := mustTime(t, "2026-03-05T00:00:00+08:00")
	refunded.RefundedAt = &at
	tests := []struct {
		name string
		p    Period
		now  string
		want PeriodStatus
	}{
		{"before start", p, "2026-04-02T23:59:59+08:00", PeriodScheduled},
		{"at start", p, "2026-04-03T00:00:00+08:00", PeriodActive},
		{"last second", p, "2026-05-03T23:59:59+08:00", PeriodActive},
		{"at end", p, "2026-05-04T00:00:00+08:00", PeriodEnded},
		{"refunded, whatever now is", refunded, "2026-04-10T00:00:00+08:00", PeriodRefunded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Status(mustTime(t, tt.now)); got != tt.want {
				t.Errorf("Status(%s) = %q, want %q", tt.now, got, tt.want)
			}
		})
	}
}

// TestCoveredSince: the start of the last stretch of coverage, through
// back-to-back and overlapping periods, not across a gap, never from a
// refunded period.
func TestCoveredSince(t *testing.T) {
	at := func(s string) time.Time { return mustTime(t, s) }
	per := func(seq int, from, to string, refunded bool) Period {
		p := Period{ID: "per_" + string(rune('a'+seq)), Seq: seq, StartsAt: at(from), EndsAt: at(to)}
		if refunded {
			r := at(from)
			p.RefundedAt = &r
		}
		return p
	}
	for _, c := range []struct {
		name    string
		periods []Period
		want    string // "" for zero
	}{
		{"none", nil, ""},
		{"one", []Period{per(0, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", false)}, "2026-01-01T00:00:00Z"},
		{"back to back", []Period{
			per(0, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", false),
			per(1, "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z", false),
		}, "2026-01-01T00:00:00Z"},
		{"overlapping, listed out of order", []Period{
			per(1, "2026-12-15T00:00:00Z", "2027-02-01T00:00:00Z", false),
			per(0, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", false),
		}, "2026-01-01T00:00:00Z"},
		{"after a gap", []Period{
			per(0, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", false),
			per(1, "2027-01-01T00:00:01Z", "2027-02-01T00:00:00Z", false),
		}, "2027-01-01T00:00:01Z"},
		{"a refunded period does not bridge a gap", []Period{
			per(0, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", false),
			per(1, "2027-01-01T00:00:00Z", "2027-03-01T00:00:00Z", true),
			per(2, "2027-02-01T00:00:00Z", "2027-04-01T00:00:00Z", false),
		}, "2027-02-01T00:00:00Z"},
		{"only refunded", []Period{per(0, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", true)}, ""},
		{"an earlier period ending later stays in", []Period{
			per(0, "2026-01-01T00:00:00Z", "2027-06-01T00:00:00Z", false),
			per(1, "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z", false),
		}, "2026-01-01T00:00:00Z"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tl := NewTimeline(c.periods)
			got := tl.CoveredSince()
			var want time.Time
			if c.want != "" {
				want = at(c.want)
			}
			if !got.Equal(want) {
				t.Fatalf("CoveredSince = %s, want %s", got, want)
			}
			if !got.IsZero() {
				if cov := tl.At(got); !cov.Covered || !cov.CoveredUntil.Equal(tl.End()) {
					t.Fatalf("At(CoveredSince) = %+v, want covered until End %s", cov, tl.End())
				}
			}
		})
	}
}
