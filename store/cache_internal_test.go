package store

import (
	"fmt"
	"testing"
	"time"

	"entitlements/billing"
)

func snapshotWith(periods int) billing.Snapshot {
	return billing.Snapshot{Timeline: billing.Timeline{Periods: make([]billing.Period, periods)}}
}

// TestSnapshotCacheStaysWithinItsByteBudget fills a cache whose byte
// budget, not its count, is the binding limit, and checks the accounting
// through fills, replacements, forgets and clear.
func TestSnapshotCacheStaysWithinItsByteBudget(t *testing.T) {
	per := cost(snapshotWith(20))
	c := newSnapshotCache(1_000_000, 100*per, 0) // room for 100 cars of 20 periods
	for i := 0; i < 1000; i++ {
		vin := billing.VIN(fmt.Sprintf("V%05d", i))
		_, e, hit := c.lookup(vin, "2026-06")
		if hit {
			t.Fatalf("%s: hit before any fill", vin)
		}
		c.fill(vin, e, snapshotWith(20))
		if c.bytes > c.budget {
			t.Fatalf("after %d fills: %d bytes cached, budget %d", i+1, c.bytes, c.budget)
		}
	}
	var sum int64
	ready := 0
	for _, e := range c.entries {
		sum += e.cost
		if e.ready {
			ready++
		}
	}
	if sum != c.bytes || ready == 0 || ready > 100 {
		t.Errorf("%d ready entries costing %d, accounted %d; want 1-100 and equal", ready, sum, c.bytes)
	}
	// A lookup for another cycle replaces the entry and its cost.
	for vin := range c.entries {
		_, e, _ := c.lookup(vin, "2026-07")
		c.fill(vin, e, snapshotWith(1))
		break
	}
	for vin := range c.entries {
		c.forget(vin)
	}
	if c.bytes != 0 || len(c.entries) != 0 {
		t.Errorf("after forgetting every entry: %d bytes, %d entries; want 0 and 0", c.bytes, len(c.entries))
	}
	_, e, _ := c.lookup("V1", "2026-06")
	c.fill("V1", e, snapshotWith(3))
	c.clear()
	if c.bytes != 0 {
		t.Errorf("after clear: %d bytes", c.bytes)
	}
}

// TestSnapshotCacheCountBound: with small snapshots the vehicle count is
// the limit.
func TestSnapshotCacheCountBound(t *testing.T) {
	c := newSnapshotCache(50, 1<<30, 0)
	for i := 0; i < 500; i++ {
		vin := billing.VIN(fmt.Sprintf("V%05d", i))
		_, e, _ := c.lookup(vin, "2026-06")
		c.fill(vin, e, snapshotWith(1))
		if len(c.entries) > 50 {
			t.Fatalf("%d entries, max 50", len(c.entries))
		}
	}
}

// Entries read at one instant age out spread over the last tenth of the
// maximum age, never after it.
func TestSnapshotCacheEntriesAgeOutSpread(t *testing.T) {
	const maxAge = time.Hour
	c := newSnapshotCache(1000, 1<<30, maxAge)
	before := time.Now()
	seen := map[time.Time]bool{}
	for i := range 200 {
		_, e, hit := c.lookup(billing.VIN(fmt.Sprintf("LSVAX4E1%09d", i)), "2026-12")
		if hit || e == nil {
			t.Fatalf("lookup %d: a hit (%v) or no placeholder", i, hit)
		}
		after := time.Now()
		if e.at.After(after) || e.at.Before(before.Add(-maxAge/10)) {
			t.Fatalf("entry %d ages from %v, want within a tenth of %v before [%v, %v]", i, e.at, maxAge, before, after)
		}
		seen[e.at] = true
	}
	if len(seen) < 150 {
		t.Errorf("200 entries read together age out at %d distinct instants, want them spread", len(seen))
	}
	if got := (&snapshotCache{}).agedAt(before); !got.Equal(before) {
		t.Errorf("without a maximum age, agedAt = %v, want the read's start %v", got, before)
	}
}
