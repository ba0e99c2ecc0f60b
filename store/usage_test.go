package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"entitlements/billing"
	"entitlements/store"
	"entitlements/store/storetest"
)

// activateFleet activates n vehicles on 2026-03-01 and returns their VINs.
func activateFleet(t testing.TB, db *store.DB, n int) []billing.VIN {
	t.Helper()
	trial := billing.TrialTerms{Months: 12, DataBytesPerMonth: 15 << 30}
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, shanghai)
	vins := make([]billing.VIN, n)
	for i := range vins {
		vins[i] = billing.VIN(billing.FixCheckDigit(fmt.Sprintf("LSVAX4E10P4%06d", i)))
		if _, _, err := db.Activate(context.Background(), vins[i], billing.Activation{ActivatedAt: at, OwnerID: "o1"}, trial, shanghai, at); err != nil {
			t.Fatalf("Activate: %v", err)
		}
	}
	return vins
}

// records builds n entertainment records of size bytes over vins, one a
// second from start.
func records(prefix string, n int, size int64, vins []billing.VIN, start time.Time) []billing.UsageRecord {
	out := make([]billing.UsageRecord, n)
	for i := range out {
		s := start.Add(time.Duration(i) * time.Second)
		out[i] = billing.UsageRecord{ID: fmt.Sprintf("%s-%06d", prefix, i), VIN: vins[i%len(vins)],
			Category: billing.CategoryEntertainment, Bytes: size, StartedAt: s, EndedAt: s.Add(10 * time.Minute)}
	}
	return out
}

// TestFullBatchPartlySeen ingests a batch of the largest size over more
// vehicles than an SQLite statement takes (so in several statements
// there, one on PostgreSQL), after a batch that brought some of its
// records already: each record is counted once, on its own vehicle, with
// its own bytes, and each vehicle's total is its records' sum.
func TestFullBatchPartlySeen(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		db := storetest.Open(t, dialect)
		vins := activateFleet(t, db, 1500)
		now := time.Date(2026, 6, 15, 12, 0, 0, 0, shanghai)
		all := records("full", billing.MaxUsageBatch, 0, vins, now.Add(-48*time.Hour))
		var want int64
		for i := range all {
			all[i].Bytes = int64(1000 + i) // a column out of place shows in the sums
			want += all[i].Bytes
		}
		first, err := db.IngestUsage(context.Background(), all[2000:6000], []int{80, 100}, shanghai, now)
		if err != nil || first.Accepted != 4000 {
			t.Fatalf("first batch: %+v, %v", first, err)
		}
		res, err := db.IngestUsage(context.Background(), all, []int{80, 100}, shanghai, now)
		if err != nil {
			t.Fatal(err)
		}
		if res.Accepted != 6000 || res.Duplicates != 4000 || len(res.Rejected) != 0 {
			t.Errorf("full batch: accepted %d, duplicates %d, rejected %d; want 6000, 4000, 0", res.Accepted, res.Duplicates, len(res.Rejected))
		}
		var sums struct{ Bytes, Records, Rows int64 }
		if err := storetest.Query(db, &sums, `SELECT SUM(entertainment_bytes) AS bytes, SUM(records) AS records, COUNT(*) AS rows FROM usage_cycles`); err != nil {
			t.Fatal(err)
		}
		if sums.Bytes != want || sums.Records != int64(len(all)) || sums.Rows != int64(len(vins)) {
			t.Errorf("usage_cycles: %+v, want %d bytes, %d records, %d rows", sums, want, len(all), len(vins))
		}
		// The last vehicle's records are those i with i % 1500 == 1499.
		var last int64
		for i := 1499; i < len(all); i += 1500 {
			last += all[i].Bytes
		}
		var got int64
		if err := storetest.Query(db, &got, `SELECT entertainment_bytes FROM usage_cycles WHERE vin = ?`, string(vins[1499])); err != nil || got != last {
			t.Errorf("last vehicle's total = %d (%v), want %d", got, err, last)
		}
		var arrived int64
		if err := storetest.Query(db, &arrived, `SELECT COUNT(*) FROM usage_arrivals`); err != nil || arrived != 2*int64(len(vins)) {
			t.Errorf("usage_arrivals rows = %d (%v), want %d (a vehicle's per batch)", arrived, err, 2*len(vins))
		}
	})
}

