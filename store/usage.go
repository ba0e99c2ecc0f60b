package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"entitlements/billing"

	"gorm.io/gorm"
)

// usageMigration stores the carrier's usage feed and its aggregates.
//
// usage_records is append-only and idempotent by the carrier's record id;
// it has no foreign key to vehicles (the VINs of a batch are checked in one
// query in the ingest transaction, and a per-row key check would slow the
// bulk insert). usage_cycles holds per vehicle and local calendar month the
// bytes by category, updated in the transaction that inserts the records,
// so reads never scan raw records; it outlives the raw records, which are
// pruned after usage.retention. usage_vehicles holds as_of, the latest
// ended_at seen for the vehicle.
var usageMigration = migration{Version: 40, Name: "usage records and aggregates",
	Up: usageSchema(""),
	// WITHOUT ROWID keeps the records in their primary key b-tree, one
	// b-tree insert fewer per record than a rowid table plus its key index.
	SQLite: usageSchema(" WITHOUT ROWID"),
}

func usageSchema(recordsOpts string) []string {
	return []string{
		`CREATE TABLE usage_records (
			id          TEXT PRIMARY KEY,
			vin         TEXT NOT NULL,
			category    TEXT NOT NULL,
			bytes       BIGINT NOT NULL,
			started_at  {{TS}} NOT NULL,
			ended_at    {{TS}} NOT NULL,
			cycle       TEXT NOT NULL,
			received_at {{TS}} NOT NULL
		)` + recordsOpts,
		`CREATE INDEX usage_records_started_idx ON usage_records (started_at)`,
		`CREATE TABLE usage_cycles (
			vin                 TEXT NOT NULL,
			cycle               TEXT NOT NULL,
			entertainment_bytes BIGINT NOT NULL DEFAULT 0,
			basic_bytes         BIGINT NOT NULL DEFAULT 0,
			records             BIGINT NOT NULL DEFAULT 0,
			last_ended_at       {{TS}} NOT NULL,
			updated_at          {{TS}} NOT NULL,
			PRIMARY KEY (vin, cycle)
		)`,
		`CREATE TABLE usage_vehicles (
			vin        TEXT PRIMARY KEY,
			as_of      {{TS}} NOT NULL,
			updated_at {{TS}} NOT NULL
		)`,
	}
}

// Usage returns vin's usage in cycle and the latest usage time seen for
// the vehicle, in one indexed query on the aggregates. A vehicle without
// usage has a zero Usage.
func (db *DB) Usage(ctx context.Context, vin billing.VIN, cycle billing.Cycle) (billing.Usage, error) {
	var row struct {
		AsOf               time.Time
		EntertainmentBytes *int64
		BasicBytes         *int64
	}
	res := db.read.WithContext(ctx).Raw(`SELECT uv.as_of, uc.entertainment_bytes, uc.basic_bytes
		FROM usage_vehicles uv
		LEFT JOIN usage_cycles uc ON uc.vin = uv.vin AND uc.cycle = ?
		WHERE uv.vin = ?`, cycle.Key(), string(vin)).Scan(&row)
	if res.Error != nil {
		return billing.Usage{}, fmt.Errorf("usage of %s in %s: %w", vin, cycle.Key(), res.Error)
	}
	if res.RowsAffected == 0 {
		return billing.Usage{}, nil
	}
	u := billing.Usage{AsOf: row.AsOf.UTC()}
	if row.EntertainmentBytes != nil {
		u.EntertainmentBytes = *row.EntertainmentBytes
	}
	if row.BasicBytes != nil {
		u.BasicBytes = *row.BasicBytes
	}
	return u, nil
}

// usageRecordsPerInsert is the largest multi-row INSERT of records: 8
// columns × 1024 rows = 8192 variables, under SQLite's 32766 and
// PostgreSQL's 65535.
const usageRecordsPerInsert = 1024

