package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"entitlements/billing"
)

// coverageCandidate is a vehicle that needs a coverage notice.
type coverageCandidate struct {
	VIN            string
	OwnerID        string
	CoverageEndsAt time.Time
	CoveredSince   dbTime // NULL when not known (see coveredSinceMigration)
}

// CreateExpiredNotices creates the coverage.expired notice of every vehicle
// whose coverage (its last non-refunded period) ended in (now-maxAge, now]
// and has no notice for that end yet; older ends are not announced. It
// selects vehicles by the indexed coverage_ends_at range, batch at a time,
// and returns how many notices it created.
func (db *DB) CreateExpiredNotices(ctx context.Context, now time.Time, maxAge time.Duration, loc *time.Location, batch int) (int, error) {
	args := []any{string(billing.NoticeExpired)}
	return db.createCoverageNotices(ctx, JobExpire, now, batch, now.Add(-maxAge), now, db.expiredWhere(), args, nil,
		func(c coverageCandidate) billing.Notice {
			return billing.ExpiredNotice(billing.VIN(c.VIN), c.OwnerID, c.CoverageEndsAt, loc)
		})
}

// expiredWhere keeps the vehicles without a coverage.expired notice (the
// kind is its parameter) for their coverage end.
func (db *DB) expiredWhere() string {
	return `NOT EXISTS (SELECT 1 FROM notices n
			WHERE n.vin = v.vin AND n.kind = ? AND n.covered_until = v.coverage_ends_at` + db.fence() + `)`
}

// coverageQuery selects (vin, owner_id, coverage_ends_at, covered_since) of the vehicles
// v matching where, in (coverage_ends_at, vin) order. Its parameters are
// the lower bound (the first batch: the range's lower end; the next ones:
// the last vehicle seen, end and VIN), the upper end, where's parameters
// and the limit.
//
// After the first batch the lower bound is a row-value comparison on the
// (coverage_ends_at, vin, owner_id) index: each batch seeks to where the
// last one ended instead of rescanning a range in which thousands of
// vehicles may share one end, and reads no vehicle row
// (TestJobQueryPlans).
func (db *DB) coverageQuery(where string, next bool) string {
	q := `SELECT v.vin, v.owner_id, ` + db.timeCol("v.coverage_ends_at") + `, ` + db.timeCol("v.covered_since") + ` FROM vehicles v WHERE `
	if next {
		q += `(v.coverage_ends_at, v.vin) > (?, ?)`
	} else {
		q += `v.coverage_ends_at > ?`
	}
	return q + ` AND v.coverage_ends_at <= ? AND ` + where + ` ORDER BY v.coverage_ends_at, v.vin LIMIT ?`
}

// createCoverageNotices selects the vehicles whose coverage_ends_at is in
// (lower, upper] and that match where (over vehicles v; args are its
// parameters) in (coverage_ends_at, vin) order, batch at a time, keeps
// those keep accepts (all when keep is nil) and inserts a notice built
// for each, one job transaction per batch. Each batch starts after the last vehicle of the
// previous one (keyset), so a run reads the range once however many
// batches it takes.
func (db *DB) createCoverageNotices(ctx context.Context, job string, now time.Time, batch int, lower, upper time.Time,
	where string, args []any, keep func(tx *Tx, cs []coverageCandidate) ([]coverageCandidate, error),
	build func(coverageCandidate) billing.Notice) (int, error) {
	total := 0
	var after *coverageCandidate
	for {
		next := after != nil
		q := statement{"jobs/" + job + "/" + strconv.FormatBool(next), func() string { return db.coverageQuery(where, next) }}
		qargs := []any{db.timeArg(lower)}
		if next {
			qargs = []any{db.timeArg(after.CoverageEndsAt), after.VIN}
		}
		qargs = append(append(append(qargs, db.timeArg(upper)), args...), batch)
		var cs []coverageCandidate
		var created int
		err := db.jobWrite(ctx, job, writeSingle, func(tx *Tx) error {
			var err error
			if cs, err = coverageCandidates(tx, q, qargs); err != nil {
				return err
			}
			kept := cs
			if keep != nil && len(cs) > 0 {
				if kept, err = keep(tx, cs); err != nil {
					return err
				}
			}
			ns := make([]billing.Notice, len(kept))
			for i, c := range kept {
				ns[i] = build(c)
			}
			created, err = db.insertNotices(tx, ns, now)
			return err
		})
		if errors.Is(err, errJobBusy) {
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("%s notices: %w", job, err)
		}
		total += created
		if len(cs) < batch {
			return total, nil
		}
		after = &cs[len(cs)-1]
	}
}

// coverageCandidates runs q, which selects (vin, owner_id,
// coverage_ends_at, covered_since), and scans its rows by hand: a job reads them by the
// hundred thousand.
func coverageCandidates(tx *Tx, q statement, args []any) ([]coverageCandidate, error) {
	rows, err := tx.query(q, args...)
	if err != nil {
		return nil, err
	}
	var cs []coverageCandidate
	err = eachRow(rows, func() error {
		var c coverageCandidate
		var end dbTime
		if err := rows.Scan(&c.VIN, &c.OwnerID, &end, &c.CoveredSince); err != nil {
			return err
		}
		c.CoverageEndsAt = end.T
		cs = append(cs, c)
		return nil
	})
	return cs, err
}

// fence ends a correlated EXISTS subquery so that it stays a per-row index
// probe. PostgreSQL otherwise may turn it into a join planned from table
// statistics, which lag far behind a notices table that a first run fills
// by thousands (the jobs phase of the bench harness on PostgreSQL saw a
// sequential scan of notices per vehicle). OFFSET 0 keeps it from being
// pulled up.
// SQLite probes the index anyway.
func (db *DB) fence() string {
	if db.dialect == Postgres {
		return ` OFFSET 0`
	}
	return ""
}
