package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"
)

func openGroupTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), Config{Driver: SQLite, DSN: filepath.Join(t.TempDir(), "g.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.write.Exec(`CREATE TABLE g (n INTEGER PRIMARY KEY)`).Error; err != nil {
		t.Fatal(err)
	}
	return db
}

// TestGroupTxEachWriteStandsAlone runs writes that wait for the writer
// together: those that fail (an error, a panic, a constraint) leave no
// trace and get their own error; all others are committed.
func TestGroupTxEachWriteStandsAlone(t *testing.T) {
	db := openGroupTest(t)
	var hold sync.WaitGroup
	hold.Add(1)
	// Hold the writer so that the writes below queue and form groups.
	go db.tx(context.Background(), func(tx *gorm.DB) error { hold.Wait(); return nil })
	time.Sleep(20 * time.Millisecond)

	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = db.groupTx(context.Background(), func(tx *gorm.DB) error {
				if err := tx.Exec(`INSERT INTO g (n) VALUES (?)`, i).Error; err != nil {
					return err
				}
				switch i % 10 {
				case 3:
					return fmt.Errorf("write %d refused", i)
				case 5:
					panic(fmt.Sprintf("write %d panicked", i))
				case 7:
					return tx.Exec(`INSERT INTO g (n) VALUES (?)`, i).Error // duplicate key
				}
				return nil
			})
		}(i)
	}
	time.Sleep(50 * time.Millisecond)
	hold.Done()
	wg.Wait()

	var got []int
	if err := db.write.Raw(`SELECT n FROM g ORDER BY n`).Scan(&got).Error; err != nil {
		t.Fatal(err)
	}
	stored := map[int]bool{}
	for _, v := range got {
		stored[v] = true
	}
	for i, err := range errs {
		failing := i%10 == 3 || i%10 == 5 || i%10 == 7
		if failing == (err == nil) {
			t.Errorf("write %d: err = %v, want an error: %v", i, err, failing)
		}
		if stored[i] == failing {
			t.Errorf("write %d stored = %v, want %v", i, stored[i], !failing)
		}
	}
	if len(got) != n*7/10 {
		t.Errorf("%d rows stored, want %d", len(got), n*7/10)
	}
}

// TestGroupTxCallerGivingUp checks that a caller whose context ends while
// it waits gets its context's error and its write never runs, and that it
// does not disturb the writes grouped with it.
func TestGroupTxCallerGivingUp(t *testing.T) {
	db := openGroupTest(t)
	var hold sync.WaitGroup
	hold.Add(1)
	go db.tx(context.Background(), func(tx *gorm.DB) error { hold.Wait(); return nil })
	time.Sleep(20 * time.Millisecond)

	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		gaveUp <- db.groupTx(ctx, func(tx *gorm.DB) error { return tx.Exec(`INSERT INTO g (n) VALUES (-1)`).Error })
	}()
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = db.groupTx(context.Background(), func(tx *gorm.DB) error { return tx.Exec(`INSERT INTO g (n) VALUES (?)`, i).Error })
		}(i)
	}
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller got %v, want context.Canceled", err)
	}
	hold.Done()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	var rows, cancelled int
	db.write.Raw(`SELECT COUNT(*) FROM g`).Scan(&rows)
	db.write.Raw(`SELECT COUNT(*) FROM g WHERE n = -1`).Scan(&cancelled)
	if rows != 20 || cancelled != 0 {
		t.Errorf("%d rows (%d of the cancelled write), want 20 and 0", rows, cancelled)
	}
}

// TestGroupTxCallerBehindAFullGroup: a caller that gets the writer while
// more than maxGroup writes are queued ahead of it runs those first, then
// its own, and does not wait for someone else to come along.
func TestGroupTxCallerBehindAFullGroup(t *testing.T) {
	db := openGroupTest(t)
	ahead := make([]*groupReq, maxGroup)
	for i := range ahead {
		i := i
		ahead[i] = &groupReq{done: make(chan error, 1), fn: func(tx *gorm.DB) error {
			return tx.Exec(`INSERT INTO g (n) VALUES (?)`, 1000+i).Error
		}}
	}
	db.group.queue = append(db.group.queue, ahead...) // queued by callers already waiting
	done := make(chan error, 1)
	go func() {
		done <- db.groupTx(context.Background(), func(tx *gorm.DB) error { return tx.Exec(`INSERT INTO g (n) VALUES (1)`).Error })
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the caller behind a full group never ran its write")
	}
	for i, r := range ahead {
		if err := <-r.done; err != nil {
			t.Errorf("write %d ahead: %v", i, err)
		}
	}
	var n int
	db.write.Raw(`SELECT COUNT(*) FROM g`).Scan(&n)
	if n != maxGroup+1 {
		t.Errorf("%d rows, want %d", n, maxGroup+1)
	}
}
