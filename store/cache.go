package store

import (
	"slices"
	"sync"
	"unsafe"

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
//
// It is bounded twice: by max vehicles, and by budget bytes of snapshots
// (an estimate, see cost), since a car's timeline grows with every
// package it buys and a count alone does not bound the memory.
type snapshotCache struct {
	max     int
	budget  int64
	mu      sync.Mutex // protects the following fields
	entries map[billing.VIN]*cacheEntry
	bytes   int64 // the cost of the ready entries
}

type cacheEntry struct {
	ready bool
	cycle string
	snap  billing.Snapshot
	cost  int64
}

func newSnapshotCache(max int, budget int64) *snapshotCache {
	return &snapshotCache{max: max, budget: budget, entries: make(map[billing.VIN]*cacheEntry)}
}

// cost estimates the heap bytes a cached snapshot holds: the entry and
// the map slot, and per period its struct and its two identifiers.
func cost(s billing.Snapshot) int64 {
	const entry, period = 256, int64(unsafe.Sizeof(billing.Period{})) + 2*48
	return entry + int64(len(s.Timeline.Periods))*period
}

// evict drops about a tenth of the entries, in map order (random enough
// for a cache), until the cache is within both bounds.
func (c *snapshotCache) evict() {
	for len(c.entries) >= c.max || c.bytes > c.budget {
		n := len(c.entries)/10 + 1
		for k, e := range c.entries {
			c.drop(k, e)
			if n--; n == 0 {
				break
			}
		}
		if len(c.entries) == 0 {
			return
		}
	}
}

func (c *snapshotCache) drop(vin billing.VIN, e *cacheEntry) {
	delete(c.entries, vin)
	c.bytes -= e.cost
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
	if old := c.entries[vin]; old != nil {
		c.drop(vin, old) // another cycle's
	}
	c.evict()
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
		e.snap, e.ready, e.cost = snap, true, cost(snap)
		c.bytes += e.cost
		if c.bytes > c.budget {
			c.evict()
		}
	}
}

// forget drops the entries of vins.
func (c *snapshotCache) forget(vins ...billing.VIN) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range vins {
		if e := c.entries[v]; e != nil {
			c.drop(v, e)
		}
	}
}

// clear drops every entry.
func (c *snapshotCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
	c.bytes = 0
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