// IngestUsage stores a batch of records that passed Validate, in one write
// transaction. Records count in the calendar month of loc in which they
// started; thresholds are the quota.threshold percentages (none: no
// notices). The index of a Rejection is the record's position in recs.
//
// Each record is idempotent by its id: the id is claimed by the insert
// itself (INSERT ... ON CONFLICT DO NOTHING ... RETURNING id), so only the
// rows this transaction inserted are counted, however many requests carry
// the same record at once; a record whose id was seen before is a
// duplicate even if its content differs (the first write wins). A record
// whose VIN no vehicle has is rejected with RejectUnknownVIN. The usage of
// each (vehicle, cycle) is added to its aggregate, and a quota.threshold
// notice is created for each threshold the cycle's entertainment usage
// crosses, in the same transaction.
func (db *DB) IngestUsage(ctx context.Context, recs []billing.UsageRecord, thresholds []int, loc *time.Location, now time.Time) (billing.IngestResult, error) {
	var res billing.IngestResult
	err := db.tx(ctx, func(tx *gorm.DB) error {
		res = billing.IngestResult{}
		owners, err := vehicleOwners(tx, recs)
		if err != nil {
			return err
		}
		keep := make([]int, 0, len(recs)) // indexes into recs, one per distinct id
		seen := make(map[string]struct{}, len(recs))
		for i, r := range recs {
			if _, ok := owners[r.VIN]; !ok {
				res.Rejected = append(res.Rejected, billing.Reject(i, billing.RejectUnknownVIN, "no activated vehicle has VIN %s", r.VIN))
				continue
			}
			if _, dup := seen[r.ID]; dup {
				res.Duplicates++
				continue
			}
			seen[r.ID] = struct{}{}
			keep = append(keep, i)
		}
		// A fixed lock order (ids, then aggregates by vin and cycle) keeps
		// concurrent batches on PostgreSQL from deadlocking.
		sort.Slice(keep, func(a, b int) bool { return recs[keep[a]].ID < recs[keep[b]].ID })
		cycles := make([]string, len(recs))
		for _, i := range keep {
			cycles[i] = cycleKey(recs[i].StartedAt, loc)
		}
		inserted, err := db.insertUsageRecords(tx, recs, keep, cycles, now)
		if err != nil {
			return err
		}
		res.Accepted = len(inserted)
		res.Duplicates += len(keep) - len(inserted)
		if len(inserted) == 0 {
			return nil
		}
		aggs := aggregateUsage(recs, inserted, cycles)
		if err := db.addUsage(tx, aggs, now); err != nil {
			return err
		}
		return db.quotaNotices(tx, aggs, owners, thresholds, loc, now)
	})
	if err != nil {
		return billing.IngestResult{}, fmt.Errorf("ingest usage: %w", err)
	}
	return res, nil
}

// cycleKey is billing.CycleAt(t, loc).Key() without building the cycle.
func cycleKey(t time.Time, loc *time.Location) string {
	y, m, _ := t.In(loc).Date()
	b := make([]byte, 0, 7)
	b = strconv.AppendInt(b, int64(y), 10)
	b = append(b, '-', byte('0'+m/10), byte('0'+m%10))
	return string(b)
}

// vehicleOwners returns the owner of every activated vehicle among the
// records' VINs, in one query per 1024 distinct VINs.
func vehicleOwners(tx *gorm.DB, recs []billing.UsageRecord) (map[billing.VIN]string, error) {
	set := make(map[billing.VIN]struct{})
	vins := make([]any, 0)
	for _, r := range recs {
		if _, ok := set[r.VIN]; !ok {
			set[r.VIN] = struct{}{}
			vins = append(vins, string(r.VIN))
		}
	}
	owners := make(map[billing.VIN]string, len(vins))
	for _, part := range chunks(vins, 1, usageRecordsPerInsert) {
		var rows []struct {
			VIN     string `gorm:"column:vin"`
			OwnerID string
		}
		q := `SELECT vin, owner_id FROM vehicles WHERE vin IN (` + placeholders("?", len(part)) + `)`
		if err := tx.Raw(q, part...).Scan(&rows).Error; err != nil {
			return nil, fmt.Errorf("look up vehicles: %w", err)
		}
		for _, r := range rows {
			owners[billing.VIN(r.VIN)] = r.OwnerID
		}
	}
	return owners, nil
}

