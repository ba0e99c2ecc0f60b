package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"entitlements/billing"

	"golang.org/x/sync/errgroup"
)

// SeedVIN returns the i-th synthetic VIN used by `seed` and the load
// harness: "LSEED" + 12 digits of i, with a valid check digit.
func SeedVIN(i int) billing.VIN {
	s := fmt.Sprintf("LSEED%012d", i)
	return billing.VIN(billing.FixCheckDigit(s))
}

// SeedOwner returns the owner of the i-th seeded vehicle.
func SeedOwner(i int) string { return fmt.Sprintf("seed-owner-%d", i) }

// SeedMix says what share of the seeded fleet is in which situation, in
// per mille; the rest is in its free year with nothing bought.
type SeedMix struct {
	LapsedPerMille  int // trial ended, nothing bought
	PaidPerMille    int // trial ended, then a package bought that runs now
	AheadPerMille   int // in the free year, a yearly package already bought (scheduled)
	MonthlyPerMille int // of the packages, how many are monthly rather than yearly
	// UsagePerMille of the vehicles have reported data usage: aggregates
	// for the previous and the current calendar month (those they were
	// active in), as ingestion would have left them. Raw records are not
	// seeded: reads and ingestion use the aggregates, and only pruning
	// reads raw records.
	UsagePerMille int
}

// DefaultSeedMix is the fleet of a maker a year and a half after launch.
var DefaultSeedMix = SeedMix{LapsedPerMille: 200, PaidPerMille: 150, AheadPerMille: 50, MonthlyPerMille: 600, UsagePerMille: 600}

// Seed bulk-loads n activated vehicles (indices 0..n-1) with their trial
// periods and, for the shares the mix says, a paid order and its period,
// and usage aggregates, in multi-row INSERTs, one transaction per chunk.
// Vehicles that exist are skipped, but get the usage aggregates of months
// they have none of (a run in a later month adds that month's usage).
// Everything is derived from the index, so runs are repeatable.
//
// On SQLite the load trades the durability of each commit for speed (a
// load can be redone): the writer runs with synchronous OFF and a 256 MiB
// page cache meanwhile, and gets back the settings it had (its
// synchronous=FULL, its page cache), so that nothing written through the
// store later commits with the seed's. Other writes committed through
// this store while Seed runs commit without a sync too: seed an idle
// database.
func (db *DB) Seed(ctx context.Context, n int, mix SeedMix, cat billing.Catalog, loc *time.Location, now time.Time) error {
	defer db.ForgetSnapshots()
	monthly, okm := cat.Product("monthly")
	yearly, oky := cat.Product("yearly")
	if !okm || !oky {
		return fmt.Errorf("seed needs the monthly and yearly products in the catalog")
	}
	f := seedFleet{mix: mix, monthly: monthly, yearly: yearly, trial: cat.Trial, loc: loc, now: now,
		cur: billing.CycleAt(now, loc), timeArg: db.timeArg}
	f.prev = billing.CycleAt(f.cur.Start.Add(-time.Hour), loc)
	bulk := []pragma{{"synchronous", 0}, {"cache_size", -256 << 10}}
	err := db.withWriterPragmas(ctx, bulk, func() error { return db.seedChunks(ctx, &f, n) })
	if err != nil || db.dialect != Postgres {
		return err
	}
	// PostgreSQL plans from statistics that autovacuum gathers only some
	// time after a bulk load; until then it takes the new tables for
	// small ones. SQLite plans without statistics (sqlite_stat1 is not
	// kept: TestJobQueryPlans pins the plans it makes without).
	if err := db.writeBulk(ctx, func(tx *Tx) error { return tx.raw(`ANALYZE`) }); err != nil {
		return fmt.Errorf("seed: analyze: %w", err)
	}
	return nil
}

// seedChunk is how many vehicles Seed writes a transaction.
const seedChunk = 20_000

