package store

import (
	"context"
	"slices"
)

// MigrateOnly applies the given migrations, for tests that start from a
// database as an older release left it.
func (db *DB) MigrateOnly(ctx context.Context, versions ...int) ([]int, error) {
	return db.migrateWhere(ctx, func(v int) bool { return slices.Contains(versions, v) })
}