// insertUsageRecords inserts recs[keep...] in multi-row INSERTs and returns
// the ids it inserted (not those that existed already).
func (db *DB) insertUsageRecords(tx *gorm.DB, recs []billing.UsageRecord, keep []int, cycles []string, now time.Time) (map[string]struct{}, error) {
	const cols = 8
	conn := tx.Statement.ConnPool
	ctx := tx.Statement.Context
	received := utc(now)
	inserted := make(map[string]struct{}, len(keep))
	args := make([]any, 0, cols*usageRecordsPerInsert)
	for _, n := range chunkSizes(len(keep), usageRecordsPerInsert) {
		part := keep[:n]
		keep = keep[n:]
		args = args[:0]
		for _, i := range part {
			r := recs[i]
			args = append(args, r.ID, string(r.VIN), string(r.Category), r.Bytes,
				utc(r.StartedAt), utc(r.EndedAt), cycles[i], received)
		}
		q := `INSERT INTO usage_records (id, vin, category, bytes, started_at, ended_at, cycle, received_at) VALUES ` +
			db.valuesList(n, cols) + ` ON CONFLICT (id) DO NOTHING RETURNING id`
		rows, err := conn.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("insert usage records: %w", err)
		}
		if err := scanIDs(rows, inserted); err != nil {
			return nil, fmt.Errorf("insert usage records: %w", err)
		}
	}
	return inserted, nil
}

func scanIDs(rows *sql.Rows, into map[string]struct{}) error {
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		into[id] = struct{}{}
	}
	return rows.Err()
}

// usageAgg is what one batch adds to one vehicle's cycle.
type usageAgg struct {
	vin           billing.VIN
	cycle         string
	entertainment int64
	basic         int64
	records       int64
	lastEndedAt   time.Time
	total         int64 // entertainment bytes of the cycle after the addition
}

// aggregateUsage groups the inserted records per (vin, cycle), ordered by
// vin then cycle.
func aggregateUsage(recs []billing.UsageRecord, inserted map[string]struct{}, cycles []string) []*usageAgg {
	type key struct {
		vin   billing.VIN
		cycle string
	}
	byKey := make(map[key]*usageAgg)
	var out []*usageAgg
	for i, r := range recs {
		if cycles[i] == "" {
			continue
		}
		if _, ok := inserted[r.ID]; !ok {
			continue
		}
		delete(inserted, r.ID) // an id counts once even if it appears twice in recs
		k := key{r.VIN, cycles[i]}
		a := byKey[k]
		if a == nil {
			a = &usageAgg{vin: r.VIN, cycle: cycles[i]}
			byKey[k] = a
			out = append(out, a)
		}
		if r.Category == billing.CategoryEntertainment {
			a.entertainment += r.Bytes
		} else {
			a.basic += r.Bytes
		}
		a.records++
		if r.EndedAt.After(a.lastEndedAt) {
			a.lastEndedAt = r.EndedAt
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].vin != out[j].vin {
			return out[i].vin < out[j].vin
		}
		return out[i].cycle < out[j].cycle
	})
	return out
}

