package scheduler_test

import (
	"slices"
	"testing"
	"time"

	"entitlements/billing"
	"entitlements/scheduler"
	"entitlements/store/storetest"
)

// TestNoticeListFindsEveryCoverageEnd checks a vehicle's notice list
// against every notice the table holds for it, after its coverage end has
// moved forward (a purchase) and back to an instant no period ends at any
// more (a refund that cut the purchase). It guards the list against an
// optimisation that finds coverage notices by the vehicle's current
// periods or end (docs/performance.md lists a version that found them
// by every end of coverage the vehicle has had, and why it was dropped).
func TestNoticeListFindsEveryCoverageEnd(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		remind := scheduler.Remind{Store: db, Stages: stages, Location: shanghai}
		expire := scheduler.Expire{Store: db, MaxAge: maxAge, Location: shanghai, Batch: 2}
		vin := vinN(500)
		other := vinN(501) // its notices must not show in vin's list
		end0 := activateEndingAt(t, db, vin, "owner-1", t0.Add(5*24*time.Hour), t0)
		activateEndingAt(t, db, other, "owner-2", t0.Add(5*24*time.Hour), t0)
		runJob(t, remind, t0) // stage 7 for end0, both vehicles

		end1 := addPaidPeriod(t, db, vin, t0.Add(time.Hour), 31)
		runJob(t, remind, end1.Add(-29*24*time.Hour)) // stage 30 for end1

		// A notice about no coverage end, as payments and usage create.
		u := func(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
		at := u(t0.Add(2 * time.Hour))
		err := storetest.Exec(db, `INSERT INTO notices (id, vin, owner_id, kind, dedupe_key, stage, data, status, next_attempt_at, created_at, updated_at)
			VALUES ('ntc_paid', ?, 'owner-1', 'order.paid', 'order.paid:x', 0, '{}', 'pending', ?, ?, ?)`, string(vin), at, at, at)
		if err != nil {
			t.Fatal(err)
		}

		// A refund cuts the purchase two days after the trial's end: the
		// vehicle is covered until then.
		cut := u(end0.Add(2 * 24 * time.Hour))
		if err := storetest.Exec(db, `UPDATE periods SET ends_at = ? WHERE vin = ? AND seq = 1`, cut, string(vin)); err != nil {
			t.Fatal(err)
		}
		if err := storetest.Exec(db, `UPDATE vehicles SET coverage_ends_at = ? WHERE vin = ?`, cut, string(vin)); err != nil {
			t.Fatal(err)
		}
		runJob(t, remind, cut.Add(-12*time.Hour)) // stage 1 for the cut
		runJob(t, expire, cut.Add(time.Hour))     // expired at the cut
		// No period ends at end1 or at the cut any more (a later layout
		// could move them): the list must not depend on the periods.
		if err := storetest.Exec(db, `UPDATE periods SET ends_at = ?, refunded_at = ? WHERE vin = ? AND seq = 1`, end0, end0, string(vin)); err != nil {
			t.Fatal(err)
		}

		var want []string
		if err := storetest.Query(db, &want, `SELECT id FROM notices WHERE vin = ? ORDER BY created_at DESC, id DESC`, string(vin)); err != nil {
			t.Fatal(err)
		}
		var kinds []string
		if err := storetest.Query(db, &kinds, `SELECT kind || ':' || stage FROM notices WHERE vin = ? ORDER BY created_at DESC, id DESC`, string(vin)); err != nil {
			t.Fatal(err)
		}
		// Newest first: expired at the cut, stage 30 for end1 (its job ran
		// at end1 - 29 days, after the cut's stage-1 run at the cut - 12 h),
		// stage 1 for the cut, the payment, stage 7 for end0.
		if w := []string{"coverage.expired:0", "coverage.expiring:30", "coverage.expiring:1", "order.paid:0", "coverage.expiring:7"}; !slices.Equal(kinds, w) {
			t.Fatalf("the table holds %v for the vehicle, want %v", kinds, w)
		}
		ids := func(ns []billing.Notice) []string {
			var out []string
			for _, n := range ns {
				out = append(out, n.ID)
			}
			return out
		}
		if got := ids(listNotices(t, db, vin)); !slices.Equal(got, want) {
			t.Errorf("Notices = %v, want %v (every notice of the vehicle, newest first)", got, want)
		}
		if got, err := db.Notices(ctx, vin, 2); err != nil || !slices.Equal(ids(got), want[:2]) {
			t.Errorf("Notices(limit 2) = %v, %v, want %v", ids(got), err, want[:2])
		}
	})
}
