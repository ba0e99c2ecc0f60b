package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"entitlements/billing"
	"entitlements/store"
	"entitlements/store/storetest"
)

// preHistory are the migrations of a release without timeline history.
var preHistory = []int{1, 2, 3, 4, 10, 20, 21, 30, 31, 32, 33, 40, 41, 50, 60}

// legacyVehicle writes a vehicle and its trial as a release without
// timeline history left them (raw rows: that release's code is gone).
func legacyVehicle(t *testing.T, db *store.DB, vin billing.VIN, owner string, activated, updated time.Time, loc *time.Location) {
	t.Helper()
	tp := billing.TrialTerms{Months: 12}.TrialPeriod(vin, activated, loc)
	for _, s := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO vehicles (vin, owner_id, model, activated_at, coverage_ends_at, created_at, updated_at) VALUES (?, ?, 'SU7', ?, ?, ?, ?)`,
			[]any{string(vin), owner, activated.UTC(), tp.EndsAt.UTC(), activated.UTC(), updated.UTC()}},
		{`INSERT INTO periods (id, vin, seq, source, product, days, data_bytes_per_month, starts_at, ends_at, created_at, updated_at)
		  VALUES (?, ?, 0, 'trial', 'trial', 0, 0, ?, ?, ?, ?)`,
			[]any{"per_legacy_" + string(vin), string(vin), tp.StartsAt.UTC(), tp.EndsAt.UTC(), activated.UTC(), activated.UTC()}},
	} {
		if err := storetest.Exec(db, s.sql, s.args...); err != nil {
			t.Fatalf("legacy vehicle: %v", err)
		}
	}
}

// TestHistoryStartsAtTheUpgrade: the history migration records the
// timeline every vehicle has as its first version, recorded at the
// vehicle's last change; what was known before that is
// history_unavailable, and the next change is version 2.
func TestHistoryStartsAtTheUpgrade(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		ctx := context.Background()
		db, err := store.Open(ctx, storetest.Config(t, dialect))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if _, err := db.MigrateOnly(ctx, preHistory...); err != nil {
			t.Fatal(err)
		}
		vin := billing.VIN(billing.FixCheckDigit("LSVHS4E10P2000001"))
		activated := time.Date(2025, 11, 3, 9, 30, 0, 0, shanghai)
		updated := activated.Add(40 * 24 * time.Hour)
		legacyVehicle(t, db, vin, "alice", activated, updated, shanghai)
		// Two records of November received together, before the upgrade.
		e1, e2 := time.Date(2025, 11, 5, 10, 10, 0, 0, shanghai), time.Date(2025, 11, 6, 10, 10, 0, 0, shanghai)
		for _, s := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO usage_records (id, vin, category, bytes, started_at, ended_at, cycle, received_at) VALUES ('r1', ?, 'entertainment', 10, ?, ?, '2025-11', ?)`,
				[]any{string(vin), e1.Add(-10 * time.Minute).UTC(), e1.UTC(), updated.UTC()}},
			{`INSERT INTO usage_records (id, vin, category, bytes, started_at, ended_at, cycle, received_at) VALUES ('r2', ?, 'basic', 20, ?, ?, '2025-11', ?)`,
				[]any{string(vin), e2.Add(-10 * time.Minute).UTC(), e2.Add(time.Microsecond).UTC(), updated.UTC()}},
			{`INSERT INTO usage_cycles (vin, cycle, entertainment_bytes, basic_bytes, records, last_ended_at, updated_at) VALUES (?, '2025-11', 10, 20, 2, ?, ?)`,
				[]any{string(vin), e2.Add(time.Microsecond).UTC(), updated.UTC()}},
		} {
			if err := storetest.Exec(db, s.sql, s.args...); err != nil {
				t.Fatalf("legacy usage: %v", err)
			}
		}
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		// The records found by the migration rebuild November at any point.
		for _, c := range []struct {
			at          time.Time
			ent, basics int64
			asOf        time.Time
		}{
			{e1, 0, 0, time.Time{}},
			{e1.Add(time.Microsecond), 10, 0, e1},
			{e2.Add(time.Microsecond), 10, 0, e1},
			{e2.Add(2 * time.Microsecond), 10, 20, e2.Add(time.Microsecond)},
		} {
			s, err := db.SnapshotAt(ctx, vin, billing.Point{At: c.at, KnownAt: updated.Add(time.Hour)}, time.Time{}, shanghai)
			if u := s.At.Usage; err != nil || u.EntertainmentBytes != c.ent || u.BasicBytes != c.basics || !u.AsOf.Equal(c.asOf) {
				t.Errorf("usage at %s = %+v, %v; want %d/%d as of %s", c.at, s.At.Usage, err, c.ent, c.basics, c.asOf)
			}
		}
		hist, err := db.TimelineHistory(ctx, vin)
		if err != nil || len(hist) != 1 {
			t.Fatalf("TimelineHistory() = %+v, %v; want one version", hist, err)
		}
		if v := hist[0]; v.Version != 1 || v.Cause != "history.started" || !v.RecordedAt.Equal(updated) || v.OwnerID != "alice" || len(v.Periods) != 1 {
			t.Errorf("first version = %+v, want history.started at %s with alice's trial", v, updated)
		}
		now := updated.Add(24 * time.Hour)
		_, err = db.SnapshotAt(ctx, vin, billing.Point{KnownAt: updated.Add(-time.Microsecond)}, time.Time{}, shanghai)
		if !billing.IsCode(err, billing.EHistoryUnavailable) {
			t.Errorf("SnapshotAt(before the history) = %v, want %s", err, billing.EHistoryUnavailable)
		}
		s, err := db.SnapshotAt(ctx, vin, billing.Point{KnownAt: updated}, time.Time{}, shanghai)
		if err != nil || !s.Known || len(s.At.Timeline.Periods) != 1 || s.At.Vehicle.OwnerID != "alice" {
			t.Errorf("SnapshotAt(the upgrade) = %+v, %v; want alice's trial", s, err)
		}
		if _, err := db.TransferOwner(ctx, vin, "bob", now); err != nil {
			t.Fatal(err)
		}
		hist, err = db.TimelineHistory(ctx, vin)
		if err != nil || len(hist) != 2 || hist[0].Version != 2 || hist[0].Cause != string(billing.AuditOwnerTransferred) || hist[0].OwnerID != "bob" {
			t.Fatalf("TimelineHistory() after a transfer = %+v, %v", hist, err)
		}
		for _, c := range []struct {
			k     time.Time
			owner string
		}{{now.Add(-time.Microsecond), "alice"}, {now, "bob"}} {
			s, err := db.SnapshotAt(ctx, vin, billing.Point{KnownAt: c.k}, time.Time{}, shanghai)
			if err != nil || s.At.Vehicle.OwnerID != c.owner || s.Current.OwnerID != "bob" || s.At.Vehicle.Epoch != map[string]int64{"alice": 0, "bob": 1}[c.owner] {
				t.Errorf("SnapshotAt(%s) owner, current, epoch = %s %s %d, %v; want %s, bob", c.k, s.At.Vehicle.OwnerID, s.Current.OwnerID, s.At.Vehicle.Epoch, err, c.owner)
			}
		}
	})
}

