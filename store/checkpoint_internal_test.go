package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gorm.io/gorm"
)

// TestWALStaysBoundedUnderSteadyWrites: a stream of write transactions
// with no pause between them must not grow the WAL without bound. PASSIVE
// checkpoints alone never let SQLite restart the WAL then (a commit always
// lands between a pass and the next transaction); the checkpointer holds
// writers off for a pass once the WAL is past its limit.
func TestWALStaysBoundedUnderSteadyWrites(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wal.db")
	const limit = 256 << 10
	db, err := Open(ctx, Config{Driver: SQLite, DSN: path, CheckpointEvery: 5 * time.Millisecond, WALLimit: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.tx(ctx, func(tx *gorm.DB) error {
		return tx.Exec(`CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB NOT NULL)`).Error
	}); err != nil {
		t.Fatal(err)
	}
	// 32 MiB in 4 000 transactions of 8 KiB, back to back: 128 times the
	// limit, for about a second.
	const txs, size = 4000, 8 << 10
	var largest int64
	for i := 0; i < txs; i++ {
		if err := db.tx(ctx, func(tx *gorm.DB) error {
			return tx.Exec(`INSERT INTO blobs (b) VALUES (randomblob(?))`, size).Error
		}); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path + "-wal"); err == nil {
			largest = max(largest, fi.Size())
		}
	}
	// Without the held pass the WAL ends near the 32 MiB written (and far
	// more pages: every insert also rewrites the table's b-tree pages).
	if largest > txs*size/4 {
		t.Errorf("the WAL reached %d bytes over %d bytes written in %d transactions; want it restarted and truncated to %d",
			largest, txs*size, txs, limit)
	}
	t.Logf("largest WAL: %d KiB", largest>>10)
}