// BenchmarkIngestUsage ingests batches of 10 000 records over 1000
// vehicles straight into the store (no HTTP, no JSON) and reports records
// per second.
func BenchmarkIngestUsage(b *testing.B) {
	for _, dialect := range storetest.Backends {
		b.Run(dialect, func(b *testing.B) {
			db := storetest.Open(b, dialect)
			vins := activateFleet(b, db, 1000)
			now := time.Date(2026, 6, 15, 12, 0, 0, 0, shanghai)
			// Like the feed: each batch a day's later records (10 000 s of
			// them), arriving a day late.
			batches := make([][]billing.UsageRecord, b.N)
			for i := range batches {
				batches[i] = records(fmt.Sprintf("b%d", i), billing.MaxUsageBatch, 1000, vins, now.Add(-100*24*time.Hour).Add(time.Duration(i)*24*time.Hour))
			}
			// The first batch of each size prepares its bulk statements
			// (once per process); measure the steady state.
			warm := records("warm", billing.MaxUsageBatch, 1000, vins, now.Add(-200*24*time.Hour))
			if _, err := db.IngestUsage(context.Background(), warm, []int{80, 100}, shanghai, now); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := db.IngestUsage(context.Background(), batches[i], []int{80, 100}, shanghai, now)
				if err != nil || res.Accepted != billing.MaxUsageBatch {
					b.Fatalf("IngestUsage = %+v, %v", res.Accepted, err)
				}
			}
			b.ReportMetric(float64(b.N*billing.MaxUsageBatch)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkIngestUsageOverTheFleet ingests records over a seeded fleet in
// write transactions of 10 000 to 200 000 records, spread over as many
// vehicles (one a vehicle) or ten a vehicle (a carrier's batch), and
// reports the cost a record. 10 000 records is the harness's batch; the
// larger transactions are the most that folding buffered batches into
// their totals later (an append-only log of batches) could share among
// them, each page of the totals and arrivals written once for many
// vehicles. It runs on the harness's database (docs/performance.md),
// which it adds usage to:
//
//	ENTITLEMENTS_BENCH_SQLITE=/tmp/entitlements-bench/bench-1000000.db \
//	  go test ./store -run X -bench IngestUsageOverTheFleet -benchtime 3x
//
// ENTITLEMENTS_BENCH_VEHICLES is the seeded fleet's size (1 000 000).
func BenchmarkIngestUsageOverTheFleet(b *testing.B) {
	path := os.Getenv("ENTITLEMENTS_BENCH_SQLITE")
	if path == "" {
		b.Skip("set ENTITLEMENTS_BENCH_SQLITE to a database seeded by the load harness")
	}
	fleet := 1_000_000
	if v := os.Getenv("ENTITLEMENTS_BENCH_VEHICLES"); v != "" {
		var err error
		if fleet, err = strconv.Atoi(v); err != nil || fleet < 200_000 {
			b.Fatalf("ENTITLEMENTS_BENCH_VEHICLES=%q: want a fleet of at least 200000", v)
		}
	}
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: path})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	now := time.Now().UTC()
	run := strconv.FormatInt(now.UnixNano(), 36)
	rng := rand.New(rand.NewPCG(uint64(now.UnixNano()), 1))
	batch := 0
	for _, c := range []struct{ records, perVehicle int }{
		{10_000, 1}, {50_000, 1}, {200_000, 1}, {10_000, 10}, {200_000, 10},
	} {
		b.Run(fmt.Sprintf("records=%d/per-vehicle=%d", c.records, c.perVehicle), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				batch++
				vins := rng.Perm(fleet)[:c.records/c.perVehicle]
				recs := make([]billing.UsageRecord, c.records)
				for i := range recs {
					s := now.Add(-time.Hour).Add(time.Duration(i/len(vins)) * time.Minute)
					recs[i] = billing.UsageRecord{ID: fmt.Sprintf("fleet-%s-%d-%d", run, batch, i), VIN: store.SeedVIN(vins[i%len(vins)]),
						Category: billing.CategoryEntertainment, Bytes: 1 << 20, StartedAt: s, EndedAt: s.Add(time.Minute)}
				}
				b.StartTimer()
				res, err := db.IngestUsage(ctx, recs, []int{80, 100}, shanghai, now)
				if err != nil || res.Accepted != c.records {
					b.Fatalf("IngestUsage = %+v, %v", res, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*c.records), "µs/record")
		})
	}
}

// TestQuotaNoticesReachSmallAllowances: ingest skips loading the periods
// of cycles that cannot have crossed a threshold of the smallest stored
// allowance. A vehicle whose allowance is far below the others' must still
// be noticed, and one far below its own thresholds must not.
func TestQuotaNoticesReachSmallAllowances(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		db := storetest.Open(t, dialect)
		ctx := context.Background()
		at := time.Date(2026, 3, 1, 8, 0, 0, 0, shanghai)
		big := billing.VIN(billing.FixCheckDigit("LSVAX4E10P4900001"))
		small := billing.VIN(billing.FixCheckDigit("LSVAX4E10P4900002"))
		for _, v := range []struct {
			vin       billing.VIN
			owner     string
			allowance int64
		}{{big, "o-big", 15 << 30}, {small, "o-small", 100 << 20}} {
			trial := billing.TrialTerms{Months: 12, DataBytesPerMonth: v.allowance}
			if _, _, err := db.Activate(ctx, v.vin, billing.Activation{ActivatedAt: at, OwnerID: v.owner}, trial, shanghai, at); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Date(2026, 6, 15, 12, 0, 0, 0, shanghai)
		ingest := func(id string, vin billing.VIN, bytes int64) {
			t.Helper()
			s := now.Add(-24 * time.Hour)
			rec := billing.UsageRecord{ID: id, VIN: vin, Category: billing.CategoryEntertainment, Bytes: bytes, StartedAt: s, EndedAt: s.Add(time.Minute)}
			if res, err := db.IngestUsage(ctx, []billing.UsageRecord{rec}, []int{80, 100}, shanghai, now); err != nil || res.Accepted != 1 {
				t.Fatalf("IngestUsage(%s) = %+v, %v", id, res, err)
			}
		}
		thresholds := func(vin billing.VIN) []any {
			t.Helper()
			ns, err := db.Notices(ctx, vin, 50)
			if err != nil {
				t.Fatal(err)
			}
			var out []any
			for _, n := range ns {
				if n.Kind == billing.NoticeQuotaThreshold {
					out = append(out, n.Data["threshold"], n.OwnerID)
				}
			}
			return out
		}
		// 90 MiB: 90 % of the small allowance, 0.6 % of the large one.
		ingest("s1", small, 90<<20)
		ingest("b1", big, 90<<20)
		if got := thresholds(small); len(got) != 2 || fmt.Sprint(got) != "[80 o-small]" {
			t.Errorf("small allowance, 90 %%: quota notices %v, want [80 o-small]", got)
		}
		if got := thresholds(big); len(got) != 0 {
			t.Errorf("large allowance, 0.6 %%: quota notices %v, want none", got)
		}
		// The large allowance's own 80 % is still noticed.
		ingest("b2", big, 12<<30)
		if got := thresholds(big); fmt.Sprint(got) != "[80 o-big]" {
			t.Errorf("large allowance, 80 %%: quota notices %v, want [80 o-big]", got)
		}
	})
}

