package store

import (
	"context"
	"fmt"
	"time"
)

// jobRunsMigration keeps the record of which replica ran each tick of a
// scheduler job. The primary key is the claim: the first replica to insert
// (job, tick) runs it, the others skip that tick.
var jobRunsMigration = migration{Version: 34, Name: "job runs: one replica runs each tick of a job", Up: []string{
	`CREATE TABLE job_runs (
		job        TEXT NOT NULL,
		tick       {{TS}} NOT NULL,
		replica    TEXT NOT NULL,
		started_at {{TS}} NOT NULL,
		PRIMARY KEY (job, tick)
	)`,
}}

// JobRunRetention is how long the record of a job's runs is kept.
const JobRunRetention = 7 * 24 * time.Hour

// ClaimJobRun records that replica runs job's tick (the instant the run
// was scheduled for) and reports true, or reports false when another
// replica (or this one) has claimed that tick already: the caller then
// skips it. Replicas whose schedules name the same instants therefore run
// each tick once between them. The claim is committed before the run
// starts: a replica that dies during the run leaves the tick claimed, and
// the next tick, state-driven, does what it left. Runs of job older than
// JobRunRetention are deleted with a successful claim.
func (db *DB) ClaimJobRun(ctx context.Context, job string, tick time.Time, replica string, now time.Time) (bool, error) {
	var claimed bool
	err := db.write(ctx, nil, func(tx *Tx) error {
		res, err := tx.exec(claimJobRunStmt, job, db.timeArg(tick), replica, db.timeArg(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 0 {
			return err
		}
		claimed = true
		_, err = tx.exec(pruneJobRunsStmt, job, db.timeArg(tick.Add(-JobRunRetention)))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("claim %s run at %s: %w", job, tick.UTC().Format(time.RFC3339), err)
	}
	return claimed, nil
}

var (
	claimJobRunStmt = statement{"jobs/claim", func() string {
		return `INSERT INTO job_runs (job, tick, replica, started_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`
	}}
	pruneJobRunsStmt = statement{"jobs/prune-runs", func() string {
		return `DELETE FROM job_runs WHERE job = ? AND tick < ?`
	}}
)
