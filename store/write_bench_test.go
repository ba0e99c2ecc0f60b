package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"entitlements/billing"
	"entitlements/store"
	"entitlements/store/storetest"
)

// Benchmarks of the write path straight into the store (no HTTP, no
// JSON): one order created and one payment applied per operation, from
// 8 goroutines per core, as notifications arrive from the provider.

var benchMonthly = billing.Product{Code: "monthly", Name: "m", PriceFen: 1990, Days: 31, DataBytesPerMonth: 15 << 30}

func renderOrder(o billing.Order) (int, []byte, error) { return 201, []byte(o.ID), nil }

func benchFleet(b *testing.B, dialect string, cars int) (*store.DB, []billing.VIN, time.Time) {
	db := storetest.Open(b, dialect)
	vins := activateFleet(b, db, cars)
	return db, vins, time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
}

func createOrders(b *testing.B, db *store.DB, vins []billing.VIN, n int, now time.Time) []billing.Order {
	out := make([]billing.Order, n)
	for i := range out {
		o := billing.NewOrder(vins[i%len(vins)], "o1", benchMonthly, now, time.Hour)
		k := billing.IdempotencyKey{Scope: "owner:o1", Key: fmt.Sprintf("k%d-%d", n, i), RequestHash: "h"}
		res, err := db.CreateOrder(context.Background(), o, k, renderOrder)
		if err != nil {
			b.Fatal(err)
		}
		o.ID = string(res.Body)
		out[i] = o
	}
	return out
}

// BenchmarkApplyPayment pays pending orders of 200 cars, one succeeded
// notification each.
func BenchmarkApplyPayment(b *testing.B) {
	for _, dialect := range storetest.Backends {
		b.Run(dialect, func(b *testing.B) {
			db, vins, now := benchFleet(b, dialect, 200)
			orders := createOrders(b, db, vins, b.N, now)
			var next atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					o := orders[next.Add(1)-1]
					p := billing.Payment{EventID: "evt-" + o.ID, OrderID: o.ID, Status: billing.PaymentSucceeded,
						AmountFen: o.AmountFen, Currency: o.Currency, PaidAt: now, TransactionID: "tx-" + o.ID}
					if _, err := db.ApplyPayment(context.Background(), p, shanghai, now.Add(time.Minute)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkCreateOrder creates orders for 200 cars, each under an
// idempotency key of its own.
func BenchmarkCreateOrder(b *testing.B) {
	for _, dialect := range storetest.Backends {
		b.Run(dialect, func(b *testing.B) {
			db, vins, now := benchFleet(b, dialect, 200)
			var next atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					o := billing.NewOrder(vins[int(i)%len(vins)], "o1", benchMonthly, now, time.Hour)
					k := billing.IdempotencyKey{Scope: "owner:o1", Key: fmt.Sprintf("bench-%d", i), RequestHash: "h"}
					if _, err := db.CreateOrder(context.Background(), o, k, renderOrder); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
