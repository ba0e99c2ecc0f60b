package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"entitlements/store"
	"entitlements/store/storetest"

	_ "github.com/mattn/go-sqlite3"
)

// TestWriterSettings checks the PRAGMAs the ConnectHook gives the writer.
func TestWriterSettings(t *testing.T) {
	cfg := store.Config{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "w.db"), CacheMiB: 32}
	db, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var cache, auto, limit int64
	for name, v := range map[string]*int64{"cache_size": &cache, "wal_autocheckpoint": &auto, "journal_size_limit": &limit} {
		if *v, err = db.WriterPragma(name); err != nil {
			t.Fatal(err)
		}
	}
	if cache != -32*1024 || auto != 0 || limit != 256<<20 {
		t.Errorf("writer cache_size = %d, wal_autocheckpoint = %d, journal_size_limit = %d; want %d, 0 and %d",
			cache, auto, limit, -32*1024, 256<<20)
	}
}

// TestCheckpointerCopiesTheWALBack writes with automatic checkpoints off
// and reads the database file alone (immutable=1 ignores the WAL): the
// rows are there only once the background checkpointer copied them.
func TestCheckpointerCopiesTheWALBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	db, err := store.Open(context.Background(), store.Config{Driver: store.SQLite, DSN: path, CheckpointEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := storetest.Exec(db, `CREATE TABLE t (n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if err := storetest.Exec(db, `INSERT INTO t VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
	}
	file, err := sql.Open("sqlite3", "file:"+path+"?immutable=1")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		file.SetMaxIdleConns(0) // a fresh connection reads the file as it is now
		var n int
		err := file.QueryRow(`SELECT COUNT(*) FROM t`).Scan(&n)
		if err == nil && n == 100 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the database file holds %d rows (err %v) 10 s after 100 were committed: the WAL was not checkpointed", n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
