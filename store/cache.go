package store

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
	"unsafe"

	"entitlements/billing"
)

// snapshotCache keeps recent entitlement snapshots in memory, for the hot
// read path. It is correct only when every write to the database is
// followed by forget of the VINs it changed, in every process that caches:
// on SQLite this *DB is the database's one writer (one process), and on
// PostgreSQL every replica's write path sends the VINs it changed with
// NOTIFY when it commits and every replica's listener forgets them
// (listen.go). Open turns it on only when asked (Config.SnapshotCache).
//
// Invalidation is by VIN, after the writing transaction has ended
// (forget). A reader registers a placeholder before it reads the database
// and fills it only if the placeholder is still the entry afterwards; a
// write that ends in between deletes the placeholder, so a snapshot read
// before a commit is never cached after it. The same holds for another
// replica's commit, whose notification arrives after it: a read that
// began before the notification was handled is not cached past it.
// Coverage ending with time needs no invalidation: decisions are computed
// from the cached timestamps at request time.
//
// An entry older than maxAge (counted from the start of the read that
// filled it) is read again: that bounds how long an invalidation that
// never arrived (a write by a release that does not notify, SQL run by
// hand) can be missed. Each entry ages out at a random point of the last
// tenth of maxAge (agedAt), so that the cars read together (after a
// start, or a listener's reconnection, which empties the cache) are not
// all read again from the database in the same instant.
//
// While off, the cache is empty and bypassed: on PostgreSQL until the
// listener listens, and whenever it has lost its connection, since
// notifications sent meanwhile are lost.
//
// It is bounded twice: by max vehicles, and by budget bytes of snapshots
// (an estimate, see cost), since a car's timeline grows with every
// package it buys and a count alone does not bound the memory.
type snapshotCache struct {
	max     int
	budget  int64
	maxAge  time.Duration // 0: entries do not age
	mu      sync.Mutex    // protects the following fields
	entries map[billing.VIN]*cacheEntry
	bytes   int64 // the cost of the ready entries
	off     bool  // bypassed: lookup misses and registers nothing
}

type cacheEntry struct {
	ready bool
	cycle string
	at    time.Time // when the read that fills it began, less agedAt's spread (with maxAge only)
	snap  billing.Snapshot
	cost  int64
}

func newSnapshotCache(max int, budget int64, maxAge time.Duration) *snapshotCache {
	return &snapshotCache{max: max, budget: budget, maxAge: maxAge, entries: make(map[billing.VIN]*cacheEntry)}
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

// agedAt is the age an entry whose read began at now counts from: up to a
// tenth of maxAge before now, at random, so that it is read again at
// least 0.9 × maxAge and at most maxAge after its read began.
func (c *snapshotCache) agedAt(now time.Time) time.Time {
	if spread := int64(c.maxAge / 10); spread > 0 {
		return now.Add(-time.Duration(rand.Int64N(spread)))
	}
	return now
}

func (c *snapshotCache) drop(vin billing.VIN, e *cacheEntry) {
	delete(c.entries, vin)
	c.bytes -= e.cost
}

// lookup returns a copy of the cached snapshot of vin for cycle, or, on a
// miss, the placeholder the caller fills after reading the database (nil
// while the cache is off).
func (c *snapshotCache) lookup(vin billing.VIN, cycle string) (billing.Snapshot, *cacheEntry, bool) {
	var now time.Time
	if c.maxAge > 0 {
		now = time.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.off {
		return billing.Snapshot{}, nil, false
	}
	if e := c.entries[vin]; e != nil && e.ready && e.cycle == cycle && (c.maxAge <= 0 || now.Sub(e.at) < c.maxAge) {
		s := e.snap
		s.Timeline.Periods = slices.Clone(s.Timeline.Periods)
		return s, nil, true
	}
	if old := c.entries[vin]; old != nil {
		c.drop(vin, old) // another cycle's, or too old
	}
	c.evict()
	e := &cacheEntry{cycle: cycle, at: c.agedAt(now)}
	c.entries[vin] = e
	return billing.Snapshot{}, e, false
}

// fill stores snap in e if e is still vin's entry (no write ended since
// lookup created it).
func (c *snapshotCache) fill(vin billing.VIN, e *cacheEntry, snap billing.Snapshot) {
	if e == nil {
		return // looked up while off
	}
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

// setOff empties the cache and turns it off (bypassed) or back on. A
// read that registered its placeholder before is not cached: clearing
// deleted the placeholder.
func (c *snapshotCache) setOff(off bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
	c.bytes = 0
	c.off = off
}

// size is the number of cached snapshots (placeholders included).
func (c *snapshotCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// defaultMaxAgePostgres bounds a cached snapshot's age on PostgreSQL
// unless Config.SnapshotCacheMaxAge says otherwise.
const defaultMaxAgePostgres = time.Minute

// openSnapshotCache turns the snapshot cache on when cfg asks for it; on
// PostgreSQL it starts off and the listener turns it on once it listens
// (Open waits for its first attempt, under ctx).
func (db *DB) openSnapshotCache(ctx context.Context, cfg Config) {
	if cfg.SnapshotCache <= 0 {
		return
	}
	maxAge := cfg.SnapshotCacheMaxAge
	if maxAge == 0 && cfg.Driver == Postgres {
		maxAge = defaultMaxAgePostgres
	}
	db.cache = newSnapshotCache(cfg.SnapshotCache, int64(or(cfg.SnapshotCacheMiB, 48))<<20, maxAge)
	if cfg.Driver == Postgres {
		db.cache.setOff(true)
		db.listen = startListener(cfg.DSN, db.cache)
		db.listen.waitTried(ctx)
	}
}

// SnapshotCacheStats describes the snapshot cache, for metrics.
type SnapshotCacheStats struct {
	On      bool // configured (Config.SnapshotCache > 0)
	Entries int  // vehicles cached now
	// On PostgreSQL: whether the listener listens (while it does not,
	// the cache is bypassed), the VINs forgotten on notifications (from
	// every replica, this one included) and the connections it lost.
	Listening       bool
	Invalidations   int64
	LostConnections int64
}

// SnapshotCacheStats reports on the snapshot cache.
func (db *DB) SnapshotCacheStats() SnapshotCacheStats {
	if db.cache == nil {
		return SnapshotCacheStats{}
	}
	st := SnapshotCacheStats{On: true, Entries: db.cache.size()}
	if l := db.listen; l != nil {
		st.Listening = l.up.Load()
		st.Invalidations = l.invalidations.Load()
		st.LostConnections = l.lost.Load()
	}
	return st
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