// seedChunks writes vehicles 0..n-1, a transaction per seedChunk of them.
// One goroutine builds a chunk's statements (the rows, their history,
// their arguments) while the writer inserts the chunk before: the writer
// is the one thread a load cannot spread, so it only executes.
func (db *DB) seedChunks(ctx context.Context, f *seedFleet, n int) error {
	g, gctx := errgroup.WithContext(ctx)
	chunks := make(chan seedStatements, 1)
	g.Go(func() error {
		defer close(chunks)
		for lo := 0; lo < n; lo += seedChunk {
			select {
			case chunks <- f.statements(lo, min(n, lo+seedChunk)):
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	g.Go(func() error {
		for c := range chunks {
			if err := db.writeBulk(gctx, c.insert); err != nil {
				return fmt.Errorf("seed vehicles %d-%d: %w", c.lo, c.hi, err)
			}
		}
		return nil
	})
	return g.Wait()
}

// seedFleet derives the seeded vehicles from their index.
type seedFleet struct {
	mix             SeedMix
	monthly, yearly billing.Product
	trial           billing.TrialTerms
	loc             *time.Location
	now             time.Time
	cur, prev       billing.Cycle
	timeArg         func(time.Time) any // an instant as the store binds it (DB.timeArg)
}

// seedRows are the rows of a chunk of seeded vehicles.
type seedRows struct {
	vehicles, periods, orders, cycles [][]any
}

var (
	seedVehicleCols = []string{"vin", "owner_id", "model", "activated_at", "coverage_ends_at", "created_at", "updated_at", "covered_since"}
	seedPeriodCols  = []string{"id", "vin", "seq", "source", "order_id", "product", "days", "data_bytes_per_month", "paid_at", "starts_at", "ends_at", "created_at", "updated_at"}
	seedOrderCols   = []string{"id", "vin", "owner_id", "product", "amount_fen", "currency", "days", "data_bytes_per_month", "status", "created_at", "expires_at", "paid_at", "transaction_id", "updated_at"}
	seedCycleCols   = []string{"vin", "cycle", "entertainment_bytes", "basic_bytes", "records", "last_ended_at", "updated_at"}
)

// seedStatements are the INSERT statements of vehicles lo..hi-1, with
// their arguments.
type seedStatements struct {
	lo, hi int
	stmts  []seedStatement
}

// seedStatement is one multi-row INSERT of seeded rows: rows rows of cols
// into table, args their values row after row.
type seedStatement struct {
	table string
	cols  []string
	rows  int
	args  []any
}

// statements builds the rows of vehicles lo..hi-1 and their history, and
// splits them into multi-row INSERTs small enough for both databases'
// variable limits, instants already as timeArg writes them.
func (f *seedFleet) statements(lo, hi int) seedStatements {
	var r seedRows
	for i := lo; i < hi; i++ {
		f.add(&r, i)
	}
	versions, periodVersions := seedVersions(r.vehicles, r.periods)
	out := seedStatements{lo: lo, hi: hi}
	for _, t := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"vehicles", seedVehicleCols, r.vehicles},
		{"orders", seedOrderCols, r.orders},
		{"usage_cycles", seedCycleCols, r.cycles},
		{"periods", seedPeriodCols, r.periods},
		{"timeline_versions", seedVersionCols, versions},
		{"period_versions", seedPeriodVersionCols, periodVersions},
		{"usage_arrivals", seedArrivalCols, seedArrivals(r.cycles)},
	} {
		rows := t.rows
		for _, n := range chunkSizes(len(rows), rowsPerInsert(len(t.cols), 0)) {
			args := make([]any, 0, n*len(t.cols))
			for _, row := range rows[:n] {
				for _, v := range row {
					if at, ok := v.(time.Time); ok {
						v = f.timeArg(at)
					}
					args = append(args, v)
				}
			}
			rows = rows[n:]
			out.stmts = append(out.stmts, seedStatement{t.table, t.cols, n, args})
		}
	}
	return out
}

// insert runs the statements, skipping rows that exist.
func (s seedStatements) insert(tx *Tx) error {
	for _, st := range s.stmts {
		text := statement{"seed/" + st.table + "/" + strconv.Itoa(st.rows), func() string {
			return insertSQL(st.table, st.cols, nil, st.rows, "ON CONFLICT DO NOTHING")
		}}
		if _, err := tx.exec(text, st.args...); err != nil {
			return fmt.Errorf("insert into %s: %w", st.table, err)
		}
	}
	return nil
}

// add appends the rows of the i-th vehicle.
func (f *seedFleet) add(r *seedRows, i int) {
	now, loc := utc(f.now), f.loc
	vin := SeedVIN(i)
	owner := SeedOwner(i)
	bucket := (i * 37) % 1000 // a deterministic spread of situations
	back := time.Duration((i*7919)%(365*24*60)) * time.Minute
	if bucket < f.mix.LapsedPerMille+f.mix.PaidPerMille {
		back += 395 * 24 * time.Hour
	}
	at := utc(f.now.Add(-back))
	tp := f.trial.TrialPeriod(vin, at, loc)
	tl := billing.NewTimeline([]billing.Period{tp})
	r.periods = append(r.periods, []any{fmt.Sprintf("per_seed_%d", i), string(vin), 0, string(billing.SourceTrial), nil,
		string(billing.SourceTrial), 0, tp.DataBytesPerMonth, nil, utc(tp.StartsAt), utc(tp.EndsAt), now, now})
	if paidAt := f.paidAt(i, bucket, at); !paidAt.IsZero() {
		prod := f.yearly
		if (i*13)%1000 < f.mix.MonthlyPerMille {
			prod = f.monthly
		}
		start := billing.PaidStart(paidAt, tp.EndsAt)
		end := billing.PaidEnd(start, prod.Days, loc)
		oid := fmt.Sprintf("ord_seed_%d", i)
		r.orders = append(r.orders, []any{oid, string(vin), owner, prod.Code, prod.PriceFen, billing.Currency, prod.Days,
			prod.DataBytesPerMonth, "paid", paidAt, paidAt.Add(30 * time.Minute), paidAt, "tx_seed_" + oid, now})
		r.periods = append(r.periods, []any{fmt.Sprintf("per_seed_%d_1", i), string(vin), 1, string(billing.SourceOrder), oid,
			prod.Code, prod.Days, prod.DataBytesPerMonth, paidAt, utc(start), utc(end), now, now})
		tl.Periods = append(tl.Periods, billing.Period{StartsAt: start, EndsAt: end, Seq: 1})
	}
	var since any // NULL without coverage
	if s := tl.CoveredSince(); !s.IsZero() {
		since = utc(s)
	}
	r.vehicles = append(r.vehicles, []any{string(vin), owner, "seed", at, utc(tl.End()), now, now, since})
	if (i*53)%1000 < f.mix.UsagePerMille {
		r.cycles = append(r.cycles, f.usage(i, vin, at, tl.End())...)
	}
}

// paidAt is when the i-th vehicle bought its package (zero: none).
func (f *seedFleet) paidAt(i, bucket int, activated time.Time) time.Time {
	m := f.mix
	switch {
	case bucket >= m.LapsedPerMille && bucket < m.LapsedPerMille+m.PaidPerMille:
		return utc(f.now.Add(-time.Duration(i%(20*24*60)) * time.Minute)) // within the last 20 days
	case bucket >= m.LapsedPerMille+m.PaidPerMille && bucket < m.LapsedPerMille+m.PaidPerMille+m.AheadPerMille:
		return maxTime(utc(f.now.Add(-time.Duration(i%(24*60))*time.Minute)), activated)
	}
	return time.Time{}
}

// usage returns the usage aggregates of the i-th vehicle for the previous
// and the current cycle: from the later of the activation and the cycle's
// start until some time before now.
func (f *seedFleet) usage(i int, vin billing.VIN, activated, coverageEnd time.Time) [][]any {
	var out [][]any
	for k, c := range []billing.Cycle{f.prev, f.cur} {
		from, to := maxTime(activated, c.Start), minTime(c.End, f.now)
		if !from.Before(to) {
			continue
		}
		span := to.Sub(from)
		ended := utc(from.Add(span / 1000 * time.Duration(500+(i*7+k*11)%500)))
		ent := int64((i*97+k*31)%4000) << 20     // 0 to ~4 GB
		basic := int64(1+(i*89+k*17)%1000) << 20 // 1 MB to ~1 GB
		if !coverageEnd.After(from) {
			ent = 0 // not covered: premium features go over a hotspot, if at all
		}
		out = append(out, []any{string(vin), c.Key(), ent, basic, 1 + (i+k)%200, ended, utc(f.now)})
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
