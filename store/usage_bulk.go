package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"entitlements/billing"
)

// The bulk statements of usage ingestion. They go past gorm's SQL builder
// and row scanning (which cost more than the database on a 10 000-record
// batch, BenchmarkIngestUsage) to statements prepared once per connection
// (see stmtCache), in the dialect's own placeholder syntax.

// usageRowsPerStatement is the largest multi-row statement on SQLite: 7
// columns × 1024 rows = 7168 variables, under its limit of 32766.
const usageRowsPerStatement = 1024

// usageChunkSizes splits n rows of a usage statement into statements:
// by chunkSizes on SQLite; on PostgreSQL all in one, whose arrays bind
// them as a handful of variables (bulkInsertSQL, inList), in one round
// trip.
func (db *DB) usageChunkSizes(n int) []int {
	if db.dialect != Postgres {
		return chunkSizes(n, usageRowsPerStatement)
	}
	if n == 0 {
		return nil
	}
	return []int{n}
}

// usageChunkMax is the largest of usageChunkSizes(n) (the first), to
// size the variables of its statements once.
func (db *DB) usageChunkMax(n int) int {
	if sizes := db.usageChunkSizes(n); len(sizes) > 0 {
		return sizes[0]
	}
	return 0
}

// usageChunks splits args by usageChunkSizes.
func (db *DB) usageChunks(args []any) [][]any {
	var out [][]any
	for _, n := range db.usageChunkSizes(len(args)) {
		out = append(out, args[:n])
		args = args[n:]
	}
	return out
}

// The tables of the bulk statements: each row's own columns and the
// timestamp a batch's rows share.
var (
	recordsTable = bulkTable{"usage_records",
		[]bulkCol{{"id", "text"}, {"vin", "text"}, {"category", "text"}, {"bytes", "bigint"},
			{"started_at", "timestamptz"}, {"ended_at", "timestamptz"}, {"cycle", "text"}},
		[]bulkCol{{"received_at", "timestamptz"}}}
	cyclesTable = bulkTable{"usage_cycles",
		[]bulkCol{{"vin", "text"}, {"cycle", "text"}, {"entertainment_bytes", "bigint"}, {"basic_bytes", "bigint"},
			{"records", "bigint"}, {"last_ended_at", "timestamptz"}},
		[]bulkCol{{"updated_at", "timestamptz"}}}
	arrivalsTable = bulkTable{"usage_arrivals",
		[]bulkCol{{"cycle", "text"}, {"vin", "text"}, {"batch", "text"}, {"records", "text"}},
		[]bulkCol{{"received_at", "timestamptz"}}}
)

