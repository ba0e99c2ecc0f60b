package scheduler

import (
	"context"
	"log/slog"
	"time"
)

// ExpiryStore is what Expire needs from the store.
type ExpiryStore interface {
	CreateExpiredNotices(ctx context.Context, now time.Time, maxAge time.Duration, loc *time.Location, batch int) (int, error)
}

// defaultBatch bounds the rows one transaction of a job touches, and so
// how long API writes waiting for SQLite's single writer wait behind a
// job; larger batches share the cost of each commit among more rows. The
// jobs phase of the benchmark tool (runJobs in bench/jobs.go: remind and
// expire over a seeded fleet) justifies the size; docs/performance.md
// keeps its figures, and those of the larger batches it was tried
// against ("Tried and dropped").
const defaultBatch = 2000

// Expire creates the coverage.expired notice of every vehicle whose
// coverage ended no more than MaxAge ago (SPEC "Notices": older lapses are
// not announced, so a service that was down for a month does not greet
// owners with stale news). Store, MaxAge and Location are required.
// Nothing is marked on the periods: access and a period's status are
// computed from their instants (docs/performance.md).
type Expire struct {
	Store    ExpiryStore
	MaxAge   time.Duration // notices.expired_max_age
	Location *time.Location
	Batch    int // rows per transaction; defaults to defaultBatch
	Logger   *slog.Logger
}

// Run does the job at now.
func (j Expire) Run(ctx context.Context, now time.Time) error {
	batch := or(j.Batch, defaultBatch)
	notices, err := j.Store.CreateExpiredNotices(ctx, now, j.MaxAge, j.Location, batch)
	if notices > 0 {
		logger(j.Logger).Info("coverage expired", slog.Int("notices", notices))
	}
	return err
}

func or(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