// addUsage adds the batch's aggregates to usage_cycles (learning each
// cycle's new entertainment total) and moves usage_vehicles.as_of forward.
func (db *DB) addUsage(tx *gorm.DB, aggs []*usageAgg, now time.Time) error {
	conn := tx.Statement.ConnPool
	ctx := tx.Statement.Context
	greatest := "MAX"
	if db.dialect == Postgres {
		greatest = "GREATEST"
	}
	ts := utc(now)
	const cycleCols = 7
	args := make([]any, 0, cycleCols*usageRecordsPerInsert)
	rest := aggs
	for _, n := range chunkSizes(len(aggs), usageRecordsPerInsert) {
		part := rest[:n]
		rest = rest[n:]
		args = args[:0]
		byKey := make(map[string]*usageAgg, n)
		for _, a := range part {
			args = append(args, string(a.vin), a.cycle, a.entertainment, a.basic, a.records, utc(a.lastEndedAt), ts)
			byKey[string(a.vin)+"/"+a.cycle] = a
		}
		q := `INSERT INTO usage_cycles (vin, cycle, entertainment_bytes, basic_bytes, records, last_ended_at, updated_at) VALUES ` +
			db.valuesList(n, cycleCols) + ` ON CONFLICT (vin, cycle) DO UPDATE SET
			entertainment_bytes = usage_cycles.entertainment_bytes + excluded.entertainment_bytes,
			basic_bytes = usage_cycles.basic_bytes + excluded.basic_bytes,
			records = usage_cycles.records + excluded.records,
			last_ended_at = ` + greatest + `(usage_cycles.last_ended_at, excluded.last_ended_at),
			updated_at = excluded.updated_at
			RETURNING vin, cycle, entertainment_bytes`
		rows, err := conn.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("add usage to cycles: %w", err)
		}
		if err := scanTotals(rows, byKey, n); err != nil {
			return fmt.Errorf("add usage to cycles: %w", err)
		}
	}

	// One as_of per vehicle: aggs are sorted by vin.
	type asOf struct {
		vin billing.VIN
		at  time.Time
	}
	var vs []asOf
	for _, a := range aggs {
		if len(vs) > 0 && vs[len(vs)-1].vin == a.vin {
			if a.lastEndedAt.After(vs[len(vs)-1].at) {
				vs[len(vs)-1].at = a.lastEndedAt
			}
			continue
		}
		vs = append(vs, asOf{a.vin, a.lastEndedAt})
	}
	restV := vs
	for _, n := range chunkSizes(len(vs), usageRecordsPerInsert) {
		part := restV[:n]
		restV = restV[n:]
		args = args[:0]
		for _, v := range part {
			args = append(args, string(v.vin), utc(v.at), ts)
		}
		q := `INSERT INTO usage_vehicles (vin, as_of, updated_at) VALUES ` + db.valuesList(n, 3) +
			` ON CONFLICT (vin) DO UPDATE SET as_of = ` + greatest + `(usage_vehicles.as_of, excluded.as_of), updated_at = excluded.updated_at`
		if _, err := conn.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("move usage as_of: %w", err)
		}
	}
	return nil
}

func scanTotals(rows *sql.Rows, byKey map[string]*usageAgg, want int) error {
	defer rows.Close()
	got := 0
	for rows.Next() {
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
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("upsert returned %d cycle totals, want %d", got, want)
	}
	return nil
}

