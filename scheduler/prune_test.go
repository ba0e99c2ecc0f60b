package scheduler_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"entitlements/billing"
	"entitlements/scheduler"
	"entitlements/store"
	"entitlements/store/storetest"
)

func TestPruneUsageDeletesOldRecordsKeepsAggregates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		ctx := context.Background()
		loc, _ := time.LoadLocation("Asia/Shanghai")
		db := storetest.Open(t, dialect)
		vin := billing.VIN(billing.FixCheckDigit("LSVAX4E10P5000001"))
		activated := time.Date(2025, 1, 10, 9, 0, 0, 0, loc)
		if _, _, err := db.Activate(ctx, vin, billing.Activation{ActivatedAt: activated, OwnerID: "o1"}, billing.TrialTerms{Months: 12, DataBytesPerMonth: 1 << 30}, loc, activated); err != nil {
			t.Fatal(err)
		}
		// 23 old records (January 2025) and 2 recent ones (June 2026).
		jan := time.Date(2025, 1, 20, 8, 0, 0, 0, loc)
		june := time.Date(2026, 6, 10, 8, 0, 0, 0, loc)
		var recs []billing.UsageRecord
		for i := 0; i < 25; i++ {
			start := jan.Add(time.Duration(i) * time.Minute)
			if i >= 23 {
				start = june.Add(time.Duration(i) * time.Minute)
			}
			recs = append(recs, billing.UsageRecord{ID: fmt.Sprintf("r%02d", i), VIN: vin, Category: billing.CategoryEntertainment,
				Bytes: 10, StartedAt: start, EndedAt: start.Add(time.Minute)})
		}
		now := time.Date(2026, 6, 15, 12, 0, 0, 0, loc)
		if res, err := db.IngestUsage(ctx, recs, nil, loc, now); err != nil || res.Accepted != 25 {
			t.Fatalf("IngestUsage = %+v, %v", res, err)
		}

		job := &scheduler.PruneUsage{Store: db, Retention: 9600 * time.Hour, Location: shanghai, Batch: 5}
		if err := job.Run(ctx, now); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if n := countRecords(t, db); n != 2 {
			t.Errorf("records after prune = %d, want 2 (the June ones)", n)
		}
		if err := job.Run(ctx, now); err != nil {
			t.Fatalf("second Run: %v", err)
		}
		snap, err := db.Snapshot(ctx, vin, billing.CycleAt(jan, loc))
		u := snap.Usage
		if err != nil || u.EntertainmentBytes != 230 {
			t.Errorf("January usage after prune = %d, %v, want 230: aggregates stay", u.EntertainmentBytes, err)
		}
	})
}

func TestPruneUsageStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	job := &scheduler.PruneUsage{Store: storetest.Open(t, store.SQLite), Retention: time.Hour, Location: shanghai}
	if err := job.Run(ctx, time.Now()); err == nil {
		t.Error("Run with a cancelled context = nil, want an error")
	}
	if err := (&scheduler.PruneUsage{Store: nil}).Run(context.Background(), time.Now()); err == nil {
		t.Error("Run without retention = nil, want an error")
	}
}

func countRecords(t *testing.T, db *store.DB) int64 {
	t.Helper()
	var n int64
	if err := storetest.Query(db, &n, `SELECT COUNT(*) FROM usage_records`); err != nil {
		t.Fatal(err)
	}
	return n
}
