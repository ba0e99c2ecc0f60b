package store_test

import (
	"context"
	"fmt"
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
			// The first batch prepares the bulk statements (once per
			// process); measure the steady state.
			warm := records("warm", 10, 1000, vins, now.Add(-200*24*time.Hour))
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
