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

// The snapshot cache on PostgreSQL, with several stores on one database
// (replicas) kept coherent by LISTEN/NOTIFY (listen.go).

const listenDeadline = 10 * time.Second

// activated activates a vehicle through db and returns it and its cycle.
func activated(t *testing.T, db *store.DB, vin string) (billing.VIN, billing.Cycle, time.Time) {
	t.Helper()
	v := billing.VIN(billing.FixCheckDigit(vin))
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	if _, _, err := db.Activate(context.Background(), v, billing.Activation{ActivatedAt: now, OwnerID: "owner-0"}, trial, shanghai, now); err != nil {
		t.Fatal(err)
	}
	return v, billing.CycleAt(now, shanghai), now
}

func owner(t *testing.T, db *store.DB, vin billing.VIN, cycle billing.Cycle) string {
	t.Helper()
	s, err := db.Snapshot(context.Background(), vin, cycle)
	if err != nil {
		t.Fatal(err)
	}
	return s.Vehicle.OwnerID
}

// eventually polls db's read of vin's owner until it is want.
func eventually(t *testing.T, db *store.DB, vin billing.VIN, cycle billing.Cycle, want string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := owner(t, db, vin, cycle)
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > listenDeadline {
			t.Fatalf("owner read = %q after %v, want %q", got, listenDeadline, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// handled waits until db's listener has handled a notification past the
// seen VINs.
func handled(t *testing.T, db *store.DB, seen int64) {
	t.Helper()
	deadline := time.Now().Add(listenDeadline)
	for db.SnapshotCacheStats().Invalidations <= seen {
		if time.Now().After(deadline) {
			t.Fatalf("no notification handled after %v", listenDeadline)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// A change made through one store reaches the other's cache; without
// the notification (a store with the cache off does not send it, as a
// release without it would not) the other store keeps its stale entry.
func TestSnapshotCacheAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	t.Run("notified", func(t *testing.T) {
		a, b := storetest.OpenCachedPair(t, 0)
		vin, cycle, now := activated(t, a, "LSVAX4E10P2000300")
		owner(t, b, vin, cycle)
		owner(t, b, vin, cycle)
		if n := b.SnapshotCacheStats().Entries; n != 1 {
			t.Fatalf("b caches %d snapshots after two reads, want 1", n)
		}
		if _, err := a.TransferOwner(ctx, vin, "owner-1", now); err != nil {
			t.Fatal(err)
		}
		if got := owner(t, a, vin, cycle); got != "owner-1" {
			t.Errorf("the writing store reads owner %q after its write, want owner-1", got)
		}
		lag := eventually(t, b, vin, cycle, "owner-1")
		t.Logf("b saw a's write after %v", lag)
		if st := b.SnapshotCacheStats(); st.Invalidations == 0 || !st.Listening {
			t.Errorf("b's stats = %+v, want invalidations counted and listening", st)
		}
	})
	t.Run("not notified", func(t *testing.T) {
		a, b := storetest.OpenPairWith(t, store.Postgres, func(a, b *store.Config) {
			a.SnapshotCache, b.SnapshotCache, b.SnapshotCacheMaxAge = 0, 1000, time.Hour
		})
		storetest.WaitListening(t, b)
		vin, cycle, now := activated(t, a, "LSVAX4E10P2000301")
		owner(t, b, vin, cycle)
		if _, err := a.TransferOwner(ctx, vin, "owner-1", now); err != nil {
			t.Fatal(err)
		}
		// No notification is coming: the entry is served until it ages,
		// but not to a read that turns on who owns the car.
		if got := owner(t, b, vin, cycle); got != "owner-0" {
			t.Fatalf("b reads owner %q without a notification, want its cached owner-0 (is the cache on?)", got)
		}
		checked, err := b.Snapshot(billing.WithOwnershipCheck(ctx), vin, cycle)
		if err != nil || checked.Vehicle.OwnerID != "owner-1" {
			t.Errorf("b's ownership-checked read = %q, %v; want owner-1 from the database", checked.Vehicle.OwnerID, err)
		}
		b.ForgetSnapshots()
		if got := owner(t, b, vin, cycle); got != "owner-1" {
			t.Errorf("b reads owner %q after ForgetSnapshots, want owner-1", got)
		}
	})
}

// Readers on one store hammer a vehicle's snapshot while the other store
// changes it: once a change's notification has been handled, no read
// serves what was there before (a read that raced with the write is not
// cached past the notification).
func TestSnapshotCacheRaceAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	a, b := storetest.OpenCachedPair(t, 0)
	vin, cycle, now := activated(t, a, "LSVAX4E10P2000302")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var once sync.Once
	halt := func() { once.Do(func() { close(stop) }); wg.Wait() }
	defer halt()
	var reads atomic.Int64
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
				if _, err := b.Snapshot(ctx, vin, cycle); err != nil {
					t.Error(err)
					return
				}
				reads.Add(1)
			}
		}()
	}
	// The activation's notification first.
	eventually(t, b, vin, cycle, "owner-0")
	for i := 1; i <= 200; i++ {
		seen := b.SnapshotCacheStats().Invalidations
		want := fmt.Sprintf("owner-%d", i)
		if _, err := a.TransferOwner(ctx, vin, want, now); err != nil {
			t.Fatal(err)
		}
		handled(t, b, seen)
		if got := owner(t, b, vin, cycle); got != want {
			t.Fatalf("transfer %d: b reads owner %q after its notification was handled, want %q", i, got, want)
		}
	}
	halt()
	t.Logf("%d concurrent reads", reads.Load())
}

// When the listener's connection dies, the cache is bypassed (reads are
// correct, nothing is cached) until the listener listens again; then it
// is on again and notified again.
func TestSnapshotCacheListenerReconnects(t *testing.T) {
	ctx := context.Background()
	a, b := storetest.OpenCachedPair(t, 0)
	b.SetListenerBackoff(time.Second)
	vin, cycle, now := activated(t, a, "LSVAX4E10P2000303")
	eventually(t, b, vin, cycle, "owner-0")
	var pid int
	if err := storetest.Query(b, &pid, `SELECT pid FROM pg_stat_activity WHERE application_name = ? AND query = 'LISTEN "entitlements_snapshots_' || md5(current_schema()) || '"'`,
		store.ListenerApp); err != nil || pid == 0 {
		t.Fatalf("the listener's backend: pid %d, %v", pid, err)
	}
	var ok bool
	if err := storetest.Query(b, &ok, `SELECT pg_terminate_backend(?)`, pid); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
	}
	deadline := time.Now().Add(listenDeadline)
	for b.SnapshotCacheStats().LostConnections == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the listener has not noticed its connection's end after %v", listenDeadline)
		}
		time.Sleep(time.Millisecond)
	}
	// Off: a write's effect is read at once, and nothing is cached.
	for i := 1; i <= 3; i++ {
		want := fmt.Sprintf("owner-%d", i)
		if _, err := a.TransferOwner(ctx, vin, want, now); err != nil {
			t.Fatal(err)
		}
		before := b.SnapshotCacheStats()
		got := owner(t, b, vin, cycle)
		after := b.SnapshotCacheStats()
		if got != want {
			t.Fatalf("b reads owner %q right after a's write while its listener is down, want %q", got, want)
		}
		if !before.Listening && !after.Listening && after.Entries != 0 {
			t.Errorf("b caches %d snapshots while its listener is down, want none", after.Entries)
		}
	}
	storetest.WaitListening(t, b)
	if _, err := a.TransferOwner(ctx, vin, "owner-4", now); err != nil {
		t.Fatal(err)
	}
	eventually(t, b, vin, cycle, "owner-4")
	owner(t, b, vin, cycle)
	if n := b.SnapshotCacheStats().Entries; n != 1 {
		t.Errorf("b caches %d snapshots once listening again, want 1", n)
	}
	if _, err := a.TransferOwner(ctx, vin, "owner-5", now); err != nil {
		t.Fatal(err)
	}
	eventually(t, b, vin, cycle, "owner-5")
}