// TestPointUsageFromRecords: a month's usage at a point counts the records
// received by as_known_at and, at a valid time, ended before it; a month
// whose records were pruned answers from its totals when they are exact,
// and is usage_history_pruned when they are not.
func TestPointUsageFromRecords(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		vin := billing.VIN(billing.FixCheckDigit("LSVHS4E10P2000002"))
		at := func(m time.Month, d, h int) time.Time { return time.Date(2026, m, d, h, 0, 0, 0, shanghai) }
		janEnd := time.Date(2026, 1, 31, 23, 30, 0, 0, shanghai)
		if _, _, err := db.Activate(ctx, vin, billing.Activation{ActivatedAt: at(1, 2, 9), OwnerID: "alice"},
			billing.TrialTerms{Months: 12, DataBytesPerMonth: 100}, shanghai, at(1, 2, 9)); err != nil {
			t.Fatal(err)
		}
		ingest := func(now time.Time, recs ...billing.UsageRecord) {
			t.Helper()
			if _, err := db.IngestUsage(ctx, recs, nil, shanghai, now); err != nil {
				t.Fatal(err)
			}
		}
		r := func(id string, bytes int64, start time.Time) billing.UsageRecord {
			return billing.UsageRecord{ID: id, VIN: vin, Category: billing.CategoryEntertainment, Bytes: bytes, StartedAt: start, EndedAt: start.Add(time.Hour)}
		}
		ingest(at(1, 11, 0), r("a", 10, at(1, 10, 8))) // ends Jan 10 09:00, received Jan 11
		ingest(at(1, 20, 0), r("b", 20, at(1, 15, 8)))
		ingest(at(2, 3, 0), r("c", 5, at(2, 1, 1)), r("d", 40, at(1, 31, 22))) // c counts in February; d is January's, late
		for _, c := range []struct {
			name string
			p    billing.Point
			used int64
			asOf time.Time
		}{
			{"now", billing.Point{KnownAt: at(2, 10, 0)}, 5, at(2, 1, 2)},
			{"January as known now", billing.Point{At: at(1, 31, 23), KnownAt: at(2, 10, 0)}, 30, at(1, 15, 9)},
			{"January's end as known now", billing.Point{At: janEnd, KnownAt: at(2, 10, 0)}, 70, at(1, 31, 23)},
			{"January's end as known Feb 2", billing.Point{At: janEnd, KnownAt: at(2, 2, 0)}, 30, at(1, 15, 9)},
			{"when b ended", billing.Point{At: at(1, 15, 9), KnownAt: at(2, 10, 0)}, 10, at(1, 10, 9)},
			{"just after b ended", billing.Point{At: at(1, 15, 9).Add(time.Microsecond), KnownAt: at(2, 10, 0)}, 30, at(1, 15, 9)},
			{"replay Jan 19", billing.Point{KnownAt: at(1, 19, 0)}, 10, at(1, 10, 9)},
			{"replay Feb 2", billing.Point{KnownAt: at(2, 2, 0)}, 0, at(1, 15, 9)},
		} {
			s, err := db.SnapshotAt(ctx, vin, c.p, time.Time{}, shanghai)
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			if u := s.At.Usage; u.EntertainmentBytes != c.used || !u.AsOf.Equal(c.asOf) {
				t.Errorf("%s: used %d as of %s, want %d as of %s", c.name, u.EntertainmentBytes, u.AsOf, c.used, c.asOf)
			}
		}
		// The retention window now starts in mid-January: January's records
		// may be pruned. Its totals still answer a point after its last
		// record, as known after its last arrival; nothing else does.
		horizon := at(1, 16, 0)
		if s, err := db.SnapshotAt(ctx, vin, billing.Point{At: janEnd, KnownAt: at(2, 10, 0)}, horizon, shanghai); err != nil || s.At.Usage.EntertainmentBytes != 70 {
			t.Errorf("a point after January's last record = %+v, %v; want 70 from the totals", s.At.Usage, err)
		}
		for _, p := range []billing.Point{{At: at(1, 20, 0), KnownAt: at(2, 10, 0)}, {At: janEnd, KnownAt: at(2, 2, 0)}} {
			if _, err := db.SnapshotAt(ctx, vin, p, horizon, shanghai); !billing.IsCode(err, billing.EUsageHistoryPruned) {
				t.Errorf("SnapshotAt(%+v) past retention = %v, want %s", p, err, billing.EUsageHistoryPruned)
			}
		}
		// Pruning with a cutoff in March deletes what January and February
		// brought, with their records.
		arrivals := func() (n int64) {
			t.Helper()
			if err := storetest.Query(db, &n, `SELECT COUNT(*) FROM usage_arrivals`); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := arrivals(); n != 4 {
			t.Fatalf("usage_arrivals has %d rows, want 4 (one per batch and month)", n)
		}
		if n, err := db.DeleteUsageBefore(ctx, at(3, 2, 0), shanghai, 100); err != nil || n != 4 {
			t.Fatalf("DeleteUsageBefore() = %d, %v; want 4 records", n, err)
		}
		if n := arrivals(); n != 0 {
			t.Errorf("usage_arrivals has %d rows after pruning, want 0", n)
		}
	})
}

