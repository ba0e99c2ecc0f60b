package store_test

import (
	"context"
	"testing"
	"time"

	"entitlements/billing"
	"entitlements/store"
	"entitlements/store/storetest"
)

// BenchmarkCreateReminders runs the reminder job over a seeded fleet of
// 20 000 vehicles (store.DefaultSeedMix) with stages 30, 7 and 1 days,
// from an empty outbox each time: one operation is one full run.
func BenchmarkCreateReminders(b *testing.B) {
	for _, dialect := range storetest.Backends {
		b.Run(dialect, func(b *testing.B) {
			db := storetest.Open(b, dialect)
			ctx := context.Background()
			now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
			cat := billing.Catalog{Trial: trial, Products: []billing.Product{
				{Code: "monthly", Name: "m", PriceFen: 1990, Days: 31}, {Code: "yearly", Name: "y", PriceFen: 19900, Days: 365}}}
			if err := db.Seed(ctx, 20_000, store.DefaultSeedMix, cat, shanghai, now); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if err := storetest.Exec(db, `DELETE FROM notices`); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				n, err := db.CreateReminders(ctx, now, []int{30, 7, 1}, shanghai, 2000)
				if err != nil || n == 0 {
					b.Fatalf("CreateReminders = %d, %v", n, err)
				}
			}
		})
	}
}
