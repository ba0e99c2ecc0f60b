package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"entitlements/billing"
	"entitlements/store"
	"entitlements/store/storetest"
)

var shanghai, _ = time.LoadLocation("Asia/Shanghai")

var trial = billing.TrialTerms{Months: 12, DataBytesPerMonth: 15 << 30}

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		a, b := storetest.OpenPair(t, dialect) // a has migrated once already
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := 0; i < 8; i++ {
			db := a
			if i%2 == 1 {
				db = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				applied, err := db.Migrate(context.Background())
				if err == nil && len(applied) != 0 {
					t.Errorf("Migrate() applied %v again, want nothing", applied)
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("Migrate() = %v", err)
			}
		}
	})
}

func TestConcurrentActivationCreatesOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		a, b := storetest.OpenPair(t, dialect)
		vin := billing.VIN(billing.FixCheckDigit("LSVAX4E10P2000100"))
		at := time.Date(2026, 3, 1, 9, 0, 0, 0, shanghai)
		now := at.Add(time.Hour)
		var mu sync.Mutex
		created := 0
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			db := a
			if i%2 == 1 {
				db = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, c, err := db.Activate(context.Background(), vin, billing.Activation{ActivatedAt: at, OwnerID: "o"}, trial, shanghai, now)
				if err != nil {
					t.Errorf("Activate() = %v", err)
					return
				}
				if c {
					mu.Lock()
					created++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if created != 1 {
			t.Errorf("created %d times, want 1", created)
		}
		tl, err := a.Timeline(context.Background(), vin)
		if err != nil || len(tl.Periods) != 1 {
			t.Fatalf("Timeline() = %+v, %v; want one trial period", tl, err)
		}
		want := time.Date(2027, 3, 1, 0, 0, 0, 0, shanghai)
		if got := tl.Periods[0].EndsAt; !got.Equal(want) {
			t.Errorf("trial ends %v, want %v", got, want)
		}
	})
}

func TestActivateConflictAndTransfer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		ctx := context.Background()
		vin := billing.VIN(billing.FixCheckDigit("LSVAX4E10P2000101"))
		at := time.Date(2026, 3, 1, 9, 0, 0, 123456789, shanghai)
		now := at.Add(time.Hour)
		if _, _, err := db.Activate(ctx, vin, billing.Activation{ActivatedAt: at, OwnerID: "alice"}, trial, shanghai, now); err != nil {
			t.Fatal(err)
		}
		// Nanoseconds beyond what the database keeps still match.
		if _, created, err := db.Activate(ctx, vin, billing.Activation{ActivatedAt: at, OwnerID: "alice"}, trial, shanghai, now); err != nil || created {
			t.Errorf("repeat Activate() = created %v, %v; want false, nil", created, err)
		}
		_, _, err := db.Activate(ctx, vin, billing.Activation{ActivatedAt: at.Add(time.Second), OwnerID: "alice"}, trial, shanghai, now)
		if !billing.IsCode(err, billing.EAlreadyActivated) {
			t.Errorf("Activate() another time = %v, want %s", err, billing.EAlreadyActivated)
		}
		v, err := db.TransferOwner(ctx, vin, "bob", now)
		if err != nil || v.OwnerID != "bob" {
			t.Fatalf("TransferOwner() = %+v, %v", v, err)
		}
		got, err := db.Vehicle(ctx, vin)
		if err != nil || got.OwnerID != "bob" || !got.ActivatedAt.Equal(at.Truncate(time.Microsecond)) {
			t.Errorf("Vehicle() = %+v, %v", got, err)
		}
		_, err = db.TransferOwner(ctx, billing.VIN(billing.FixCheckDigit("LSVAX4E10P2000102")), "bob", now)
		if !billing.IsCode(err, billing.EVehicleNotFound) {
			t.Errorf("TransferOwner(unknown) = %v, want %s", err, billing.EVehicleNotFound)
		}
	})
}

// TestSQLitePragmas checks that every pooled connection carries the
// settings the store relies on, since PRAGMAs set after open would only
// reach one connection.
func TestSQLitePragmas(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	for pragma, want := range map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "10000"} {
		var got string
		if err := storetest.Query(db, &got, "PRAGMA "+pragma); err != nil || got != want {
			t.Errorf("PRAGMA %s = %q, %v; want %q", pragma, got, err, want)
		}
	}
}

func TestOpenRejectsUnknownDriver(t *testing.T) {
	if _, err := store.Open(context.Background(), store.Config{Driver: "mysql", DSN: "x"}); err == nil {
		t.Error("Open(mysql) = nil error, want one")
	}
}

// TestJobLocksAreSchemaScoped: on PostgreSQL a job's lock is taken per
// schema. Another replica of the same schema skips the run while it is
// held; a deployment in another schema of the same database does not, nor
// does another job.
func TestJobLocksAreSchemaScoped(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		a, sameSchema := storetest.OpenPair(t, store.Postgres)
		otherSchema := storetest.Open(t, store.Postgres)
		ctx := context.Background()
		created := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		now := created.Add(2 * time.Hour)
		stale := func(db *store.DB, n int) {
			t.Helper()
			vin := billing.VIN(billing.FixCheckDigit(fmt.Sprintf("LSVAX4E10P20%05d", n)))
			if _, _, err := db.Activate(ctx, vin, billing.Activation{ActivatedAt: created, OwnerID: "o1"}, trial, shanghai, created); err != nil {
				t.Fatal(err)
			}
			o := billing.NewOrder(vin, "o1", benchMonthly, created, time.Hour)
			if _, err := db.CreateOrder(ctx, o, billing.IdempotencyKey{Scope: "o1", Key: string(vin), RequestHash: "h"}, renderOrder); err != nil {
				t.Fatal(err)
			}
		}
		stale(a, 1)
		stale(otherSchema, 2)
		cancel := func(db *store.DB, want int, what string) {
			t.Helper()
			if n, err := db.CancelStaleOrders(ctx, now, time.Hour); err != nil || n != want {
				t.Errorf("%s: CancelStaleOrders = %d, %v; want %d", what, n, err, want)
			}
		}
		release := a.HoldJobLock(ctx, store.JobCancelUnpaid)
		cancel(sameSchema, 0, "same schema while held")
		cancel(otherSchema, 1, "other schema while held")
		if err := release(); err != nil {
			t.Fatal(err)
		}
		release = a.HoldJobLock(ctx, store.JobRemind)
		cancel(sameSchema, 1, "same schema while another job's lock is held")
		if err := release(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestToolQueryIsReadOnly: the tools' query path cannot write, on either
// database (on PostgreSQL its pool is the writer's); ToolExec writes.
func TestToolQueryIsReadOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		ctx := context.Background()
		now := time.Now().UTC()
		var ticks []time.Time
		err := db.ToolQuery(ctx, &ticks, `INSERT INTO job_runs (job, tick, replica, started_at) VALUES ('j', ?, 'r', ?) RETURNING tick`, now, now)
		if err == nil {
			t.Error("an INSERT through ToolQuery succeeded, want it refused")
		}
		if err := storetest.Exec(db, `INSERT INTO job_runs (job, tick, replica, started_at) VALUES ('j', ?, 'r', ?)`, now, now); err != nil {
			t.Fatalf("ToolExec: %v", err)
		}
		var n int
		if err := storetest.Query(db, &n, `SELECT COUNT(*) FROM job_runs WHERE job = 'j'`); err != nil || n != 1 {
			t.Errorf("job_runs holds %d rows of job j (%v), want 1", n, err)
		}
	})
}