// TestSeededVehiclesHaveAFirstVersion: seeded vehicles are versioned like
// activated ones, so that point-in-time reads answer for them.
func TestSeededVehiclesHaveAFirstVersion(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		ctx := context.Background()
		now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
		cat := billing.Catalog{Trial: trial, Products: []billing.Product{
			{Code: "monthly", Name: "m", PriceFen: 1990, Days: 31}, {Code: "yearly", Name: "y", PriceFen: 19900, Days: 365}}}
		if err := db.Seed(ctx, 50, store.DefaultSeedMix, cat, shanghai, now); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 50; i += 7 {
			vin := store.SeedVIN(i)
			plain, err := db.Snapshot(ctx, vin, billing.CycleAt(now, shanghai))
			if err != nil {
				t.Fatal(err)
			}
			s, err := db.SnapshotAt(ctx, vin, billing.Point{KnownAt: now}, time.Time{}, shanghai)
			if err != nil || !s.Known || len(s.At.Timeline.Periods) != len(plain.Timeline.Periods) || s.At.Vehicle.OwnerID != plain.Vehicle.OwnerID {
				t.Errorf("SnapshotAt(%s) = %+v, %v; want the seeded timeline %+v", vin, s.At, err, plain.Timeline)
			}
			hist, err := db.TimelineHistory(ctx, vin)
			if err != nil || len(hist) != 1 || hist[0].Cause != "seeded" {
				t.Errorf("TimelineHistory(%s) = %+v, %v; want one seeded version", vin, hist, err)
			}
			// Their usage rebuilt at a point equals their totals.
			if s.At.Usage.EntertainmentBytes != plain.Usage.EntertainmentBytes || !s.At.Usage.AsOf.Equal(plain.Usage.AsOf) {
				t.Errorf("usage of %s as known now = %+v, want the totals %+v", vin, s.At.Usage, plain.Usage)
			}
			if plain.Usage.AsOf.IsZero() {
				continue
			}
			at := billing.Point{At: plain.Usage.AsOf.Add(time.Microsecond), KnownAt: now}
			if a, err := db.SnapshotAt(ctx, vin, at, time.Time{}, shanghai); err != nil || a.At.Usage.EntertainmentBytes != plain.Usage.EntertainmentBytes {
				t.Errorf("usage of %s just after its last record = %+v, %v; want %d", vin, a.At.Usage, err, plain.Usage.EntertainmentBytes)
			}
		}
	})
}

