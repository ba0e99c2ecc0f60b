package store

import (
	"context"
	"time"

	"entitlements/billing"
)

// CreateReminders creates, for every vehicle whose coverage ends within
// the largest reminder stage and that billing.Remind accepts at now, the
// coverage.expiring notice of the nearest due stage, once per stage and
// coverage end (SPEC "Notices").
//
// It is set-based: per stage window one query selects, by the indexed
// coverage_ends_at range, the vehicles not yet notified for that stage (or
// a nearer one) of their current coverage end; the timelines of those
// candidates are read in the same transaction for billing to decide, and
// notices are inserted in batches with ON CONFLICT DO NOTHING on the
// dedupe key. Reminders are keyed on coverage_ends_at, the final end of
// coverage.
func (db *DB) CreateReminders(ctx context.Context, now time.Time, stages []int, loc *time.Location, batch int) (int, error) {
	where := db.remindWhere()
	covered := func(tx *Tx, cs []coverageCandidate) ([]coverageCandidate, error) {
		vins := make([]any, len(cs))
		for i, c := range cs {
			vins[i] = c.VIN
		}
		tls, err := db.timelinesAt(tx, vins, now)
		if err != nil {
			return nil, err
		}
		kept := cs[:0:0]
		for _, c := range cs {
			if billing.Remind(tls[billing.VIN(c.VIN)], now) {
				kept = append(kept, c)
			}
		}
		return kept, nil
	}
	total := 0
	for _, w := range billing.ReminderWindows(stages) {
		args := []any{string(billing.NoticeExpiring), w.Stage}
		n, err := db.createCoverageNotices(ctx, JobRemind, now, batch, now.Add(w.After), now.Add(w.Until), where, args, covered,
			func(c coverageCandidate) billing.Notice {
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
// parameter) for their coverage end at a stage up to the second: one
// probe of the notices' coverage index, in the order of the walk.
func (db *DB) remindWhere() string {
	return `NOT EXISTS (SELECT 1 FROM notices n
			WHERE n.vin = v.vin AND n.kind = ? AND n.covered_until = v.coverage_ends_at AND n.stage <= ?` + db.fence() + `)`
}

// timelinesAt reads, in tx, the periods of vins (distinct) that may
// contain now (refunded ones included: billing skips them): as much of
// each timeline as coverage at now depends on. One query per 1024 on
// SQLite, one on PostgreSQL.
func (db *DB) timelinesAt(tx *Tx, vins []any, now time.Time) (map[billing.VIN]billing.Timeline, error) {
	at := db.timeArg(now)
	return db.timelines(tx, db.periodsAtSQL, []any{at, at}, vins)
}

func (db *DB) periodsAtSQL(n int) statement {
	return statement{db.bulkKey("remind/periods", n), func() string {
		return `SELECT ` + db.periodColumns() + ` FROM periods WHERE starts_at <= ? AND ends_at > ? AND ` + db.inList("vin", n)
	}}
}
