package store

import (
	"context"
	"time"

	"entitlements/billing"
)

// CreateReminders creates, for every vehicle covered at now whose coverage
// ends within the largest reminder stage, the coverage.expiring notice of
// the nearest due stage, once per stage and coverage end (SPEC "Notices").
//
// It is set-based: per stage window one query selects, by the indexed
// coverage_ends_at range, the vehicles not yet notified for that stage (or
// a nearer one) of their current coverage end; notices are inserted in
// batches with ON CONFLICT DO NOTHING on the dedupe key. A vehicle counts
// as covered when a non-refunded period contains now: coverage_ends_at
// alone is not enough, since a vehicle that lapsed and whose next period
// starts later (a payment stamped ahead of the clock, an activation a few
// minutes in the future) is not covered yet and gets no reminder until it
// is. Reminders are keyed on coverage_ends_at, the final end of coverage.
func (db *DB) CreateReminders(ctx context.Context, now time.Time, stages []int, loc *time.Location, batch int) (int, error) {
	where := db.remindWhere()
	total := 0
	for _, w := range billing.ReminderWindows(stages) {
		args := []any{string(billing.NoticeExpiring), w.Stage, utc(now), utc(now)}
		n, err := db.createCoverageNotices(ctx, JobRemind, now, batch, now.Add(w.After), now.Add(w.Until), where, args, func(c coverageCandidate) billing.Notice {
			return billing.ExpiringNotice(billing.VIN(c.VIN), c.OwnerID, w.Stage, c.CoverageEndsAt, loc)
		})
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// remindWhere keeps the vehicles that have no notice of a kind (its first
// parameter) for their coverage end at a stage up to the second, and that
// are covered at an instant (the third and fourth). The notice probe comes
// first: it reads one index in the order of the walk, while the period
// probe reads rows at random, and in a regular run most vehicles in a
// window were notified already.
func (db *DB) remindWhere() string {
	return `NOT EXISTS (SELECT 1 FROM notices n
			WHERE n.vin = v.vin AND n.kind = ? AND n.covered_until = v.coverage_ends_at AND n.stage <= ?` + db.fence() + `)
		AND EXISTS (SELECT 1 FROM periods p
			WHERE p.vin = v.vin AND p.refunded_at IS NULL AND p.starts_at <= ? AND p.ends_at > ?` + db.fence() + `)`
}
