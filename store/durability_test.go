package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"entitlements/billing"
	"entitlements/store"
	"entitlements/store/storetest"
)

// writerPragma reads a PRAGMA on the SQLite writer's connection.
func writerPragma(t *testing.T, db *store.DB, name string) int {
	t.Helper()
	var v int
	if err := storetest.Query(db, &v, "PRAGMA "+name); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

// TestSQLiteWriterCommitsWithSynchronousFull: the writer syncs the WAL in
// every commit (synchronous=FULL, 2), so an acknowledged write survives a
// power cut, and a seed, which loads with synchronous=OFF, gives the
// writer its own settings back.
func TestSQLiteWriterCommitsWithSynchronousFull(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	if got := writerPragma(t, db, "synchronous"); got != 2 {
		t.Fatalf("writer synchronous = %d, want 2 (FULL)", got)
	}
	cache := writerPragma(t, db, "cache_size")
	cat := billing.Catalog{Trial: trial, Products: []billing.Product{
		{Code: "monthly", PriceFen: 1990, Days: 31}, {Code: "yearly", PriceFen: 19900, Days: 365},
	}}
	if err := db.Seed(context.Background(), 50, store.DefaultSeedMix, cat, shanghai, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := writerPragma(t, db, "synchronous"); got != 2 {
		t.Errorf("writer synchronous after Seed = %d, want 2 (FULL)", got)
	}
	if got := writerPragma(t, db, "cache_size"); got != cache {
		t.Errorf("writer cache_size after Seed = %d, want %d as before", got, cache)
	}
}

// TestSQLiteRefusesWeakerSynchronous: a DSN cannot turn the writer's
// synchronous down; EXTRA, stronger, is kept.
func TestSQLiteRefusesWeakerSynchronous(t *testing.T) {
	dir := t.TempDir()
	for _, q := range []string{"_synchronous=NORMAL", "_synchronous=off", "_sync=1", "_sync=", "_synchronous=FULL&_sync=0"} {
		db, err := store.Open(context.Background(), store.Config{Driver: store.SQLite, DSN: filepath.Join(dir, "weak.db") + "?" + q})
		if err == nil {
			db.Close()
			t.Errorf("Open(...?%s) succeeded, want it refused", q)
		} else if !strings.Contains(err.Error(), "synchronous=FULL") {
			t.Errorf("Open(...?%s) = %v, want it to say the store commits with synchronous=FULL", q, err)
		}
	}
	db, err := store.Open(context.Background(), store.Config{Driver: store.SQLite, DSN: filepath.Join(dir, "extra.db") + "?_synchronous=EXTRA"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := writerPragma(t, db, "synchronous"); got != 3 {
		t.Errorf("writer synchronous = %d, want 3 (EXTRA) as the DSN asks", got)
	}
}

func TestBackupRefusesPostgresAndExistingFiles(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		path := filepath.Join(t.TempDir(), "backup.db")
		if dialect == store.Postgres {
			err := db.Backup(context.Background(), path)
			if !errors.Is(err, store.ErrBackupUnsupported) || !strings.Contains(err.Error(), "pg_dump") {
				t.Errorf("Backup() = %v, want ErrBackupUnsupported naming pg_dump", err)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Backup() on PostgreSQL left %s behind (stat: %v)", path, err)
			}
			return
		}
		if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
		err := db.Backup(context.Background(), path)
		if err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Errorf("Backup() over an existing file = %v, want it refused", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "keep me" {
			t.Errorf("the existing file now holds %q, want it untouched", b)
		}
	})
}

// TestBackupUnderPaymentsHoldsEveryAcknowledgedPayment takes a backup while
// goroutines apply payments: the copy opens and migrates with the store,
// holds every payment acknowledged before the backup was asked for, and
// is consistent (every paid order has its period, its payment record and
// its notice; every payment record's order is paid).
func TestBackupUnderPaymentsHoldsEveryAcknowledgedPayment(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.SQLite)
	now := time.Now()
	cat := billing.Catalog{Trial: trial, Products: []billing.Product{
		{Code: "monthly", PriceFen: 1990, Days: 31}, {Code: "yearly", PriceFen: 19900, Days: 365},
	}}
	// A fleet large enough that the copy takes a while.
	if err := db.Seed(ctx, 5_000, store.DefaultSeedMix, cat, shanghai, now); err != nil {
		t.Fatal(err)
	}
	const cars, perCar = 50, 12
	monthly, _ := cat.Product("monthly")
	var orders []string
	for c := range cars {
		vin := billing.VIN(billing.FixCheckDigit(fmt.Sprintf("LSVAX4E10P3%06d", c)))
		if _, _, err := db.Activate(ctx, vin, billing.Activation{ActivatedAt: now.Add(-time.Hour), OwnerID: "o"}, trial, shanghai, now); err != nil {
			t.Fatal(err)
		}
		for k := range perCar {
			o := billing.NewOrder(vin, "o", monthly, now, time.Hour)
			res, err := db.CreateOrder(ctx, o, billing.IdempotencyKey{Scope: "o", Key: fmt.Sprintf("k-%d-%d", c, k), RequestHash: "h"},
				func(o billing.Order) (int, []byte, error) { return 201, []byte(o.ID), nil })
			if err != nil {
				t.Fatal(err)
			}
			orders = append(orders, string(res.Body))
		}
	}
	// Interleave the cars, so that concurrent payments hit different ones.
	queue := make(chan string, len(orders))
	for k := range perCar {
		for c := range cars {
			queue <- orders[c*perCar+k]
		}
	}
	close(queue)

	var (
		mu    sync.Mutex
		acked []string // order ids whose payment was acknowledged, in order
	)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range queue {
				_, err := db.ApplyPayment(ctx, billing.Payment{EventID: "evt_" + id, OrderID: id, Status: billing.PaymentSucceeded,
					AmountFen: monthly.PriceFen, Currency: billing.Currency, PaidAt: now, TransactionID: "tx_" + id}, shanghai, now)
				if err != nil {
					t.Errorf("ApplyPayment(%s) = %v", id, err)
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		}()
	}
	ackedNow := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), acked...)
	}
	for len(ackedNow()) < len(orders)/5 {
		time.Sleep(time.Millisecond)
	}
	before := ackedNow()
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := db.Backup(ctx, path); err != nil {
		t.Fatal(err)
	}
	during := len(ackedNow()) - len(before)
	wg.Wait()
	if during == 0 || len(before) == len(orders) {
		t.Fatalf("%d payments acknowledged while the backup ran, %d of %d before it: the backup did not run under load", during, len(before), len(orders))
	}
	if _, err := os.Stat(path + "-wal"); err == nil {
		t.Errorf("the backup has a WAL beside it: it should be one file")
	}

	copied, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: path})
	if err != nil {
		t.Fatalf("open the backup: %v", err)
	}
	defer copied.Close()
	if applied, err := copied.Migrate(ctx); err != nil || len(applied) != 0 {
		t.Fatalf("Migrate() on the backup = %v, %v; want nothing to apply", applied, err)
	}
	var integrity string
	if err := storetest.Query(copied, &integrity, "PRAGMA integrity_check"); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check = %q, %v", integrity, err)
	}
	for _, id := range before {
		o, err := copied.Order(ctx, id)
		if err != nil || o.Status != billing.OrderPaid {
			t.Errorf("order %s acknowledged paid before the backup: in the backup %v, %v", id, o.Status, err)
		}
	}
	var paidOrders int64
	storetest.Query(copied, &paidOrders, `SELECT COUNT(*) FROM orders WHERE status = 'paid' AND id NOT LIKE 'ord_seed_%'`)
	t.Logf("%d payments acknowledged before the backup, %d while it ran; the backup holds %d paid orders of %d",
		len(before), during, paidOrders, len(orders))
	for _, check := range []struct{ what, query string }{
		{"paid orders without their period", `SELECT COUNT(*) FROM orders o WHERE o.status = 'paid' AND NOT EXISTS (SELECT 1 FROM periods p WHERE p.order_id = o.id)`},
		{"periods of orders not paid", `SELECT COUNT(*) FROM periods p WHERE p.order_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = p.order_id AND o.status = 'paid')`},
		{"paid orders (not seeded) without their payment record", `SELECT COUNT(*) FROM orders o WHERE o.status = 'paid' AND o.id NOT LIKE 'ord_seed_%' AND NOT EXISTS (SELECT 1 FROM payments y WHERE y.order_id = o.id)`},
		{"payment records of orders not paid", `SELECT COUNT(*) FROM payments y WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = y.order_id AND o.status = 'paid')`},
		{"paid orders (not seeded) without their order.paid notice", `SELECT COUNT(*) FROM orders o WHERE o.status = 'paid' AND o.id NOT LIKE 'ord_seed_%' AND NOT EXISTS (SELECT 1 FROM notices n WHERE n.dedupe_key = 'order.paid:' || o.id)`},
	} {
		var n int64
		if err := storetest.Query(copied, &n, check.query); err != nil {
			t.Fatalf("%s: %v", check.what, err)
		}
		if n != 0 {
			t.Errorf("the backup has %d %s", n, check.what)
		}
	}
	if paidOrders < int64(len(before)) {
		t.Errorf("the backup holds %d paid orders, fewer than the %d acknowledged before it", paidOrders, len(before))
	}
}