// TestUnversionedChangeIsCaughtUp: a change written without a version (by
// a release without history, during a rolling upgrade) is recorded with
// the vehicle's next version, which then compares the whole timeline.
func TestUnversionedChangeIsCaughtUp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		vin := billing.VIN(billing.FixCheckDigit("LSVHS4E10P2000003"))
		t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, shanghai)
		t2 := t0.Add(48 * time.Hour)
		activateThenChangeUnversioned(t, db, vin, "alice", t0, nil)
		if _, err := db.TransferOwner(ctx, vin, "bob", t2); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			k       time.Time
			periods int
			owner   string
		}{{t2.Add(-time.Microsecond), 1, "alice"}, {t2, 2, "bob"}} {
			s, err := db.SnapshotAt(ctx, vin, billing.Point{KnownAt: c.k}, time.Time{}, shanghai)
			if err != nil || len(s.At.Timeline.Periods) != c.periods || s.At.Vehicle.OwnerID != c.owner {
				t.Errorf("SnapshotAt(%s) = %d periods, owner %s, %v; want %d, %s", c.k, len(s.At.Timeline.Periods), s.At.Vehicle.OwnerID, err, c.periods, c.owner)
			}
		}
		hist, err := db.TimelineHistory(ctx, vin)
		if err != nil || len(hist) != 2 || len(hist[0].Periods) != 1 || hist[0].Periods[0].ID != "per_old" {
			t.Errorf("TimelineHistory() = %+v, %v; want the transfer's version to bring per_old", hist, err)
		}
	})
}

