package scheduler_test

import (
	"testing"
	"time"

	"entitlements/billing"
	"entitlements/scheduler"
	"entitlements/store/storetest"
)

func TestExpire(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		expire := scheduler.Expire{Store: db, MaxAge: maxAge, Location: shanghai, Batch: 2}

		yesterday := vinN(10)
		endY := activateEndingAt(t, db, yesterday, "owner-y", t0.Add(-24*time.Hour), t0.Add(-400*24*time.Hour))
		monthAgo := vinN(11)
		activateEndingAt(t, db, monthAgo, "owner-m", t0.Add(-30*24*time.Hour), t0.Add(-400*24*time.Hour))
		covered := vinN(12)
		activateEndingAt(t, db, covered, "owner-c", t0.Add(24*time.Hour), t0.Add(-400*24*time.Hour))
		// Five more that lapsed this week, to make the batches loop.
		for i := range 5 {
			activateEndingAt(t, db, vinN(20+i), "owner", t0.Add(-time.Duration(2+i)*24*time.Hour), t0.Add(-400*24*time.Hour))
		}

		for range 3 {
			runJob(t, expire, t0)
		}
		got := ofKind(listNotices(t, db, yesterday), billing.NoticeExpired)
		if len(got) != 1 || !got[0].CoveredUntil.Equal(endY) || got[0].OwnerID != "owner-y" {
			t.Errorf("lapsed yesterday: %+v, want one coverage.expired until %s", got, endY)
		}
		if want := endY.In(shanghai).Format(time.RFC3339); len(got) == 1 && got[0].Data["covered_until"] != want {
			t.Errorf("covered_until = %v, want %s", got[0].Data["covered_until"], want)
		}
		if got := listNotices(t, db, monthAgo); len(got) != 0 {
			t.Errorf("lapsed a month ago: %+v, want none", got)
		}
		if got := listNotices(t, db, covered); len(got) != 0 {
			t.Errorf("still covered: %+v, want none", got)
		}
		for i := range 5 {
			if got := ofKind(listNotices(t, db, vinN(20+i)), billing.NoticeExpired); len(got) != 1 {
				t.Errorf("lapsed %d days ago: %d notices, want 1", 2+i, len(got))
			}
		}

		// A repurchase after the lapse moves the end: when that one lapses
		// too, it is announced again.
		end2 := addPaidPeriod(t, db, yesterday, t0, 31)
		runJob(t, expire, end2.Add(time.Hour))
		if got := ofKind(listNotices(t, db, yesterday), billing.NoticeExpired); len(got) != 2 || !got[1].CoveredUntil.Equal(end2) {
			t.Errorf("second lapse: %+v, want a second notice until %s", got, end2)
		}
	})
}
