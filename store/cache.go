package store

import (
	"slices"
	"sync"

	"entitlements/billing"
)

// snapshotCache keeps recent entitlement snapshots in memory, for the hot
// read path on SQLite. It is correct only when every write to the database
// goes through this *DB (one process, one store), which is why Open turns
// it on for SQLite alone and only when asked (Config.SnapshotCache).
//
// Invalidation is by VIN, after the writing transaction has ended
// (forget). A reader registers a placeholder before it reads the database
// and fills it only if the placeholder is still the entry afterwards; a
// write that ends in between deletes the placeholder, so a snapshot read
// before a commit is never cached after it. Coverage ending with time
// needs no invalidation: decisions are computed from the cached timestamps
// at request time.
type snapshotCache struct {
	max     int
	mu      sync.Mutex // protects entries
	entries map[billing.VIN]*cacheEntry
}

type cacheEntry struct {
	ready bool
	cycle string
	snap  billing.Snapshot
}

func newSnapshotCache(max int) *snapshotCache {
	return &snapshotCache{max: max, entries: make(map[billing.VIN]*cacheEntry, max)}
}

// lookup returns a copy of the cached snapshot of vin for cycle, or, on a
// miss, the placeholder the caller fills after reading the database.
func (c *snapshotCache) lookup(vin billing.VIN, cycle string) (billing.Snapshot, *cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[vin]; e != nil && e.ready && e.cycle == cycle {
		s := e.snap
		s.Timeline.Periods = slices.Clone(s.Timeline.Periods)
		return s, nil, true
	}
	if len(c.entries) >= c.max {
		// Evict about a tenth, in map order (random enough for a cache).
		n := c.max/10 + 1
		for k := range c.entries {
			delete(c.entries, k)
			if n--; n == 0 {
				break
			}
		}
	}
	e := &cacheEntry{cycle: cycle}
	c.entries[vin] = e
	return billing.Snapshot{}, e, false
}

// fill stores snap in e if e is still vin's entry (no write ended since
// lookup created it).
func (c *snapshotCache) fill(vin billing.VIN, e *cacheEntry, snap billing.Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[vin] == e {
		snap.Timeline.Periods = slices.Clone(snap.Timeline.Periods)
		e.snap, e.ready = snap, true
	}
}

// forget drops the entries of vins.
func (c *snapshotCache) forget(vins ...billing.VIN) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range vins {
		delete(c.entries, v)
	}
}

// clear drops every entry.
func (c *snapshotCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
}

// forget invalidates cached snapshots of vins; call it after the
// transaction that changed them has ended (committed or not).
func (db *DB) forget(vins ...billing.VIN) {
	if db.cache != nil {
		db.cache.forget(vins...)
	}
}

// ForgetSnapshots empties the snapshot cache, for tools and tests that
// change the database behind the store's back.
func (db *DB) ForgetSnapshots() {
	if db.cache != nil {
		db.cache.clear()
	}
}