// TestPruneArrivalsByLocalCycle: usage_arrivals are keyed by the cycle in
// billing's location, and pruning counts cycles the same way. At
// 2026-03-31T17:00Z it is already April 1 in Shanghai (but still March in
// UTC): March's local cycle has ended, so its arrivals go, and April's
// stay.
func TestPruneArrivalsByLocalCycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		ctx := context.Background()
		vin := billing.VIN(billing.FixCheckDigit("LSVHS4E10P2000004"))
		activated := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		if _, _, err := db.Activate(ctx, vin, billing.Activation{ActivatedAt: activated, OwnerID: "alice"},
			billing.TrialTerms{Months: 12, DataBytesPerMonth: 1 << 30}, shanghai, activated); err != nil {
			t.Fatal(err)
		}
		rec := func(id string, start time.Time) billing.UsageRecord {
			return billing.UsageRecord{ID: id, VIN: vin, Category: billing.CategoryEntertainment, Bytes: 10, StartedAt: start, EndedAt: start.Add(10 * time.Minute)}
		}
		march := time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)  // March in both
		april := time.Date(2026, 3, 31, 16, 30, 0, 0, time.UTC) // April 1 00:30 in Shanghai, March in UTC
		for _, r := range []billing.UsageRecord{rec("m", march), rec("a", april)} {
			if _, err := db.IngestUsage(ctx, []billing.UsageRecord{r}, nil, shanghai, r.EndedAt.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		cycles := func() (keys []string) {
			t.Helper()
			if err := storetest.Query(db, &keys, `SELECT cycle FROM usage_arrivals ORDER BY cycle`); err != nil {
				t.Fatal(err)
			}
			return keys
		}
		if got := cycles(); !slices.Equal(got, []string{"2026-03", "2026-04"}) {
			t.Fatalf("usage_arrivals cycles = %v, want [2026-03 2026-04] (Shanghai months)", got)
		}
		cutoff := time.Date(2026, 3, 31, 17, 0, 0, 0, time.UTC)
		if n, err := db.DeleteUsageBefore(ctx, cutoff, shanghai, 100); err != nil || n != 2 {
			t.Fatalf("DeleteUsageBefore() = %d, %v; want both records", n, err)
		}
		if got := cycles(); !slices.Equal(got, []string{"2026-04"}) {
			t.Errorf("after pruning at %s (April in Shanghai), usage_arrivals cycles = %v, want [2026-04]", cutoff, got)
		}
	})
}

// TestUnversionedChangeIsCaughtUpByAPayment: a payment reads the version
// guard with the timeline it plans from (one statement); a change written
// without a version before it is still caught up by the payment's version,
// which then brings both the unversioned period and the paid one.
func TestUnversionedChangeIsCaughtUpByAPayment(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		vin := billing.VIN(billing.FixCheckDigit("LSVHS4E10P2000004"))
		t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, shanghai)
		t1, t2 := t0.Add(24*time.Hour), t0.Add(48*time.Hour)
		// refunded, so that the payment's layout leaves it as it is
		activateThenChangeUnversioned(t, db, vin, "o1", t0, &t1)
		orderID := payNewOrder(t, db, vin, "o1", "1", t2, t2)
		hist, err := db.TimelineHistory(ctx, vin)
		if err != nil || len(hist) != 2 {
			t.Fatalf("TimelineHistory() = %+v, %v; want the activation's and the payment's versions", hist, err)
		}
		ids := map[string]bool{}
		for _, p := range hist[0].Periods {
			ids[p.ID] = true
		}
		if !ids["per_old"] || len(ids) != 2 || hist[0].OrderID != orderID {
			t.Errorf("the payment's version = %+v; want it to bring per_old and the paid period", hist[0])
		}
	})
}

// activateThenChangeUnversioned activates vin for owner at t0 and then,
// a day later, changes its timeline by hand without a version, as a
// release without history would: a period per_old (refunded at refunded,
// when not nil) and the vehicle's updated_at.
func activateThenChangeUnversioned(t *testing.T, db *store.DB, vin billing.VIN, owner string, t0 time.Time, refunded *time.Time) {
	t.Helper()
	if _, _, err := db.Activate(context.Background(), vin, billing.Activation{ActivatedAt: t0, OwnerID: owner}, billing.TrialTerms{Months: 12}, shanghai, t0); err != nil {
		t.Fatal(err)
	}
	t1 := t0.Add(24 * time.Hour)
	var refundedAt any
	if refunded != nil {
		refundedAt = refunded.UTC()
	}
	for _, s := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO periods (id, vin, seq, source, order_id, product, days, data_bytes_per_month, paid_at, starts_at, ends_at, refunded_at, created_at, updated_at)
		  VALUES ('per_old', ?, 1, 'order', 'ord_old', 'monthly', 31, 0, ?, ?, ?, ?, ?, ?)`,
			[]any{string(vin), t1.UTC(), t0.AddDate(1, 0, 0).UTC(), t0.AddDate(1, 1, 0).UTC(), refundedAt, t1.UTC(), t1.UTC()}},
		{`UPDATE vehicles SET updated_at = ? WHERE vin = ?`, []any{t1.UTC(), string(vin)}},
	} {
		if err := storetest.Exec(db, s.sql, s.args...); err != nil {
			t.Fatal(err)
		}
	}
}