// BenchmarkSnapshotWithUsageHistory reads the entitlement snapshot (no
// snapshot cache) of vehicles with two years of monthly usage, in their
// free year (one period) or with two packages bought (three periods): the
// read takes as_of as the maximum over every month's aggregate, once per
// period row.
func BenchmarkSnapshotWithUsageHistory(b *testing.B) {
	for _, dialect := range storetest.Backends {
		for _, packages := range []int{0, 2} {
			b.Run(fmt.Sprintf("%s/periods=%d", dialect, 1+packages), func(b *testing.B) {
				benchmarkSnapshot(b, dialect, packages)
			})
		}
	}
}

func benchmarkSnapshot(b *testing.B, dialect string, packages int) {
	cfg := storetest.Config(b, dialect)
	cfg.SnapshotCache = 0 // every read goes to the database
	db, err := store.Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	vins := activateFleet(b, db, 100)
	ctx := context.Background()
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, shanghai)
	for m := 0; m < 24; m++ {
		day := start.AddDate(0, m, 0)
		if _, err := db.IngestUsage(ctx, records(fmt.Sprintf("m%d", m), 200, 1000, vins, day), nil, shanghai, day.Add(24*time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	for _, v := range vins {
		for seq := 1; seq <= packages; seq++ {
			at := start.AddDate(1, seq, 0).UTC()
			err := storetest.Exec(db, `INSERT INTO periods (id, vin, seq, source, order_id, product, days, data_bytes_per_month,
				paid_at, starts_at, ends_at, created_at, updated_at) VALUES (?, ?, ?, 'order', ?, 'monthly', 31, 0, ?, ?, ?, ?, ?)`,
				fmt.Sprintf("per_%s_%d", v, seq), string(v), seq, fmt.Sprintf("ord_%s_%d", v, seq), at, at, at.AddDate(0, 1, 0), at, at)
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	cycle := billing.CycleAt(start.AddDate(0, 23, 0), shanghai)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := db.Snapshot(ctx, vins[i%len(vins)], cycle)
		if err != nil || s.Usage.AsOf.IsZero() || len(s.Timeline.Periods) != 1+packages {
			b.Fatalf("Snapshot = %+v, %d periods, %v", s.Usage, len(s.Timeline.Periods), err)
		}
	}
}

// TestSnapshotAsOfWithPackages: as_of is read on the trial's row of the
// snapshot (see snapshotQuery); a car with packages bought, whose
// snapshot has a row per period, still gets it, and from every month.
func TestSnapshotAsOfWithPackages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		ctx := context.Background()
		v := activateFleet(t, db, 1)[0]
		may := time.Date(2026, 5, 31, 23, 0, 0, 0, shanghai)
		june := time.Date(2026, 6, 10, 9, 0, 0, 0, shanghai)
		recs := []billing.UsageRecord{
			{ID: "may-long", VIN: v, Category: billing.CategoryBasic, Bytes: 1, StartedAt: may, EndedAt: june.Add(time.Hour)},
			{ID: "june", VIN: v, Category: billing.CategoryBasic, Bytes: 1, StartedAt: june, EndedAt: june.Add(10 * time.Minute)},
		}
		if _, err := db.IngestUsage(ctx, recs, nil, shanghai, june.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		for seq := 1; seq <= 2; seq++ {
			at := time.Date(2027, 3, seq, 0, 0, 0, 0, time.UTC)
			err := storetest.Exec(db, `INSERT INTO periods (id, vin, seq, source, order_id, product, days, data_bytes_per_month,
				paid_at, starts_at, ends_at, created_at, updated_at) VALUES (?, ?, ?, 'order', ?, 'monthly', 31, 0, ?, ?, ?, ?, ?)`,
				fmt.Sprintf("per_t_%d", seq), string(v), seq, fmt.Sprintf("ord_t_%d", seq), at, at, at.AddDate(0, 1, 0), at, at)
			if err != nil {
				t.Fatal(err)
			}
		}
		db.ForgetSnapshots()
		s, err := db.Snapshot(ctx, v, billing.CycleAt(june, shanghai))
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Timeline.Periods) != 3 || !s.Usage.AsOf.Equal(june.Add(time.Hour)) {
			t.Errorf("snapshot: %d periods, as_of %s; want 3 and %s (the May record's end)", len(s.Timeline.Periods), s.Usage.AsOf, june.Add(time.Hour))
		}
	})
}
