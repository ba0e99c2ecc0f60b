// Package scheduler runs the service's background jobs (expiry, reminders,
// stale-order cancellation, notice delivery) on robfig/cron/v3. Jobs are
// state-driven and have the shape Run(ctx, now) error, so a run after
// downtime catches up on everything missed, and tests call them directly.
package scheduler