// quotaNotices creates a quota.threshold notice for every threshold that a
// cycle's entertainment usage crossed in this batch. The allowance is the
// one of the period covering the cycle's AllowanceInstant.
func (db *DB) quotaNotices(tx *gorm.DB, aggs []*usageAgg, owners map[billing.VIN]string, thresholds []int, loc *time.Location, now time.Time) error {
	if len(thresholds) == 0 {
		return nil
	}
	type grew struct {
		a     *usageAgg
		cycle billing.Cycle
	}
	var gs []grew
	var vins []any
	var earliest time.Time
	for _, a := range aggs {
		if a.entertainment == 0 {
			continue
		}
		c, err := billing.ParseCycleKey(a.cycle, loc)
		if err != nil {
			return err
		}
		gs = append(gs, grew{a, c})
		if len(vins) == 0 || string(a.vin) != vins[len(vins)-1] {
			vins = append(vins, string(a.vin))
		}
		if at := c.AllowanceInstant(now); earliest.IsZero() || at.Before(earliest) {
			earliest = at
		}
	}
	if len(gs) == 0 {
		return nil
	}
	timelines, err := timelinesOf(tx, vins, earliest)
	if err != nil {
		return err
	}
	for _, g := range gs {
		tl := timelines[g.a.vin]
		ds := billing.Quota(tl.At(g.cycle.AllowanceInstant(now)), g.cycle, billing.Usage{EntertainmentBytes: g.a.total})
		for _, pct := range ds.Crossed(g.a.total-g.a.entertainment, thresholds) {
			n := billing.QuotaNotice(g.a.vin, owners[g.a.vin], g.cycle, pct, ds)
			if _, err := insertNotice(tx, n, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// timelinesOf loads the timelines of vins, leaving out periods that ended
// before from (they cannot cover an instant at or after it).
func timelinesOf(tx *gorm.DB, vins []any, from time.Time) (map[billing.VIN]billing.Timeline, error) {
	byVIN := make(map[billing.VIN][]billing.Period, len(vins))
	for _, part := range chunks(vins, 1, usageRecordsPerInsert) {
		var rows []periodRow
		q := `SELECT * FROM periods WHERE ends_at > ? AND vin IN (` + placeholders("?", len(part)) + `)`
		if err := tx.Raw(q, append([]any{utc(from)}, part...)...).Scan(&rows).Error; err != nil {
			return nil, fmt.Errorf("load periods: %w", err)
		}
		for _, r := range rows {
			byVIN[billing.VIN(r.VIN)] = append(byVIN[billing.VIN(r.VIN)], r.period())
		}
	}
	out := make(map[billing.VIN]billing.Timeline, len(byVIN))
	for vin, ps := range byVIN {
		out[vin] = billing.NewTimeline(ps)
	}
	return out, nil
}

// DeleteUsageBefore deletes at most limit raw usage records that started
// before cutoff, oldest first, in one short write transaction, and returns
// how many it deleted. Aggregates are kept.
func (db *DB) DeleteUsageBefore(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	var n int64
	err := db.tx(ctx, func(tx *gorm.DB) error {
		res := tx.Exec(`DELETE FROM usage_records WHERE id IN (
			SELECT id FROM usage_records WHERE started_at < ? ORDER BY started_at LIMIT ?)`, utc(cutoff), limit)
		n = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return 0, fmt.Errorf("prune usage records: %w", err)
	}
	return n, nil
}

// chunkSizes splits n rows into statement sizes: as many of max as fit,
// then the rest by powers of two. The sizes come from a fixed set of
// log2(max)+1 values, so that the prepared-statement cache holds a bounded
// number of statement shapes however batch sizes vary.
func chunkSizes(n, max int) []int {
	var out []int
	for ; n >= max; n -= max {
		out = append(out, max)
	}
	for p := max / 2; p > 0; p /= 2 {
		if n >= p {
			out = append(out, p)
			n -= p
		}
	}
	return out
}

// chunks splits args of width values per row by chunkSizes.
func chunks(args []any, width, max int) [][]any {
	var out [][]any
	for _, n := range chunkSizes(len(args)/width, max) {
		out = append(out, args[:n*width])
		args = args[n*width:]
	}
	return out
}

// placeholders returns n copies of ph separated by commas.
func placeholders(ph string, n int) string {
	return strings.TrimSuffix(strings.Repeat(ph+",", n), ",")
}

// valuesList returns "(?,?),(?,?)..." for rows × cols in the driver's own
// placeholder syntax, for statements sent past gorm's SQL builder.
func (db *DB) valuesList(rows, cols int) string {
	var b strings.Builder
	b.Grow(rows * cols * 6)
	n := 0
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := 0; c < cols; c++ {
			if c > 0 {
				b.WriteByte(',')
			}
			n++
			if db.dialect == Postgres {
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(n))
			} else {
				b.WriteByte('?')
			}
		}
		b.WriteByte(')')
	}
	return b.String()
}
