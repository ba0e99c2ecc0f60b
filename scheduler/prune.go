package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// UsagePruner deletes raw usage records; store.DB implements it.
type UsagePruner interface {
	// DeleteUsageBefore deletes at most limit usage records that started
	// before cutoff, in one short transaction, and returns how many; loc
	// is the zone of the usage cycles (calendar months).
	DeleteUsageBefore(ctx context.Context, cutoff time.Time, loc *time.Location, limit int) (int64, error)
}

// DefaultPruneBatch is how many records PruneUsage deletes per
// transaction when Batch is 0: small enough that ingestion (which shares
// SQLite's single writer) waits milliseconds, not seconds.
const DefaultPruneBatch = 5000

// PruneUsage deletes raw usage records that started more than Retention
// before now, in batches of Batch records, one transaction each. The
// per-cycle aggregates are kept, so the data block and past months are
// unchanged. Ingestion rejects records older than the same window, so a
// pruned record replayed by the carrier cannot be counted twice.
//
// It is state-driven: a run after downtime deletes everything overdue.
type PruneUsage struct {
	Store     UsagePruner
	Retention time.Duration
	Location  *time.Location // the zone of the usage cycles (billing.location); required
	Batch     int            // records per transaction; 0 = DefaultPruneBatch
	Log       *slog.Logger   // nil = no logging
}

// Run deletes every overdue record, batch by batch, until none is left or
// ctx is done.
func (j *PruneUsage) Run(ctx context.Context, now time.Time) error {
	if j.Retention <= 0 {
		return fmt.Errorf("prune usage: retention must be positive, got %s", j.Retention)
	}
	batch := j.Batch
	if batch <= 0 {
		batch = DefaultPruneBatch
	}
	if j.Location == nil {
		return fmt.Errorf("prune usage: no location: usage cycles are calendar months of billing.location")
	}
	cutoff := now.Add(-j.Retention)
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("prune usage: stopped after %d records: %w", total, err)
		}
		n, err := j.Store.DeleteUsageBefore(ctx, cutoff, j.Location, batch)
		if err != nil {
			return fmt.Errorf("prune usage: after %d records: %w", total, err)
		}
		total += n
		if n < int64(batch) {
			break
		}
	}
	if j.Log != nil && total > 0 {
		j.Log.InfoContext(ctx, "pruned usage records", slog.Int64("deleted", total), slog.Time("cutoff", cutoff))
	}
	return nil
}
