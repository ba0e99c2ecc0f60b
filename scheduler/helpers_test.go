package scheduler_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"entitlements/billing"
	"entitlements/store"
	"entitlements/store/storetest"
)

var shanghai = mustZone("Asia/Shanghai")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

var (
	trial  = billing.TrialTerms{Months: 12, DataBytesPerMonth: 15 << 30}
	stages = []int{30, 7, 1}
	maxAge = 7 * 24 * time.Hour
	ctx    = context.Background()
)

// vinN returns a valid VIN numbered n.
func vinN(n int) billing.VIN {
	return billing.VIN(billing.FixCheckDigit(fmt.Sprintf("LSVAX4E10P%07d", n)))
}

// activateEndingAt activates vin so that its trial ends at local midnight
// of the day of end (activated 12 months earlier), and returns the exact
// end.
func activateEndingAt(t testing.TB, db *store.DB, vin billing.VIN, owner string, end, now time.Time) time.Time {
	t.Helper()
	at := billing.AddMonthsClamped(end, -12, shanghai).Add(10 * time.Hour)
	if _, _, err := db.Activate(ctx, vin, billing.Activation{ActivatedAt: at, OwnerID: owner, Model: "SU7"}, trial, shanghai, now); err != nil {
		t.Fatalf("Activate(%s): %v", vin, err)
	}
	tl, err := db.Timeline(ctx, vin)
	if err != nil {
		t.Fatal(err)
	}
	return tl.End()
}

// addPaidPeriod stands in for a paid order until orders exist: it appends
// a paid period by the PaidStart rule and keeps coverage_ends_at and
// covered_since up to date, as the store does in the payment transaction.
// It returns the period's end.
func addPaidPeriod(t testing.TB, db *store.DB, vin billing.VIN, paidAt time.Time, days int) time.Time {
	t.Helper()
	tl, err := db.Timeline(ctx, vin)
	if err != nil {
		t.Fatal(err)
	}
	start := billing.PaidStart(paidAt, tl.End())
	end := billing.PaidEnd(start, days, shanghai)
	u := func(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
	err = storetest.Exec(db, `INSERT INTO periods (id, vin, seq, source, order_id, product, days, data_bytes_per_month, paid_at,
		starts_at, ends_at, created_at, updated_at) VALUES (?, ?, ?, 'order', ?, 'monthly', ?, 0, ?, ?, ?, ?, ?)`,
		fmt.Sprintf("per_%s_%d", vin, tl.NextSeq()), string(vin), tl.NextSeq(), fmt.Sprintf("ord_%s_%d", vin, tl.NextSeq()),
		days, u(paidAt), u(start), u(end), u(paidAt), u(paidAt))
	if err != nil {
		t.Fatalf("insert paid period: %v", err)
	}
	tl.Periods = append(tl.Periods, billing.Period{StartsAt: start, EndsAt: end, Seq: tl.NextSeq()})
	if err := storetest.Exec(db, `UPDATE vehicles SET coverage_ends_at = ?, covered_since = ? WHERE vin = ?`, u(end), u(tl.CoveredSince()), string(vin)); err != nil {
		t.Fatalf("update coverage end: %v", err)
	}
	return end
}

func listNotices(t testing.TB, db *store.DB, vin billing.VIN) []billing.Notice {
	t.Helper()
	ns, err := db.Notices(ctx, vin, 100)
	if err != nil {
		t.Fatalf("Notices(%s): %v", vin, err)
	}
	return ns
}

// ofKind returns the notices of kind, oldest first.
func ofKind(ns []billing.Notice, kind billing.NoticeKind) []billing.Notice {
	var out []billing.Notice
	for i := len(ns) - 1; i >= 0; i-- {
		if ns[i].Kind == kind {
			out = append(out, ns[i])
		}
	}
	return out
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex // protects t
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func runJob(t testing.TB, j interface {
	Run(context.Context, time.Time) error
}, now time.Time) {
	t.Helper()
	if err := j.Run(ctx, now); err != nil {
		t.Fatalf("Run(%s): %v", now.Format(time.RFC3339), err)
	}
}
