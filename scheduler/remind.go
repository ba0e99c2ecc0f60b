package scheduler

import (
	"context"
	"log/slog"
	"time"
)

// ReminderStore is what Remind needs from the store.
type ReminderStore interface {
	CreateReminders(ctx context.Context, now time.Time, stages []int, loc *time.Location, batch int) (int, error)
}

// Remind creates coverage.expiring notices: for each covered vehicle whose
// coverage ends within a reminder stage, the nearest due stage, once per
// stage and coverage end. A purchase that moves the end re-arms every
// stage. Store, Stages and Location are required.
type Remind struct {
	Store    ReminderStore
	Stages   []int // notices.reminder_days, e.g. 30, 7, 1
	Location *time.Location
	Batch    int // rows per transaction; defaults to defaultBatch
	Logger   *slog.Logger
}

// Run does the job at now.
func (j Remind) Run(ctx context.Context, now time.Time) error {
	n, err := j.Store.CreateReminders(ctx, now, j.Stages, j.Location, or(j.Batch, defaultBatch))
	if n > 0 {
		logger(j.Logger).Info("reminders created", slog.Int("notices", n))
	}
	return err
}
