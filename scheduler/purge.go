package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// KeyPurger deletes idempotency keys claimed before cutoff; store.DB
// implements it.
type KeyPurger interface {
	PurgeIdempotencyKeys(ctx context.Context, cutoff time.Time) (int, error)
}

// DefaultKeyRetention is how long an Idempotency-Key is remembered: clients
// retry within minutes, and a day is what payment providers keep.
const DefaultKeyRetention = 24 * time.Hour

// PurgeKeys deletes idempotency keys older than Retention
// (DefaultKeyRetention when 0). A request repeated after that creates a
// new order or refund, as with any new key.
type PurgeKeys struct {
	Store     KeyPurger
	Retention time.Duration
	Log       *slog.Logger
}

// Run deletes every key claimed before now - Retention.
func (j PurgeKeys) Run(ctx context.Context, now time.Time) error {
	ret := j.Retention
	if ret <= 0 {
		ret = DefaultKeyRetention
	}
	n, err := j.Store.PurgeIdempotencyKeys(ctx, now.Add(-ret))
	if err != nil {
		return fmt.Errorf("purge idempotency keys: %w", err)
	}
	if n > 0 {
		logger(j.Log).Info("idempotency keys purged", slog.Int("keys", n))
	}
	return nil
}
