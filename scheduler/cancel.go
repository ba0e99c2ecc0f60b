package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// OrderCanceller cancels unpaid orders created more than ttl before now
// and returns how many it cancelled. It must be idempotent: an order
// cancelled once is left alone.
type OrderCanceller interface {
	CancelStaleOrders(ctx context.Context, now time.Time, ttl time.Duration) (int, error)
}

// Locker runs fn only if no other replica is running the job (see
// store.DB.Exclusive), reporting whether it ran.
type Locker interface {
	Exclusive(ctx context.Context, job string, fn func(ctx context.Context) error) (bool, error)
}

// CancelUnpaid cancels orders left unpaid longer than TTL
// (orders.unpaid_ttl). Orders and TTL are required; Lock, when set, keeps
// replicas from running it at the same time.
type CancelUnpaid struct {
	Orders OrderCanceller
	Lock   Locker
	TTL    time.Duration
	Logger *slog.Logger
}

// JobCancelUnpaid is the job's name, and the key of its lock.
const JobCancelUnpaid = "cancel_unpaid"

// Run does the job at now.
func (j CancelUnpaid) Run(ctx context.Context, now time.Time) error {
	work := func(ctx context.Context) error {
		n, err := j.Orders.CancelStaleOrders(ctx, now, j.TTL)
		if err != nil {
			return fmt.Errorf("cancel stale orders: %w", err)
		}
		if n > 0 {
			logger(j.Logger).Info("stale orders cancelled", slog.Int("orders", n))
		}
		return nil
	}
	if j.Lock == nil {
		return work(ctx)
	}
	_, err := j.Lock.Exclusive(ctx, JobCancelUnpaid, work)
	return err
}
