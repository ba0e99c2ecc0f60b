package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"

	"entitlements/billing"
)

// Scheduler jobs may run in several replicas sharing one database. One
// replica runs each tick of a job: the scheduler claims the tick first
// (ClaimJobRun, in jobrun.go). Only one replica runs a given job at a
// time, also when runs of two ticks overlap:
//
//   - On PostgreSQL every job transaction first takes
//     pg_try_advisory_xact_lock on a key derived from the schema and the
//     job's name; a
//     replica that does not get it skips the run (another one is doing the
//     work). The lock is released when the transaction ends, also when the
//     process dies, so a crash never leaves a job locked.
//   - On SQLite every write transaction is already exclusive: the writer
//     pool has one connection and transactions begin IMMEDIATE, which takes
//     the database's write lock across processes as well. Two replicas on
//     one file therefore run job transactions one after the other.
//
// Either way the jobs are state-driven and their inserts idempotent (dedupe
// keys), so a run that follows another finds nothing left to do.

// Job names: the keys of the scheduler's locks.
const (
	JobExpire       = "expire"
	JobRemind       = "remind"
	JobDeliver      = "deliver"
	JobCancelUnpaid = "cancel_unpaid"
)

// errJobBusy says another replica holds the job's lock; the run is skipped.
var errJobBusy = errors.New("job is running in another replica")

// jobLockKey maps a job name to the second half of its advisory lock key.
// The first half is a hash of the schema (current_schema()): advisory
// locks are shared by a whole database, and two deployments in two
// schemas of one database (or tests running in parallel, each in a
// schema of its own) must not skip each other's runs.
func jobLockKey(job string) int32 {
	h := fnv.New32a()
	h.Write([]byte(job))
	return int32(h.Sum32())
}

// jobWrite runs fn in a write transaction that holds the job's lock. It
// returns errJobBusy, without running fn, when another replica holds it.
// It is the jobs' one lock: a job whose work takes several transactions
// takes it in each. Its audit entries are the job's (system:<job>) unless
// ctx says who acts. mode is writeSingle for a job's batch and
// writeUnbounded for a statement over every row due (see writeBulk);
// writeGrouped is taken as writeSingle.
func (db *DB) jobWrite(ctx context.Context, job string, mode writeMode, fn func(tx *Tx) error) error {
	if _, ok := billing.ActorFrom(ctx); !ok {
		ctx = billing.WithActor(ctx, billing.SystemActor(job))
	}
	locked := func(tx *Tx) error {
		if err := db.tryJobLock(tx, job); err != nil {
			return err
		}
		return fn(tx)
	}
	if mode == writeUnbounded {
		return db.writeBulk(ctx, locked)
	}
	return db.writeAlone(ctx, locked)
}

func (db *DB) tryJobLock(tx *Tx, job string) error {
	if db.dialect != Postgres {
		return nil // the IMMEDIATE transaction is the lock
	}
	var ok bool
	if _, err := tx.queryRow(jobLockStmt, []any{jobLockKey(job)}, &ok); err != nil {
		return fmt.Errorf("lock job %s: %w", job, err)
	}
	if !ok {
		return errJobBusy
	}
	return nil
}

var jobLockStmt = statement{"jobs/lock", func() string {
	return `SELECT pg_try_advisory_xact_lock(hashtext(current_schema()), ?)`
}}
