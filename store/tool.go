package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Tools and tests look at the database, and change it by hand, through
// these two methods; the service's own reads and writes are methods of
// the store. Neither hands out a pool: a query runs read-only, and a
// statement that changes the database goes through the write path.

// ToolQuery runs the query q (with ? placeholders) in a read-only
// transaction on the reader pool and scans its rows into dest as gorm's
// Scan does (a scalar, a struct, or a slice of either). On PostgreSQL,
// where the reader pool is the writer's, the transaction is READ ONLY;
// SQLite's reader connections refuse changes (query_only).
func (db *DB) ToolQuery(ctx context.Context, dest any, q string, args ...any) error {
	tx := db.read.WithContext(ctx).Begin(&sql.TxOptions{ReadOnly: true})
	if tx.Error != nil {
		return fmt.Errorf("tool query: %w", tx.Error)
	}
	defer tx.Rollback()
	if err := tx.Raw(q, args...).Scan(dest).Error; err != nil {
		return fmt.Errorf("tool query: %w", err)
	}
	return nil
}

// ToolExec runs the statement q (with ? placeholders) in a write
// transaction of its own, through the write path (the SQLite writer slot),
// and returns how many rows it changed. It then empties the snapshot
// cache, since it cannot know which vehicles q changed.
func (db *DB) ToolExec(ctx context.Context, q string, args ...any) (int64, error) {
	var n int64
	err := db.writeBulk(ctx, func(tx *Tx) error {
		res, err := tx.sql.ExecContext(tx.ctx, rebind(db.dialect, q), args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	db.ForgetSnapshots()
	if err != nil {
		return 0, fmt.Errorf("tool exec: %w", err)
	}
	return n, nil
}
