package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"gorm.io/gorm"
)

// A group of statements being prepared, which waits for the writer's one
// SQLite connection, must not stop the transaction holding that
// connection from looking up its own statements: the first usage batch
// after a start, arriving while a payment commits, waited for the payment
// and the payment for it until the batch's request was cancelled.
func TestPreparingStatementsDoesNotBlockATransaction(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, Config{Driver: SQLite, DSN: filepath.Join(t.TempDir(), "stmt.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	st := db.orderPaidStmt() // prepared by Migrate
	prepared := make(chan error, 1)
	err = db.tx(ctx, func(tx *gorm.DB) error {
		go func() {
			prepared <- db.prepareWrites(ctx, "late", func() []statement {
				return []statement{{key: "late/one", query: func() string { return `SELECT 1` }}}
			})
		}()
		time.Sleep(100 * time.Millisecond) // prepareWrites is now waiting for this transaction's connection
		looked := make(chan error, 1)
		go func() {
			_, err := db.txStmt(tx, st)
			looked <- err
		}()
		select {
		case err := <-looked:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("txStmt in the writer's transaction waited 5 s for statements being prepared outside it")
			return nil
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-prepared; err != nil {
		t.Fatalf("prepareWrites after the transaction: %v", err)
	}
	if db.stmts.get("late/one") == nil {
		t.Error("the late group's statement is not in the cache")
	}
}
