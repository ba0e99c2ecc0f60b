package scheduler_test

import (
	"testing"
	"time"

	"entitlements/billing"
	"entitlements/scheduler"
	"entitlements/store/storetest"
)

var t0 = time.Date(2026, 6, 15, 12, 0, 0, 0, shanghai)

func TestRemindOncePerStage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		vin := vinN(1)
		end := activateEndingAt(t, db, vin, "owner-1", t0.Add(5*24*time.Hour), t0)
		remind := scheduler.Remind{Store: db, Stages: stages, Location: shanghai}

		for i := range 4 {
			runJob(t, remind, t0.Add(time.Duration(i)*time.Hour))
		}
		got := ofKind(listNotices(t, db, vin), billing.NoticeExpiring)
		if len(got) != 1 {
			t.Fatalf("after 4 runs: %d coverage.expiring notices, want 1: %+v", len(got), got)
		}
		n := got[0]
		if n.Stage != 7 || n.Data["stage"] != float64(7) || n.OwnerID != "owner-1" || n.Status != billing.NoticePending {
			t.Errorf("notice = %+v, want stage 7 pending for owner-1", n)
		}
		if want := end.In(shanghai).Format(time.RFC3339); n.Data["covered_until"] != want {
			t.Errorf("covered_until = %v, want %s", n.Data["covered_until"], want)
		}

		// Half a day before the end the 1-day stage is due, once.
		runJob(t, remind, end.Add(-12*time.Hour))
		runJob(t, remind, end.Add(-11*time.Hour))
		got = ofKind(listNotices(t, db, vin), billing.NoticeExpiring)
		if len(got) != 2 || got[1].Stage != 1 {
			t.Fatalf("near the end: %d notices (%+v), want stage 7 then stage 1", len(got), got)
		}
		// After the end: nothing more from remind.
		runJob(t, remind, end.Add(time.Hour))
		if n := len(ofKind(listNotices(t, db, vin), billing.NoticeExpiring)); n != 2 {
			t.Errorf("after the end: %d notices, want 2", n)
		}
	})
}

func TestRemindNearestStageOnly(t *testing.T) {
	cases := []struct {
		name string
		left time.Duration
		want int // 0: none
	}{
		{"40 days left", 40 * 24 * time.Hour, 0},
		{"30 days and a minute left", 30*24*time.Hour + time.Minute, 0},
		{"exactly 30 days left", 30 * 24 * time.Hour, 30},
		{"20 days left", 20 * 24 * time.Hour, 30},
		{"exactly 7 days left", 7 * 24 * time.Hour, 7},
		{"5 days left", 5 * 24 * time.Hour, 7},
		{"a day and a minute left", 24*time.Hour + time.Minute, 7},
		{"exactly one day left", 24 * time.Hour, 1},
		{"two hours left", 2 * time.Hour, 1},
	}
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		remind := scheduler.Remind{Store: db, Stages: stages, Location: shanghai}
		for i, c := range cases {
			vin := vinN(100 + i)
			end := activateEndingAt(t, db, vin, "owner", t0.Add(c.left), t0)
			now := end.Add(-c.left) // the trial ends at local midnight: place now exactly
			runJob(t, remind, now)
			runJob(t, remind, now)
			got := ofKind(listNotices(t, db, vin), billing.NoticeExpiring)
			switch {
			case c.want == 0 && len(got) != 0:
				t.Errorf("%s: notices = %+v, want none", c.name, got)
			case c.want != 0 && (len(got) != 1 || got[0].Stage != c.want):
				t.Errorf("%s: notices = %+v, want one of stage %d", c.name, got, c.want)
			}
		}
	})
}

func TestRemindRearmedByPurchase(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		vin := vinN(2)
		end := activateEndingAt(t, db, vin, "owner-2", t0.Add(5*24*time.Hour), t0)
		remind := scheduler.Remind{Store: db, Stages: stages, Location: shanghai}
		runJob(t, remind, t0)

		// A yearly package bought now starts when the trial ends.
		newEnd := addPaidPeriod(t, db, vin, t0.Add(time.Hour), 365)
		if want := billing.PaidEnd(end, 365, shanghai); !newEnd.Equal(want) {
			t.Fatalf("paid period ends %s, want %s", newEnd, want)
		}
		for _, now := range []time.Time{t0.Add(2 * time.Hour), end.Add(-12 * time.Hour), end.Add(time.Hour), newEnd.Add(-31 * 24 * time.Hour)} {
			runJob(t, remind, now)
		}
		got := ofKind(listNotices(t, db, vin), billing.NoticeExpiring)
		if len(got) != 1 {
			t.Fatalf("before the new end nears: %d notices (%+v), want only the first", len(got), got)
		}
		runJob(t, remind, newEnd.Add(-29*24*time.Hour))
		got = ofKind(listNotices(t, db, vin), billing.NoticeExpiring)
		if len(got) != 2 || got[1].Stage != 30 || !got[1].CoveredUntil.Equal(newEnd) {
			t.Fatalf("when the new end nears: %+v, want a stage 30 notice for %s", got, newEnd)
		}
	})
}

