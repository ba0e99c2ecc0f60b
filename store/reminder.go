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
		var unsure []any // VINs whose periods billing must look at
		for _, c := range cs {
			if !sureCovered(c, now) {
				unsure = append(unsure, c.VIN)
			}
		}
		var tls map[billing.VIN]billing.Timeline
		if len(unsure) > 0 {
			var err error
			if tls, err = db.timelinesAt(tx, unsure, now); err != nil {
				return nil, err
			}
		}
		kept := cs[:0:0]
		for _, c := range cs {
			if sureCovered(c, now) || billing.Remind(tls[billing.VIN(c.VIN)], now) {
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

// coveredSinceMigration adds vehicles.covered_since, the start of the last
// stretch of coverage (billing.Timeline.CoveredSince), written with
// coverage_ends_at by every timeline write, and puts it in the jobs'
// covering index. A reminder is due only while its vehicle is covered;
// a vehicle whose stretch began by now is (its coverage_ends_at is ahead),
// so remind reads the periods only of the others: covered_since later
// than now (an activation ahead of the clock) or NULL (not written since
// this migration). Reading every candidate's periods was 28 % of remind's
// CPU over a million-car fleet and a third of its I/O system calls
// (docs/performance.md). Rebuilding the index reads every vehicle once;
// on PostgreSQL writes to vehicles wait for it.
var coveredSinceMigration = migration{Version: 35, Name: "vehicles: covered_since, in the jobs' coverage index", Up: []string{
	`ALTER TABLE vehicles ADD COLUMN covered_since {{TS}}`,
	`DROP INDEX vehicles_coverage_owner_idx`,
	`CREATE INDEX vehicles_coverage_owner_idx ON vehicles (coverage_ends_at, vin, owner_id, covered_since)`,
}}

// sureCovered reports whether candidate c is covered at now without
// reading its periods: its last stretch of coverage began by now and ends
// after it (coverage_ends_at, in the reminder window). Every instant of
// that stretch is covered (billing.Timeline.CoveredSince), so billing.Remind
// would say yes. Otherwise (the stretch begins later, or covered_since is
// not known) its periods decide: it may still be covered now, by an
// earlier stretch.
func sureCovered(c coverageCandidate, now time.Time) bool {
	return c.CoveredSince.Valid && !c.CoveredSince.T.After(now) && c.CoverageEndsAt.After(now)
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
