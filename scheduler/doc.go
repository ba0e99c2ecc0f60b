// Package scheduler runs the service's background jobs (expiry, reminders,
// stale-order cancellation, notice delivery) on robfig/cron/v3. Jobs are
// state-driven and have the shape Run(ctx, now) error, so a run after
// downtime catches up on everything missed, and tests call them directly.
//
// Guarantees (SPEC "Notices"):
//
//   - Created once: every notice has a dedupe key (VIN, kind, stage,
//     coverage end) that the outbox enforces, and jobs create notices in
//     the transaction that decides them. Running a job again, in this or
//     another replica, creates nothing new.
//   - Delivered at least once: a notice is claimed with a lease in a short
//     transaction, sent outside any transaction, then marked. A process
//     killed at any point leaves it pending; it is sent again when the
//     lease ends, with the same webhook-id, so receivers can deduplicate.
//   - One replica a tick: with Options.Runs set, a run first claims its
//     job's tick (store.DB records it in job_runs) and the replicas that
//     find it claimed skip it; "@every" schedules fire at the multiples of
//     their interval so that replicas share their ticks.
//   - One replica at a time: on PostgreSQL each job transaction takes
//     pg_try_advisory_xact_lock on the job's key and skips when another
//     replica holds it; on SQLite write transactions are exclusive anyway.
//     Claims never hand one notice to two senders at once.
//
// Access decisions never depend on these jobs having run: coverage is
// computed from period timestamps at request time.
package scheduler
