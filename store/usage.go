package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"entitlements/billing"
)

// usageMigration stores the carrier's usage feed and its aggregates.
//
// usage_records is append-only and idempotent by the carrier's record id;
// it has no foreign key to vehicles (the VINs of a batch are checked in one
// query in the ingest transaction, and a per-row key check would slow the
// bulk insert). usage_cycles holds per vehicle and local calendar month the
// bytes by category, updated in the transaction that inserts the records,
// so reads never scan raw records; it outlives the raw records, which are
// pruned after usage.retention.
//
// usage_vehicles held as_of, the latest ended_at seen for the vehicle.
// Nothing reads or writes it: as_of is the largest last_ended_at of the
// vehicle's cycles (every accepted record moves its cycle's value, and
// cycles are never deleted), which the snapshot read takes, and a second
// upsert per vehicle would cost a batch spread over the fleet one more
// random page read and write per vehicle (the usage phase of the bench
// harness, docs/performance.md). The table stays for now so that
// replicas of the previous release, which
// still read and write it, keep working through a rolling upgrade or a
// rollback on a shared PostgreSQL; a later release drops it.
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

// IngestUsage stores a batch of records that passed Validate, in one write
// transaction. Records count in the calendar month of loc in which they
// started; thresholds are the quota.threshold percentages (none: no
// notices). The index of a Rejection is the record's position in recs.
//
// Each record is idempotent by its id, claimed by the insert itself in the
// same transaction (INSERT ... ON CONFLICT (id) DO NOTHING; only the rows
// it inserted are counted), so a batch posted many times at once counts
// once. A record whose id was seen before is a duplicate even if its
// content differs: the first write wins. A record whose VIN no activated
// vehicle has is rejected with RejectUnknownVIN. The usage of each
// (vehicle, cycle) is added to its aggregate, and a quota.threshold notice
// is created for each threshold the cycle's entertainment usage crosses,
// in the same transaction.
func (db *DB) IngestUsage(ctx context.Context, recs []billing.UsageRecord, thresholds []int, loc *time.Location, now time.Time) (billing.IngestResult, error) {
	var res billing.IngestResult
	// Vehicles are never deleted, so a VIN found here is still there when
	// the transaction runs; a vehicle activated in between is rejected as
	// it would have been a moment earlier. The lookup reads only the VIN
	// index, on a reader, so the writer does not wait for it.
	known, err := db.knownVINs(ctx, recs)
	if err != nil {
		return billing.IngestResult{}, fmt.Errorf("ingest usage: %w", err)
	}
	err = db.writeBulk(ctx, func(tx *Tx) error {
		res = billing.IngestResult{}
		keep := make([]int, 0, len(recs)) // indexes into recs, one per distinct id
		seen := make(map[string]struct{}, len(recs))
		for i, r := range recs {
			if _, ok := known[r.VIN]; !ok {
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
		// A fixed lock order (ids, then aggregates by vin and cycle, then
		// notices) keeps concurrent batches on PostgreSQL from deadlocking.
		sort.Slice(keep, func(a, b int) bool { return recs[keep[a]].ID < recs[keep[b]].ID })
		cycles := make([]string, len(recs))
		for _, i := range keep {
			cycles[i] = recs[i].CycleKey(loc)
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
		// The batch's counts, not its records (usage_records holds them).
		tx.audit(billing.AuditEntry{At: now, Action: billing.AuditUsageAccepted, After: billing.Fields{
			"records": len(recs), "accepted": res.Accepted, "duplicates": res.Duplicates, "rejected": len(res.Rejected)}})
		aggs := aggregateUsage(recs, inserted, cycles)
		if err := db.addUsage(tx, aggs, now); err != nil {
			return err
		}
		if err := db.addArrivals(tx, aggs, newID("bat", now), now); err != nil {
			return err
		}
		return db.quotaNotices(tx, aggs, thresholds, loc, now)
	})
	if err != nil {
		return billing.IngestResult{}, fmt.Errorf("ingest usage: %w", err)
	}
	return res, nil
}

// usageAgg is what one batch adds to one vehicle's cycle.
type usageAgg struct {
	vin           billing.VIN
	cycle         string
	entertainment int64
	basic         int64
	records       int64
	lastEndedAt   time.Time
	total         int64  // entertainment bytes of the cycle after the addition
	arrived       []byte // the records, encoded for usage_arrivals (appendArrival)
}

// aggregateUsage groups the inserted records (indexes into recs) per
// (vin, cycle), ordered by vin then cycle.
func aggregateUsage(recs []billing.UsageRecord, inserted []int, cycles []string) []*usageAgg {
	type key struct {
		vin   billing.VIN
		cycle string
	}
	byKey := make(map[key]*usageAgg)
	var out []*usageAgg
	for _, i := range inserted {
		r := recs[i]
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
		a.arrived = appendArrival(a.arrived, r)
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

// quotaNotices creates a quota.threshold notice for every threshold that a
// cycle's entertainment usage crossed in this batch. The allowance is the
// one of the period covering the cycle's AllowanceInstant.
func (db *DB) quotaNotices(tx *Tx, aggs []*usageAgg, thresholds []int, loc *time.Location, now time.Time) error {
	if len(thresholds) == 0 {
		return nil
	}
	// No period has an allowance below the smallest one stored, so a
	// cycle whose total is under the lowest threshold of that allowance
	// crosses nothing, whatever period covers it, and needs no periods
	// loaded. Most cycles are far below their thresholds, so most batches
	// load the periods of a few vehicles, or none.
	floor, err := db.allowanceFloor(tx)
	if err != nil {
		return err
	}
	g, err := grownCycles(aggs, floor, thresholds, loc, now)
	if err != nil || len(g.cycles) == 0 {
		return err
	}
	// Of the periods above the floor, only one whose allowance the largest
	// total can reach matters: reaching pct percent of allowance A takes
	// A × pct ≤ total × 100. The other periods are left out; Timeline.At
	// then finds no period (or a refunded one, which it skips) and Quota
	// crosses nothing, which is what those periods would give too.
	bound := int64(math.MaxInt64)
	if g.maxTotal < math.MaxInt64/100 {
		bound = g.maxTotal * 100 / int64(slices.Min(thresholds))
	}
	timelines, err := db.timelinesAround(tx, g.vins, g.from, g.to, bound)
	if err != nil {
		return err
	}
	cs, noticed := crossings(g.cycles, timelines, thresholds)
	if len(cs) == 0 {
		return nil
	}
	// A notice goes to the owner at the time it is created: read in this
	// transaction, and only for the few vehicles that get one.
	owners, err := db.vehicleOwners(tx, noticed)
	if err != nil {
		return err
	}
	for _, c := range cs {
		n := billing.QuotaNotice(c.g.a.vin, owners[c.g.a.vin], c.g.cycle, c.pct, c.ds)
		if _, err := db.insertNotice(tx, n, now); err != nil {
			return err
		}
	}
	return nil
}

// grew is a cycle whose entertainment usage may have crossed a threshold,
// and the instant whose coverage sets its allowance.
type grew struct {
	a     *usageAgg
	cycle billing.Cycle
	at    time.Time
}

// grown is what grownCycles found: the cycles, their VINs (distinct, in
// order), the range of their allowance instants and the largest total.
type grown struct {
	cycles   []grew
	vins     []any
	from, to time.Time
	maxTotal int64
}

// grownCycles keeps the aggregates (ordered by VIN) whose entertainment
// usage grew and may have crossed a threshold of an allowance of at least
// floor (billing.MayCross).
func grownCycles(aggs []*usageAgg, floor int64, thresholds []int, loc *time.Location, now time.Time) (grown, error) {
	var g grown
	for _, a := range aggs {
		if a.entertainment == 0 || !billing.MayCross(a.total, floor, thresholds) {
			continue
		}
		c, err := billing.ParseCycleKey(a.cycle, loc)
		if err != nil {
			return grown{}, err
		}
		at := c.AllowanceInstant(now)
		g.cycles = append(g.cycles, grew{a, c, at})
		if len(g.vins) == 0 || string(a.vin) != g.vins[len(g.vins)-1] {
			g.vins = append(g.vins, string(a.vin))
		}
		if g.from.IsZero() || at.Before(g.from) {
			g.from = at
		}
		if at.After(g.to) {
			g.to = at
		}
		g.maxTotal = max(g.maxTotal, a.total)
	}
	return g, nil
}

// crossing is a threshold a cycle crossed.
type crossing struct {
	g   grew
	ds  billing.DataStatus
	pct int
}

// crossings returns the thresholds each cycle crossed with this batch,
// by billing.Quota on the vehicle's timeline, and the VINs (distinct) of
// the vehicles that crossed one.
func crossings(gs []grew, timelines map[billing.VIN]billing.Timeline, thresholds []int) ([]crossing, []any) {
	var cs []crossing
	var noticed []any
	for _, g := range gs {
		tl := timelines[g.a.vin]
		ds := billing.Quota(tl.At(g.at), g.cycle, billing.Usage{EntertainmentBytes: g.a.total})
		for _, pct := range ds.Crossed(g.a.total-g.a.entertainment, thresholds) {
			if len(noticed) == 0 || noticed[len(noticed)-1] != string(g.a.vin) {
				noticed = append(noticed, string(g.a.vin))
			}
			cs = append(cs, crossing{g, ds, pct})
		}
	}
	return cs, noticed
}

// DeleteUsageBefore deletes at most limit raw usage records that started
// before cutoff, oldest first, in one short write transaction, and returns
// how many it deleted. Aggregates are kept. It also deletes up to limit
// usage_arrivals rows of the cycles (calendar months of loc, keyed as
// ingest keys them: billing.Cycle.Key) before the cutoff's (they are
// fewer than the records, so the job's batches keep up with them).
func (db *DB) DeleteUsageBefore(ctx context.Context, cutoff time.Time, loc *time.Location, limit int) (int64, error) {
	var n int64
	err := db.writeBulk(ctx, func(tx *Tx) error {
		var err error
		if n, err = tx.update(pruneUsageStmt, db.timeArg(cutoff), limit); err != nil {
			return err
		}
		_, err = tx.update(pruneArrivalsStmt, billing.CycleAt(cutoff, loc).Key(), limit)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune usage records: %w", err)
	}
	return n, nil
}

var pruneUsageStmt = statement{"usage/prune", func() string {
	return `DELETE FROM usage_records WHERE id IN (
		SELECT id FROM usage_records WHERE started_at < ? ORDER BY started_at LIMIT ?)`
}}

// pruneArrivalsStmt deletes up to a limit of usage_arrivals rows of the
// cycles before a cycle key (the cutoff's cycle: every cycle before it
// ended before the cutoff). Point-in-time reads refuse a cycle that
// started before the retention horizon, so none reads a cycle whose rows
// are partly gone.
var pruneArrivalsStmt = statement{"usage/prune-arrivals", func() string {
	return `DELETE FROM usage_arrivals WHERE (cycle, vin, received_at, batch) IN (
		SELECT cycle, vin, received_at, batch FROM usage_arrivals WHERE cycle < ? ORDER BY cycle LIMIT ?)`
}}

// usageAllowanceMigration indexes the periods' monthly allowance, so that
// usage ingest reads the smallest one in a single seek (allowanceFloor).
// Period inserts append to the index: nearly every period has one of a
// few allowances.
var usageAllowanceMigration = migration{Version: 41, Name: "periods: allowance index for quota checks", Up: []string{
	`CREATE INDEX periods_allowance_idx ON periods (data_bytes_per_month)`,
}}

// allowanceFloor returns the smallest positive monthly allowance of any
// period (refunded, ended or future ones included: a floor may be lower
// than needed, never higher), or 0 when there is none.
func (db *DB) allowanceFloor(tx *Tx) (int64, error) {
	rows, err := tx.query(allowanceFloorStmt)
	if err != nil {
		return 0, fmt.Errorf("smallest allowance: %w", err)
	}
	var floor sql.NullInt64
	err = eachRow(rows, func() error { return rows.Scan(&floor) })
	if err != nil {
		return 0, fmt.Errorf("smallest allowance: %w", err)
	}
	return floor.Int64, nil
}

var allowanceFloorStmt = statement{"usage/allowance-floor", func() string {
	return `SELECT MIN(data_bytes_per_month) FROM periods WHERE data_bytes_per_month > 0`
}}