func TestRemindLapsedThenRepurchased(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		remind := scheduler.Remind{Store: db, Stages: stages, Location: shanghai}

		// Lapsed 40 days ago, bought 31 days 25 days ago: covered, 6 days left.
		back := vinN(3)
		activateEndingAt(t, db, back, "owner-3", t0.Add(-40*24*time.Hour), t0.Add(-400*24*time.Hour))
		end := addPaidPeriod(t, db, back, t0.Add(-25*24*time.Hour), 31)
		runJob(t, remind, t0)
		got := ofKind(listNotices(t, db, back), billing.NoticeExpiring)
		if len(got) != 1 || got[0].Stage != 7 || !got[0].CoveredUntil.Equal(end) {
			t.Errorf("repurchased after a lapse: %+v, want stage 7 until %s", got, end)
		}

		// Lapsed, and a payment stamped an hour ahead of now: coverage_ends_at
		// is 3 days away but nothing covers now, so no reminder yet.
		ahead := vinN(4)
		activateEndingAt(t, db, ahead, "owner-4", t0.Add(-40*24*time.Hour), t0.Add(-400*24*time.Hour))
		addPaidPeriod(t, db, ahead, t0.Add(time.Hour), 3)
		runJob(t, remind, t0)
		if got := listNotices(t, db, ahead); len(got) != 0 {
			t.Errorf("not covered yet: notices = %+v, want none", got)
		}
		runJob(t, remind, t0.Add(2*time.Hour))
		if got := ofKind(listNotices(t, db, ahead), billing.NoticeExpiring); len(got) != 1 || got[0].Stage != 7 {
			t.Errorf("once covered: notices = %+v, want one of stage 7", got)
		}
	})
}

// TestRemindReadsPeriodsWhenCoveredSinceIsUnknown: a vehicle last written
// before vehicles.covered_since existed (NULL) is decided from its
// periods, as is one whose recorded stretch has not begun: covered now,
// it gets its reminder; activated ahead of the clock, it does not.
func TestRemindReadsPeriodsWhenCoveredSinceIsUnknown(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		remind := scheduler.Remind{Store: db, Stages: stages, Location: shanghai}
		covered, notYet, stale := vinN(5), vinN(6), vinN(7)
		activateEndingAt(t, db, covered, "owner-5", t0.Add(5*24*time.Hour), t0)
		activateEndingAt(t, db, stale, "owner-7", t0.Add(5*24*time.Hour), t0)
		// Activated tomorrow: coverage_ends_at is a year away, so give it an
		// end within the 7-day window by hand, as an old release's refund
		// could have left it.
		if _, _, err := db.Activate(ctx, notYet, billing.Activation{ActivatedAt: t0.Add(24 * time.Hour), OwnerID: "owner-6"}, trial, shanghai, t0); err != nil {
			t.Fatal(err)
		}
		u := func(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
		for _, s := range []struct {
			q    string
			args []any
		}{
			{`UPDATE vehicles SET covered_since = NULL WHERE vin IN (?, ?)`, []any{string(covered), string(notYet)}},
			{`UPDATE vehicles SET coverage_ends_at = ? WHERE vin = ?`, []any{u(t0.Add(5 * 24 * time.Hour)), string(notYet)}},
			// A stretch recorded as beginning later than it does: its
			// periods say it is covered now.
			{`UPDATE vehicles SET covered_since = ? WHERE vin = ?`, []any{u(t0.Add(time.Hour)), string(stale)}},
		} {
			if err := storetest.Exec(db, s.q, s.args...); err != nil {
				t.Fatal(err)
			}
		}
		runJob(t, remind, t0)
		for vin, want := range map[billing.VIN]int{covered: 1, notYet: 0, stale: 1} {
			if got := ofKind(listNotices(t, db, vin), billing.NoticeExpiring); len(got) != want {
				t.Errorf("%s: %d coverage.expiring notices (%+v), want %d", vin, len(got), got, want)
			}
		}
	})
}
