package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// OrderCanceller cancels unpaid orders created more than ttl before now
// and returns how many it cancelled. It must be idempotent: an order
// cancelled once is left alone. It keeps replicas from running it at the
// same time (store.DB does so with the job's lock).
type OrderCanceller interface {
	CancelStaleOrders(ctx context.Context, now time.Time, ttl time.Duration) (int, error)
}

// CancelUnpaid cancels orders left unpaid longer than TTL
// (orders.unpaid_ttl). Orders and TTL are required.
type CancelUnpaid struct {
	Orders OrderCanceller
	TTL    time.Duration
	Logger *slog.Logger
}

// JobCancelUnpaid is the job's name, and the key of its lock.
const JobCancelUnpaid = "cancel_unpaid"

// Run does the job at now.
func (j CancelUnpaid) Run(ctx context.Context, now time.Time) error {
	n, err := j.Orders.CancelStaleOrders(ctx, now, j.TTL)
	if err != nil {
		return fmt.Errorf("cancel stale orders: %w", err)
	}
	if n > 0 {
		logger(j.Logger).Info("stale orders cancelled", slog.Int("orders", n))
	}
	return nil
}
