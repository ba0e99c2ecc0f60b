package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"entitlements/bench/proc"
	"entitlements/billing"
	"entitlements/scheduler"
	"entitlements/store"
)

// runJobs measures the scheduler's set-based jobs over a seeded fleet, on
// a copy of the seeded SQLite database:
//   - remind over the whole fleet, first run (creates the due reminders)
//     and a second run (finds nothing new);
//   - expire of expireAtOnce periods that all end at the same instant.
func runJobs(o options, seededDB string, expireAtOnce int) error {
	dbPath := filepath.Join(o.dir, "jobs.db")
	if err := copyFile(seededDB, dbPath); err != nil {
		return err
	}
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: dbPath + os.Getenv("BENCH_JOBS_DSN_QUERY")})
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	// Each timing starts from a checkpointed file, so that it does not
	// include the background copy of what a migration or the setup wrote.
	checkpoint := func() error { return db.Checkpoint(ctx) }
	if err := checkpoint(); err != nil {
		return err
	}
	// The CPU time of this process: the job and the background checkpointer.
	cpuTime := func() time.Duration { return proc.CPU(os.Getpid()) }
	ioCalls := func() int64 { return proc.IOCalls(os.Getpid()) }
	loc, _ := time.LoadLocation("Asia/Shanghai")
	now := time.Now()
	var vehicles int64
	db.ToolQuery(ctx, &vehicles, `SELECT COUNT(*) FROM vehicles`)
	fmt.Printf("\njobs over %d vehicles (a copy of the seeded database)\n", vehicles)

	remind := scheduler.Remind{Store: db, Stages: []int{30, 7, 1}, Location: loc}
	for run := 1; run <= 2; run++ {
		stop, err := profile(fmt.Sprintf("remind%d", run))
		if err != nil {
			return err
		}
		start, cpu, calls := time.Now(), cpuTime(), ioCalls()
		err = remind.Run(ctx, now)
		took, cpu, calls := time.Since(start), cpuTime()-cpu, ioCalls()-calls
		stop()
		if err != nil {
			return err
		}
		var n int64
		db.ToolQuery(ctx, &n, `SELECT COUNT(*) FROM notices WHERE kind = ?`, string(billing.NoticeExpiring))
		fmt.Printf("remind run %d: %.2fs, %.2fs of CPU, %d I/O system calls (%d coverage.expiring notices in all)\n", run, took.Seconds(), cpu.Seconds(), calls, n)
	}

	// expireAtOnce vehicles whose only coverage ends one minute ago, spread
	// over the fleet (about one eligible trial period in five: those whose
	// rowid is a multiple of 5): a cohort ending together is not a run of
	// consecutive VINs, and consecutive VINs would make every VIN-keyed
	// write look sequential.
	end := now.Add(-time.Minute).UTC().Truncate(time.Microsecond) // as the store writes instants
	_, err = db.ToolExec(ctx, `UPDATE periods SET ends_at = ? WHERE id IN (
		SELECT p.id FROM periods p JOIN vehicles v ON v.vin = p.vin
		WHERE p.seq = 0 AND v.coverage_ends_at = p.ends_at AND p.ends_at > ? AND p.rowid % 5 = 0 LIMIT ?)`, end, now.UTC(), expireAtOnce)
	if err != nil {
		return err
	}
	_, err = db.ToolExec(ctx, `UPDATE vehicles SET coverage_ends_at = ? WHERE vin IN (
		SELECT vin FROM periods WHERE seq = 0 AND ends_at = ?)`, end, end)
	if err != nil {
		return err
	}
	var ending int64
	db.ToolQuery(ctx, &ending, `SELECT COUNT(*) FROM periods WHERE ends_at = ?`, end)
	if ending < int64(expireAtOnce) {
		fmt.Fprintf(os.Stderr, "expire: only %d trial periods could be made to end at once, not %d (a larger --vehicles gives more)\n", ending, expireAtOnce)
	}
	if err := checkpoint(); err != nil {
		return err
	}
	expire := scheduler.Expire{Store: db, MaxAge: 7 * 24 * time.Hour, Location: loc}
	stop, err := profile("expire")
	if err != nil {
		return err
	}
	defer stop()
	start, cpu, calls := time.Now(), cpuTime(), ioCalls()
	if err := expire.Run(ctx, now); err != nil {
		return err
	}
	took, cpu, calls := time.Since(start), cpuTime()-cpu, ioCalls()-calls
	var expired int64
	db.ToolQuery(ctx, &expired, `SELECT COUNT(*) FROM notices WHERE kind = ?`, string(billing.NoticeExpired))
	fmt.Printf("expire: %d periods ending at once: %.2fs, %.2fs of CPU, %d I/O system calls (%d coverage.expired notices in all)\n",
		ending, took.Seconds(), cpu.Seconds(), calls, expired)
	return nil
}

// profile starts a CPU profile of one job into $BENCH_CPUPROFILE.<job>
// when that variable is set, and returns the function that stops it.
func profile(job string) (stop func(), err error) {
	path := os.Getenv("BENCH_CPUPROFILE")
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path + "." + job)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(to + suffix)
	}
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	// Written back now, not by the kernel in the middle of a timed job.
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
