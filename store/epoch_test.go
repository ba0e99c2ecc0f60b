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

// TestEpochUpgradeAndTransfer: the epoch migration gives vehicles
// activated before it epoch 0 on both engines; a transfer to another owner
// raises it and the next snapshot (after the cache is forgotten) reads it,
// a transfer to the same owner does not.
func TestEpochUpgradeAndTransfer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		ctx := context.Background()
		db, err := store.Open(ctx, storetest.Config(t, dialect))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if _, err := db.MigrateOnly(ctx, 1, 2, 3, 4, 10, 20, 21, 30, 31, 32, 33, 40, 41, 50); err != nil {
			t.Fatal(err)
		}
		loc, _ := time.LoadLocation("Asia/Shanghai")
		now := time.Date(2026, 6, 15, 12, 0, 0, 0, loc)
		vin := billing.VIN(billing.FixCheckDigit("LSVAX4E10P2000500"))
		legacyVehicle(t, db, vin, "alice", now.AddDate(0, -1, 0), now, loc) // the release before the epoch wrote it
		applied, err := db.Migrate(ctx)
		if err != nil || !slices.Contains(applied, 60) {
			t.Fatalf("Migrate() = %v, %v; want 60 applied", applied, err)
		}
		epoch := func() int64 {
			t.Helper()
			s, err := db.Snapshot(ctx, vin, billing.CycleAt(now, loc))
			if err != nil {
				t.Fatal(err)
			}
			return s.Vehicle.Epoch
		}
		if got := epoch(); got != 0 {
			t.Errorf("epoch after the upgrade = %d, want 0", got)
		}
		for _, step := range []struct {
			owner string
			want  int64
		}{{"bob", 1}, {"bob", 1}, {"carol", 2}} {
			if _, err := db.TransferOwner(ctx, vin, step.owner, now); err != nil {
				t.Fatal(err)
			}
			if got := epoch(); got != step.want {
				t.Errorf("epoch after a transfer to %s = %d, want %d", step.owner, got, step.want)
			}
		}
	})
}
