package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"entitlements/billing"
	"entitlements/store"
	"entitlements/store/storetest"
)

func TestSeedLoadsARealisticRepeatableFleet(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		ctx := context.Background()
		now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
		const n = 2000
		for run := 0; run < 2; run++ { // the second run finds everything there
			if err := db.Seed(ctx, n, store.DefaultSeedMix, seedCatalog, shanghai, now); err != nil {
				t.Fatalf("Seed() = %v", err)
			}
		}
		counts := map[billing.State]int{}
		withUsage, withoutBytes := 0, 0
		cycle := billing.CycleAt(now, shanghai)
		for i := 0; i < n; i += 7 {
			vin := store.SeedVIN(i)
			if _, err := billing.ParseVIN(string(vin)); err != nil {
				t.Fatalf("SeedVIN(%d) = %s: %v", i, vin, err)
			}
			v, err := db.Vehicle(ctx, vin)
			if err != nil || v.OwnerID != store.SeedOwner(i) {
				t.Fatalf("Vehicle(%s) = %+v, %v", vin, v, err)
			}
			tl, err := db.Timeline(ctx, vin)
			if err != nil {
				t.Fatal(err)
			}
			counts[tl.At(now).State()]++
			snap, err := db.Snapshot(ctx, vin, cycle)
			if err != nil {
				t.Fatal(err)
			}
			if u := snap.Usage; !u.AsOf.IsZero() {
				withUsage++
				if u.BasicBytes == 0 {
					withoutBytes++
				}
				if u.EntertainmentBytes > 0 && !tl.End().After(cycle.Start) {
					t.Errorf("%s: %d entertainment bytes this month, but its coverage ended %s", vin, u.EntertainmentBytes, tl.End())
				}
				if u.AsOf.After(now) || u.AsOf.Before(v.ActivatedAt) {
					t.Errorf("%s: usage as of %s, activated %s, now %s", vin, u.AsOf, v.ActivatedAt, now)
				}
			}
		}
		if withoutBytes > 0 {
			t.Errorf("%d of the %d sampled vehicles with usage have no basic bytes this month", withoutBytes, withUsage)
		}
		if sampled := (n + 6) / 7; withUsage < sampled/3 || withUsage > sampled*9/10 {
			t.Errorf("%d of %d sampled vehicles have usage; want the mix's share (about 60 %%)", withUsage, sampled)
		}
		for _, s := range []billing.State{billing.StateTrial, billing.StatePaid, billing.StateExpired} {
			if counts[s] == 0 {
				t.Errorf("no seeded vehicle is %s: %v", s, counts)
			}
		}
		var vehicles, orders int64
		storetest.Query(db, &vehicles, `SELECT COUNT(*) FROM vehicles`)
		storetest.Query(db, &orders, `SELECT COUNT(*) FROM orders`)
		if vehicles != n || orders == 0 || orders > n/2 {
			t.Errorf("%d vehicles, %d orders; want %d vehicles and some orders", vehicles, orders, n)
		}
	})
}

// TestSeedRestoresTheWriterSettings: the bulk load's PRAGMAs last as long
// as the load, and the writer gets back the values it had before (the
// durability the service was configured with), not defaults.
func TestSeedRestoresTheWriterSettings(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	before := map[string]int64{}
	for _, p := range []string{"synchronous", "cache_size"} {
		v, err := db.WriterPragma(p)
		if err != nil {
			t.Fatal(err)
		}
		before[p] = v
	}
	if err := db.Seed(context.Background(), 10, store.DefaultSeedMix, seedCatalog, shanghai, time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	for p, want := range before {
		if got, err := db.WriterPragma(p); err != nil || got != want {
			t.Errorf("after Seed: PRAGMA %s = %d, %v; want %d as before", p, got, err, want)
		}
	}
	if before["cache_size"] == -2000 {
		t.Errorf("the writer's cache_size was SQLite's default before Seed; the test needs the store's own")
	}
}

// TestSeedWritesEveryChunk: a fleet of several chunks is written whole,
// the chunk built while the one before is inserted, and every vehicle's
// instants read back as they were derived.
func TestSeedWritesEveryChunk(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	n := 2*store.SeedChunk + 3
	now := time.Date(2024, 2, 29, 16, 0, 0, 0, time.UTC) // local midnight of a leap day
	if err := db.Seed(context.Background(), n, store.DefaultSeedMix, seedCatalog, shanghai, now); err != nil {
		t.Fatal(err)
	}
	var vehicles, versions, trials int64
	storetest.Query(db, &vehicles, `SELECT COUNT(*) FROM vehicles`)
	storetest.Query(db, &versions, `SELECT COUNT(*) FROM timeline_versions`)
	storetest.Query(db, &trials, `SELECT COUNT(*) FROM periods WHERE seq = 0`)
	if vehicles != int64(n) || versions != int64(n) || trials != int64(n) {
		t.Errorf("%d vehicles, %d timeline versions, %d trial periods; want %d of each", vehicles, versions, trials, n)
	}
	for _, i := range []int{0, store.SeedChunk - 1, store.SeedChunk, n - 1} {
		v, err := db.Vehicle(context.Background(), store.SeedVIN(i))
		if err != nil {
			t.Fatalf("vehicle %d: %v", i, err)
		}
		if v.ActivatedAt.After(now) || v.ActivatedAt.Location() != time.UTC || v.CreatedAt.IsZero() || !v.CreatedAt.Equal(now) {
			t.Errorf("vehicle %d: activated %s, created %s; want at or before %s, created then", i, v.ActivatedAt, v.CreatedAt, now)
		}
	}
}

// TestSeedStopsWhenCancelled: a cancelled load returns its context's
// error, the goroutine building chunks included, and writes nothing.
func TestSeedStopsWhenCancelled(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := db.Seed(ctx, 3*store.SeedChunk, store.DefaultSeedMix, seedCatalog, shanghai, time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Seed(cancelled) = %v; want context.Canceled", err)
	}
	var vehicles int64
	storetest.Query(db, &vehicles, `SELECT COUNT(*) FROM vehicles`)
	if vehicles != 0 {
		t.Errorf("%d vehicles written by a cancelled load", vehicles)
	}
}

var seedCatalog = billing.Catalog{Trial: trial, Products: []billing.Product{
	{Code: "monthly", Name: "m", PriceFen: 1990, Days: 31}, {Code: "yearly", Name: "y", PriceFen: 19900, Days: 365}}}
