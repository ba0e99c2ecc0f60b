package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"entitlements/billing"
	"entitlements/store"
	"entitlements/store/storetest"
)

// Readers hammer the snapshot of one vehicle while a writer changes it:
// once a write has returned, no read may see what was there before.
func TestSnapshotCacheNeverServesAReplacedSnapshot(t *testing.T) {
	cfg := storetest.Config(t, store.SQLite)
	cfg.SnapshotCache = 100
	db, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	vin := billing.VIN(billing.FixCheckDigit("LSVAX4E10P2000200"))
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	if _, _, err := db.Activate(ctx, vin, billing.Activation{ActivatedAt: now, OwnerID: "owner-0"}, trial, shanghai, now); err != nil {
		t.Fatal(err)
	}
	cycle := billing.CycleAt(now, shanghai)
	var written atomic.Int64 // the last owner number whose transfer has returned
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// The readers stop when the test ends, however it ends (t.Fatal
	// included): none is left running against a closed database.
	var once sync.Once
	halt := func() { once.Do(func() { close(stop) }); wg.Wait() }
	defer halt()
	var stale atomic.Int64
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				min := written.Load()
				s, err := db.Snapshot(ctx, vin, cycle)
				if err != nil {
					t.Error(err)
					return
				}
				var n int64
				fmt.Sscanf(s.Vehicle.OwnerID, "owner-%d", &n)
				if n < min {
					stale.Add(1)
				}
			}
		}()
	}
	for i := int64(1); i <= 300; i++ {
		if _, err := db.TransferOwner(ctx, vin, fmt.Sprintf("owner-%d", i), now); err != nil {
			t.Fatal(err)
		}
		written.Store(i)
	}
	halt()
	if n := stale.Load(); n > 0 {
		t.Errorf("%d reads saw an owner older than a transfer that had returned", n)
	}
	s, _ := db.Snapshot(ctx, vin, cycle)
	if s.Vehicle.OwnerID != "owner-300" {
		t.Errorf("final owner = %s, want owner-300", s.Vehicle.OwnerID)
	}
}