// A listener whose connection stays silent pings it and goes on
// listening: silence is not a lost connection.
func TestSnapshotCacheListenerPingsWhenIdle(t *testing.T) {
	ctx := context.Background()
	a, b := storetest.OpenCachedPair(t, 0)
	b.SetListenerPing(5 * time.Millisecond)
	vin, cycle, now := activated(t, a, "LSVAX4E10P2000306")
	eventually(t, b, vin, cycle, "owner-0")
	time.Sleep(100 * time.Millisecond) // about twenty timed-out waits, each followed by a ping
	if st := b.SnapshotCacheStats(); !st.Listening || st.LostConnections != 0 {
		t.Fatalf("after idle pings: %+v, want listening, no connection lost", st)
	}
	owner(t, b, vin, cycle)
	if _, err := a.TransferOwner(ctx, vin, "owner-1", now); err != nil {
		t.Fatal(err)
	}
	eventually(t, b, vin, cycle, "owner-1")
}

// An entry older than the maximum age is read again: a change made
// behind every store's back (SQL by hand, no notification) is seen once
// the entry has aged.
func TestSnapshotCacheMaxAge(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		const maxAge = 200 * time.Millisecond
		cfg := storetest.Config(t, dialect)
		cfg.SnapshotCache, cfg.SnapshotCacheMaxAge = 1000, maxAge
		db, err := store.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if _, err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		if dialect == store.Postgres {
			storetest.WaitListening(t, db)
		}
		vin, cycle, _ := activated(t, db, "LSVAX4E10P2000304")
		if dialect == store.Postgres {
			handled(t, db, 0) // the activation's notification, which would empty the entry
		}
		// Another store on the same database, without a cache, so that
		// it sends no notification: the change is behind db's back.
		cfg.SnapshotCache = 0
		behind, err := store.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { behind.Close() })
		filled := time.Now()
		owner(t, db, vin, cycle)
		if err := storetest.Exec(behind, `UPDATE vehicles SET owner_id = 'by-hand' WHERE vin = ?`, string(vin)); err != nil {
			t.Fatal(err)
		}
		// The entry ages out between 0.9 × maxAge and maxAge after its read.
		got := owner(t, db, vin, cycle)
		if time.Since(filled) < maxAge*9/10 && got != "owner-0" {
			t.Errorf("read within the max age = %q, want the cached owner-0", got)
		}
		if lag := eventually(t, db, vin, cycle, "by-hand"); time.Since(filled) < maxAge*9/10 {
			t.Errorf("the change was read after %v, before the entry was %v old", lag, maxAge*9/10)
		}
	})
}

// On SQLite the cache needs no listener: it is on from the start.
func TestSnapshotCacheOnSQLiteNeedsNoListener(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	vin, cycle, _ := activated(t, db, "LSVAX4E10P2000305")
	owner(t, db, vin, cycle)
	if st := db.SnapshotCacheStats(); !st.On || st.Listening || st.Entries != 1 {
		t.Errorf("SnapshotCacheStats() = %+v, want on, not listening, one entry", st)
	}
}
