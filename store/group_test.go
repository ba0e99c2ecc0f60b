package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func openGroupTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), Config{Driver: SQLite, DSN: filepath.Join(t.TempDir(), "g.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.write(context.Background(), nil, func(tx *Tx) error { return tx.raw(`CREATE TABLE g (n INTEGER PRIMARY KEY)`) }); err != nil {
		t.Fatal(err)
	}
	return db
}

// holdWriter takes the writer slot, as a running write transaction holds
// it, so that writes queue and form groups; release gives it back.
func holdWriter(db *DB) (release func()) {
	db.wr.slot <- struct{}{}
	return func() { <-db.wr.slot }
}

// waitQueued waits until n writes are queued for a group commit: no
// clock, the queue itself says when they are.
func waitQueued(t *testing.T, db *DB, n int) {
	t.Helper()
	for {
		db.wr.mu.Lock()
		q := len(db.wr.queue)
		db.wr.mu.Unlock()
		if q >= n {
			return
		}
		runtime.Gosched()
	}
}

func insertG(n int) func(tx *Tx) error {
	return func(tx *Tx) error { return tx.raw(fmt.Sprintf(`INSERT INTO g (n) VALUES (%d)`, n)) }
}

func countG(t *testing.T, db *DB, where string) int {
	t.Helper()
	var n int
	if err := db.read.Raw(`SELECT COUNT(*) FROM g WHERE ` + where).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// TestGroupWriteEachWriteStandsAlone runs writes that wait for the writer
// together: those that fail (an error, a panic, a constraint) leave no
// trace and get their own error; all others are committed.
func TestGroupWriteEachWriteStandsAlone(t *testing.T) {
	db := openGroupTest(t)
	release := holdWriter(db)
	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Go(func() {
			errs[i] = db.write(context.Background(), nil, func(tx *Tx) error {
				if err := insertG(i)(tx); err != nil {
					return err
				}
				switch i % 10 {
				case 3:
					return fmt.Errorf("write %d refused", i)
				case 5:
					panic(fmt.Sprintf("write %d panicked", i))
				case 7:
					return insertG(i)(tx) // duplicate key
				}
				return nil
			})
		})
	}
	waitQueued(t, db, n)
	release()
	wg.Wait()

	var got []int
	if err := db.read.Raw(`SELECT n FROM g ORDER BY n`).Scan(&got).Error; err != nil {
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

// TestGroupWriteCallerGivingUp checks that a caller whose context ends
// while it waits gets its context's error and its write never runs, and
// that it does not disturb the writes grouped with it.
func TestGroupWriteCallerGivingUp(t *testing.T) {
	db := openGroupTest(t)
	release := holdWriter(db)
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { gaveUp <- db.write(ctx, nil, insertG(-1)) }()
	waitQueued(t, db, 1)
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() { errs[i] = db.write(context.Background(), nil, insertG(i)) })
	}
	waitQueued(t, db, 1+len(errs))
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller got %v, want context.Canceled", err)
	}
	release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if rows, cancelled := countG(t, db, "1=1"), countG(t, db, "n = -1"); rows != 20 || cancelled != 0 {
		t.Errorf("%d rows (%d of the cancelled write), want 20 and 0", rows, cancelled)
	}
}

// TestGroupWriteCallerBehindAFullGroup: a caller that gets the writer
// while more than maxGroup writes are queued ahead of it runs those first,
// then its own, and does not wait for someone else to come along;
// WriteStats counts the two transactions and their writes.
func TestGroupWriteCallerBehindAFullGroup(t *testing.T) {
	db := openGroupTest(t)
	before := db.WriteStats()
	ahead := make([]*groupReq, maxGroup)
	for i := range ahead {
		ahead[i] = &groupReq{done: make(chan error, 1), fn: insertG(1000 + i)}
	}
	db.wr.queue = append(db.wr.queue, ahead...) // queued by callers already waiting
	if err := db.write(context.Background(), nil, insertG(1)); err != nil {
		t.Fatal(err)
	}
	for i, r := range ahead {
		if err := <-r.done; err != nil {
			t.Errorf("write %d ahead: %v", i, err)
		}
	}
	if n := countG(t, db, "1=1"); n != maxGroup+1 {
		t.Errorf("%d rows, want %d", n, maxGroup+1)
	}
	after := db.WriteStats()
	if got, want := (WriteStats{after.Transactions - before.Transactions, after.Writes - before.Writes}), (WriteStats{2, maxGroup + 1}); got != want {
		t.Errorf("WriteStats grew by %+v, want %+v", got, want)
	}
}

// TestWriteAloneGetsItsOwnTransaction: a bulk write queued among others
// runs in a transaction of its own; the writes queued before it still
// share one.
func TestWriteAloneGetsItsOwnTransaction(t *testing.T) {
	db := openGroupTest(t)
	release := holdWriter(db)
	var mu sync.Mutex
	txOf := map[string]int64{}
	record := func(name string) func(tx *Tx) error {
		return func(tx *Tx) error {
			mu.Lock()
			txOf[name] = tx.group
			mu.Unlock()
			return nil
		}
	}
	var wg sync.WaitGroup
	queue := func(name string, alone bool, n int) {
		wg.Go(func() {
			var err error
			if alone {
				err = db.writeAlone(context.Background(), record(name))
			} else {
				err = db.write(context.Background(), nil, record(name))
			}
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		})
		waitQueued(t, db, n)
	}
	queue("a", false, 1)
	queue("b", false, 2)
	queue("bulk", true, 3)
	queue("c", false, 4)
	release()
	wg.Wait()
	if txOf["a"] != txOf["b"] || txOf["bulk"] == txOf["a"] || txOf["bulk"] == txOf["c"] {
		t.Errorf("transactions: a %d, b %d, bulk %d, c %d; want a and b together, bulk alone", txOf["a"], txOf["b"], txOf["bulk"], txOf["c"])
	}
}