// knownVINs returns the records' VINs that an activated vehicle has, read
// on the reader pool from the VIN index alone (not the vehicle rows, which
// are six times larger and would each cost a random page read): one query
// per 1024 distinct VINs on SQLite, one on PostgreSQL.
func (db *DB) knownVINs(ctx context.Context, recs []billing.UsageRecord) (map[billing.VIN]struct{}, error) {
	set := make(map[billing.VIN]struct{})
	vins := make([]any, 0)
	for _, r := range recs {
		if _, ok := set[r.VIN]; !ok {
			set[r.VIN] = struct{}{}
			vins = append(vins, string(r.VIN))
		}
	}
	known := make(map[billing.VIN]struct{}, len(vins))
	err := db.queryChunks(db.onReader(ctx), db.knownSQL, nil, vins, func(rows *sql.Rows) error {
		var vin string
		if err := rows.Scan(&vin); err != nil {
			return err
		}
		known[billing.VIN(vin)] = struct{}{}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("look up vehicles: %w", err)
	}
	return known, nil
}

// queryChunks runs the statement st builds for a chunk's size over args,
// a chunk of usageChunks at a time, on q, with lead as the first
// parameters of each; row reads each result row.
func (db *DB) queryChunks(q querier, st func(n int) statement, lead, args []any, row func(rows *sql.Rows) error) error {
	for _, part := range db.usageChunks(args) {
		rows, err := q(st(len(part)), append(slices.Clone(lead), db.listArgs(part)...)...)
		if err != nil {
			return err
		}
		if err := eachRow(rows, func() error { return row(rows) }); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) knownSQL(n int) statement {
	return statement{db.bulkKey("usage/known", n), func() string {
		return `SELECT vin FROM vehicles WHERE ` + db.inList("vin", n)
	}}
}

// vehicleOwners returns the owner of each of vins (distinct) in tx: one
// query per 1024 on SQLite, one on PostgreSQL.
func (db *DB) vehicleOwners(tx *Tx, vins []any) (map[billing.VIN]string, error) {
	owners := make(map[billing.VIN]string, len(vins))
	err := db.queryChunks(tx.query, db.ownersSQL, nil, vins, func(rows *sql.Rows) error {
		var vin, owner string
		if err := rows.Scan(&vin, &owner); err != nil {
			return err
		}
		owners[billing.VIN(vin)] = owner
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("look up vehicles: %w", err)
	}
	return owners, nil
}

func (db *DB) ownersSQL(n int) statement {
	return statement{db.bulkKey("usage/owners", n), func() string {
		return `SELECT vin, owner_id FROM vehicles WHERE ` + db.inList("vin", n)
	}}
}

// insertUsageRecords inserts recs[keep...] in multi-row INSERTs and returns
// the indexes of the records it inserted (not those whose id existed).
//
// Each statement is INSERT ... ON CONFLICT (id) DO NOTHING inside a
// savepoint. When it inserts every row (the usual case) they are all new.
// When it inserts fewer, some ids were there already (or were committed by
// a concurrent batch it waited for): the statement is rolled back to the
// savepoint and run again with RETURNING id, which names the rows it
// inserts. RETURNING is not used always because reading 10 000 returned
// rows back costs more, on SQLite, than the insert itself.
func (db *DB) insertUsageRecords(tx *Tx, recs []billing.UsageRecord, keep []int, cycles []string, now time.Time) ([]int, error) {
	inserted := make([]int, 0, len(keep))
	args := make([]any, 0, 1+len(recordsTable.cols)*db.usageChunkMax(len(keep)))
	for _, n := range db.usageChunkSizes(len(keep)) {
		part := keep[:n]
		keep = keep[n:]
		args = append(args[:0], db.timeArg(now))
		for _, i := range part {
			r := recs[i]
			args = append(args, r.ID, string(r.VIN), string(r.Category), r.Bytes,
				db.timeArg(r.StartedAt), db.timeArg(r.EndedAt), cycles[i])
		}
		got, err := db.insertRecordChunk(tx, recs, part, db.bulkArgs(recordsTable, args))
		if err != nil {
			return nil, fmt.Errorf("insert usage records: %w", err)
		}
		inserted = append(inserted, got...)
	}
	return inserted, nil
}

// errSomeExisted rolls a chunk back to its savepoint when some of its ids
// were there already.
var errSomeExisted = errors.New("some usage records existed")

func (db *DB) insertRecordChunk(tx *Tx, recs []billing.UsageRecord, part []int, args []any) ([]int, error) {
	some, err := tx.savepoint("usage_chunk", func() error {
		res, err := tx.exec(db.insertRecordsSQL(len(part), false), args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if int(n) != len(part) {
			return errSomeExisted
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if some == nil {
		return part, nil
	}
	if !errors.Is(some, errSomeExisted) {
		return nil, some
	}
	rows, err := tx.query(db.insertRecordsSQL(len(part), true), args...)
	if err != nil {
		return nil, err
	}
	ids := make(map[string]struct{}, len(part))
	err = eachRow(rows, func() error {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		ids[id] = struct{}{}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var got []int
	for _, i := range part {
		if _, ok := ids[recs[i].ID]; ok {
			got = append(got, i)
		}
	}
	return got, nil
}

func (db *DB) insertRecordsSQL(rows int, returning bool) statement {
	return statement{db.bulkKey("usage/records/"+strconv.FormatBool(returning), rows), func() string {
		tail := `ON CONFLICT (id) DO NOTHING`
		if returning {
			tail += ` RETURNING id`
		}
		return db.bulkInsertSQL(recordsTable, rows, tail)
	}}
}

// addUsage adds the batch's aggregates to usage_cycles, learning each
// cycle's new entertainment total from RETURNING. The vehicle's as_of
// moves with its cycles' last_ended_at (see usageMigration).
func (db *DB) addUsage(tx *Tx, aggs []*usageAgg, now time.Time) error {
	ts := db.timeArg(now)
	args := make([]any, 0, 1+len(cyclesTable.cols)*db.usageChunkMax(len(aggs)))
	rest := aggs
	for _, n := range db.usageChunkSizes(len(aggs)) {
		part := rest[:n]
		rest = rest[n:]
		args = append(args[:0], ts)
		byKey := make(map[string]*usageAgg, n)
		for _, a := range part {
			args = append(args, string(a.vin), a.cycle, a.entertainment, a.basic, a.records, db.timeArg(a.lastEndedAt))
			byKey[string(a.vin)+"/"+a.cycle] = a
			tx.touch(a.vin)
		}
		rows, err := tx.query(db.upsertCyclesSQL(n), db.bulkArgs(cyclesTable, args)...)
		if err != nil {
			return fmt.Errorf("add usage to cycles: %w", err)
		}
		got := 0
		err = eachRow(rows, func() error {
			var vin, cycle string
			var total int64
			if err := rows.Scan(&vin, &cycle, &total); err != nil {
				return err
			}
			a, ok := byKey[vin+"/"+cycle]
			if !ok {
				return fmt.Errorf("upsert returned an unknown cycle %s/%s", vin, cycle)
			}
			a.total = total
			got++
			return nil
		})
		if err == nil && got != n {
			err = fmt.Errorf("upsert returned %d cycle totals, want %d", got, n)
		}
		if err != nil {
			return fmt.Errorf("add usage to cycles: %w", err)
		}
	}

	return nil
}

func (db *DB) upsertCyclesSQL(rows int) statement {
	return statement{db.bulkKey("usage/cycles", rows), func() string {
		return db.bulkInsertSQL(cyclesTable, rows, `ON CONFLICT (vin, cycle) DO UPDATE SET
		entertainment_bytes = usage_cycles.entertainment_bytes + excluded.entertainment_bytes,
		basic_bytes = usage_cycles.basic_bytes + excluded.basic_bytes,
		records = usage_cycles.records + excluded.records,
		last_ended_at = `+db.greatest()+`(usage_cycles.last_ended_at, excluded.last_ended_at),
		updated_at = excluded.updated_at
		RETURNING vin, cycle, entertainment_bytes`)
	}}
}

// greatest is the two-argument maximum: MAX on SQLite, GREATEST on PostgreSQL.
func (db *DB) greatest() string {
	if db.dialect == Postgres {
		return "GREATEST"
	}
	return "MAX"
}

// timelinesAround loads the timelines of vins with the periods that may
// contain an instant in [from, to] and whose monthly allowance is between
// 1 and maxAllowance bytes.
func (db *DB) timelinesAround(tx *Tx, vins []any, from, to time.Time, maxAllowance int64) (map[billing.VIN]billing.Timeline, error) {
	return db.timelines(tx, db.periodsSQL, []any{db.timeArg(from), db.timeArg(to), maxAllowance}, vins)
}

// periodColumns are the columns timelines scans, in its order.
func (db *DB) periodColumns() string {
	return `id, vin, seq, source, product, data_bytes_per_month, ` +
		db.timeCol("starts_at") + `, ` + db.timeCol("ends_at") + `, ` + db.timeCol("refunded_at")
}

// timelines runs st (sized for a chunk of vins, selecting periodColumns)
// with lead before each chunk's VINs, and returns the periods read as a
// timeline per vehicle. One query per 1024 VINs on SQLite, one on
// PostgreSQL.
func (db *DB) timelines(tx *Tx, st func(n int) statement, lead, vins []any) (map[billing.VIN]billing.Timeline, error) {
	byVIN := make(map[billing.VIN][]billing.Period, len(vins))
	err := db.queryChunks(tx.query, st, lead, vins, func(rows *sql.Rows) error {
		var p billing.Period
		var vin string
		var starts, ends, refunded dbTime
		if err := rows.Scan(&p.ID, &vin, &p.Seq, &p.Source, &p.Product, &p.DataBytesPerMonth, &starts, &ends, &refunded); err != nil {
			return err
		}
		p.VIN, p.StartsAt, p.EndsAt, p.RefundedAt = billing.VIN(vin), starts.T, ends.T, refunded.ptr()
		byVIN[p.VIN] = append(byVIN[p.VIN], p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load periods: %w", err)
	}
	out := make(map[billing.VIN]billing.Timeline, len(byVIN))
	for vin, ps := range byVIN {
		out[vin] = billing.NewTimeline(ps)
	}
	return out, nil
}

func (db *DB) periodsSQL(n int) statement {
	return statement{db.bulkKey("usage/periods", n), func() string {
		return `SELECT ` + db.periodColumns() + `
		FROM periods WHERE ends_at > ? AND starts_at <= ?
		AND data_bytes_per_month > 0 AND data_bytes_per_month <= ? AND ` + db.inList("vin", n)
	}}
}

// addArrivals records what the batch brought per cycle and vehicle
// (usageArrivalsMigration): one row per aggregate.
func (db *DB) addArrivals(tx *Tx, aggs []*usageAgg, batch string, now time.Time) error {
	args := make([]any, 0, 1+len(arrivalsTable.cols)*db.usageChunkMax(len(aggs)))
	rest := aggs
	for _, n := range db.usageChunkSizes(len(aggs)) {
		part := rest[:n]
		rest = rest[n:]
		args = append(args[:0], db.timeArg(now))
		for _, a := range part {
			args = append(args, a.cycle, string(a.vin), batch, string(a.arrived))
		}
		if _, err := tx.exec(db.insertArrivalsSQL(n), db.bulkArgs(arrivalsTable, args)...); err != nil {
			return fmt.Errorf("record usage arrivals: %w", err)
		}
	}
	return nil
}

func (db *DB) insertArrivalsSQL(rows int) statement {
	return statement{db.bulkKey("usage/arrivals", rows), func() string {
		return db.bulkInsertSQL(arrivalsTable, rows, "")
	}}
}

// appendArrival appends r to a usage_arrivals.records value: records
// separated by ';', each "<e|b>,<bytes>,<ended_at>", ended_at in Unix
// microseconds (the migration wrote SQLite's own text for the records it
// found; decodeArrivals reads both).
func appendArrival(b []byte, r billing.UsageRecord) []byte {
	if len(b) > 0 {
		b = append(b, ';')
	}
	if r.Category == billing.CategoryBasic {
		b = append(b, 'b', ',')
	} else {
		b = append(b, 'e', ',')
	}
	b = strconv.AppendInt(b, r.Bytes, 10)
	b = append(b, ',')
	return strconv.AppendInt(b, utc(r.EndedAt).UnixMicro(), 10)
}

// decodeArrivals appends the records of a usage_arrivals row to out.
func decodeArrivals(out []billing.ReceivedRecord, cycle string, received time.Time, v string) ([]billing.ReceivedRecord, error) {
	for rec := range strings.SplitSeq(v, ";") {
		cat, rest, ok1 := strings.Cut(rec, ",")
		bytes, ended, ok2 := strings.Cut(rest, ",")
		if !ok1 || !ok2 || (cat != "e" && cat != "b") {
			return out, fmt.Errorf("usage arrival %q is not <e|b>,<bytes>,<ended_at>", rec)
		}
		r := billing.ReceivedRecord{Cycle: cycle, Category: billing.CategoryEntertainment, ReceivedAt: received}
		if cat == "b" {
			r.Category = billing.CategoryBasic
		}
		var err error
		if r.Bytes, err = strconv.ParseInt(bytes, 10, 64); err != nil {
			return out, fmt.Errorf("usage arrival %q: %w", rec, err)
		}
		if us, err := strconv.ParseInt(ended, 10, 64); err == nil {
			r.EndedAt = time.UnixMicro(us).UTC()
		} else if r.EndedAt, err = parseSQLiteTime(ended); err != nil {
			return out, fmt.Errorf("usage arrival %q: %w", rec, err)
		}
		out = append(out, r)
	}
	return out, nil
}