// TestBoundedWritesKeepStatementJournalsInMemory: a group of writes, a
// write alone and a job's batch run with the writer's temporary files
// (their statement journals) in memory; a bulk write (a usage batch, a
// migration) and a job's sweep over every row due, whose statements may
// change thousands of pages, with them in files, so that such a journal
// never sits in the service's memory.
func TestBoundedWritesKeepStatementJournalsInMemory(t *testing.T) {
	db := openGroupTest(t)
	tempStore := func(tx *Tx) (int, error) {
		var v int
		err := tx.sql.QueryRowContext(tx.ctx, `PRAGMA temp_store`).Scan(&v)
		return v, err
	}
	var grouped [2]int
	release := holdWriter(db)
	var wg sync.WaitGroup
	for i := range grouped {
		wg.Go(func() {
			if err := db.write(context.Background(), nil, func(tx *Tx) (err error) {
				grouped[i], err = tempStore(tx)
				return err
			}); err != nil {
				t.Error(err)
			}
		})
	}
	waitQueued(t, db, len(grouped))
	release()
	wg.Wait()
	for i, v := range grouped {
		if v != 2 { // MEMORY
			t.Errorf("grouped write %d ran with temp_store = %d, want 2 (memory)", i, v)
		}
	}
	var alone, bulk, jobBatch, jobSweep, after int
	steps := []struct {
		name string
		run  func(fn func(tx *Tx) error) error
		got  *int
		want int // 2: MEMORY; 0: DEFAULT, files
	}{
		{"a write alone", func(fn func(tx *Tx) error) error { return db.writeAlone(context.Background(), fn) }, &alone, 2},
		{"a bulk write", func(fn func(tx *Tx) error) error { return db.writeBulk(context.Background(), fn) }, &bulk, 0},
		{"a job's batch", func(fn func(tx *Tx) error) error {
			return db.jobWrite(context.Background(), "test-job", writeSingle, fn)
		}, &jobBatch, 2},
		{"a job's sweep", func(fn func(tx *Tx) error) error {
			return db.jobWrite(context.Background(), "test-job", writeUnbounded, fn)
		}, &jobSweep, 0},
		{"a write alone after a bulk write", func(fn func(tx *Tx) error) error { return db.writeAlone(context.Background(), fn) }, &after, 2},
	}
	for _, s := range steps {
		if err := s.run(func(tx *Tx) (err error) {
			*s.got, err = tempStore(tx)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if *s.got != s.want {
			t.Errorf("%s ran with temp_store = %d, want %d", s.name, *s.got, s.want)
		}
	}
}

// TestWriterOutlivesATransactionSQLiteEnded: the writer's transactions
// run by hand on its held connection; when SQLite has already ended one
// (as it does after some errors), the writer neither reports a ROLLBACK of
// nothing as a second error nor is left inside a transaction: the next
// write commits.
func TestWriterOutlivesATransactionSQLiteEnded(t *testing.T) {
	db := openGroupTest(t)
	ctx := context.Background()
	boom := errors.New("boom")
	err := db.write(ctx, nil, func(tx *Tx) error {
		if err := tx.raw(`INSERT INTO g (n) VALUES (1)`); err != nil {
			return err
		}
		if err := tx.raw(`ROLLBACK`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("a failed write whose transaction SQLite ended = %v; want boom", err)
	}
	err = db.write(ctx, nil, func(tx *Tx) error { return tx.raw(`ROLLBACK`) })
	if err == nil || !strings.Contains(err.Error(), "commit") || strings.Contains(err.Error(), "rollback:") {
		t.Errorf("a write that ended its own transaction = %v; want its COMMIT's error alone", err)
	}
	if err := db.write(ctx, nil, func(tx *Tx) error { return tx.raw(`INSERT INTO g (n) VALUES (2)`) }); err != nil {
		t.Fatalf("the next write: %v", err)
	}
	if all, second := countG(t, db, `1`), countG(t, db, `n = 2`); all != 1 || second != 1 {
		t.Errorf("%d rows, %d of them the next write's; want only that one", all, second)
	}
}

// TestWriteAfterCloseFails: a write after the store closed gets an error,
// not a panic, and closing twice is harmless.
func TestWriteAfterCloseFails(t *testing.T) {
	db := openGroupTest(t)
	if err := db.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	err := db.write(context.Background(), nil, func(tx *Tx) error { return tx.raw(`INSERT INTO g (n) VALUES (1)`) })
	if err == nil {
		t.Error("a write after Close succeeded")
	}
	if err := db.Close(); err != nil {
		t.Errorf("a second Close() = %v", err)
	}
}
