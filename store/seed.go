package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"entitlements/billing"

	"gorm.io/gorm"
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
func (db *DB) Seed(ctx context.Context, n int, mix SeedMix, cat billing.Catalog, loc *time.Location, now time.Time) error {
	const chunk = 20_000
	defer db.ForgetSnapshots()
	monthly, okm := cat.Product("monthly")
	yearly, oky := cat.Product("yearly")
	if !okm || !oky {
		return fmt.Errorf("seed needs the monthly and yearly products in the catalog")
	}
	if db.dialect == SQLite {
		// A bulk load that can be redone: trade durability of each commit
		// for speed on the single writer connection, and restore the
		// writer's own settings after (synchronous=FULL, its page cache),
		// so that nothing written through the store later commits with
		// the seed's. Other writes committed through this store while
		// Seed runs commit without a sync too: seed an idle database.
		restore, err := db.setWriterPragmas(ctx, map[string]string{
			"synchronous": "OFF",
			"cache_size":  "-262144", // 256 MiB
		})
		if err != nil {
			return err
		}
		defer restore()
	}
	vcols := []string{"vin", "owner_id", "model", "activated_at", "coverage_ends_at", "created_at", "updated_at"}
	pcols := []string{"id", "vin", "seq", "source", "order_id", "product", "days", "data_bytes_per_month", "paid_at", "starts_at", "ends_at", "created_at", "updated_at"}
	ocols := []string{"id", "vin", "owner_id", "product", "amount_fen", "currency", "days", "data_bytes_per_month", "status", "created_at", "expires_at", "paid_at", "transaction_id", "updated_at"}
	ucols := []string{"vin", "cycle", "entertainment_bytes", "basic_bytes", "records", "last_ended_at", "updated_at"}
	cur := billing.CycleAt(now, loc)
	prev := billing.CycleAt(cur.Start.Add(-time.Hour), loc)
	for lo := 0; lo < n; lo += chunk {
		hi := min(n, lo+chunk)
		var vehicles, periods, orders, cycles [][]any
		for i := lo; i < hi; i++ {
			vin := SeedVIN(i)
			owner := SeedOwner(i)
			bucket := (i * 37) % 1000 // a deterministic spread of situations
			back := time.Duration((i*7919)%(365*24*60)) * time.Minute
			lapsed := bucket < mix.LapsedPerMille+mix.PaidPerMille
			if lapsed {
				back += 395 * 24 * time.Hour
			}
			at := utc(now.Add(-back))
			tp := cat.Trial.TrialPeriod(vin, at, loc)
			tl := billing.NewTimeline([]billing.Period{tp})
			periods = append(periods, []any{fmt.Sprintf("per_seed_%d", i), string(vin), 0, string(billing.SourceTrial), nil,
				string(billing.SourceTrial), 0, tp.DataBytesPerMonth, nil, utc(tp.StartsAt), utc(tp.EndsAt), utc(now), utc(now)})
			var paidAt time.Time
			switch {
			case bucket >= mix.LapsedPerMille && bucket < mix.LapsedPerMille+mix.PaidPerMille:
				paidAt = utc(now.Add(-time.Duration(i%(20*24*60)) * time.Minute)) // within the last 20 days
			case bucket >= mix.LapsedPerMille+mix.PaidPerMille && bucket < mix.LapsedPerMille+mix.PaidPerMille+mix.AheadPerMille:
				paidAt = utc(now.Add(-time.Duration(i%(24*60)) * time.Minute))
				if paidAt.Before(at) {
					paidAt = at
				}
			}
			if !paidAt.IsZero() {
				prod := yearly
				if (i*13)%1000 < mix.MonthlyPerMille {
					prod = monthly
				}
				start := billing.PaidStart(paidAt, tp.EndsAt)
				end := billing.PaidEnd(start, prod.Days, loc)
				oid := fmt.Sprintf("ord_seed_%d", i)
				orders = append(orders, []any{oid, string(vin), owner, prod.Code, prod.PriceFen, billing.Currency, prod.Days,
					prod.DataBytesPerMonth, "paid", paidAt, paidAt.Add(30 * time.Minute), paidAt, "tx_seed_" + oid, utc(now)})
				periods = append(periods, []any{fmt.Sprintf("per_seed_%d_1", i), string(vin), 1, string(billing.SourceOrder), oid,
					prod.Code, prod.Days, prod.DataBytesPerMonth, paidAt, utc(start), utc(end), utc(now), utc(now)})
				tl.Periods = append(tl.Periods, billing.Period{StartsAt: start, EndsAt: end, Seq: 1})
			}
			vehicles = append(vehicles, []any{string(vin), owner, "seed", at, utc(tl.End()), utc(now), utc(now)})
			if (i*53)%1000 < mix.UsagePerMille {
				for k, c := range []billing.Cycle{prev, cur} {
					// Usage from the later of the activation and the
					// cycle's start until some time before now.
					from, to := maxTime(at, c.Start), minTime(c.End, now)
					if !from.Before(to) {
						continue
					}
					span := to.Sub(from)
					ended := utc(from.Add(span / 1000 * time.Duration(500+(i*7+k*11)%500)))
					ent := int64((i*97+k*31)%4000) << 20     // 0 to ~4 GB
					basic := int64(1+(i*89+k*17)%1000) << 20 // 1 MB to ~1 GB
					if !tl.End().After(from) {
						ent = 0 // not covered: premium features go over a hotspot, if at all
					}
					cycles = append(cycles, []any{string(vin), c.Key(), ent, basic, 1 + (i+k)%200, ended, utc(now)})
				}
			}
		}
		err := db.tx(ctx, func(tx *gorm.DB) error {
			if err := bulkInsert(tx, "vehicles", vcols, vehicles); err != nil {
				return err
			}
			if err := bulkInsert(tx, "orders", ocols, orders); err != nil {
				return err
			}
			if err := bulkInsert(tx, "usage_cycles", ucols, cycles); err != nil {
				return err
			}
			return bulkInsert(tx, "periods", pcols, periods)
		})
		if err != nil {
			return fmt.Errorf("seed vehicles %d-%d: %w", lo, hi, err)
		}
	}
	return nil
}

// setWriterPragmas sets PRAGMAs on the SQLite writer's connection and
// returns a function that sets them back to the values they had.
func (db *DB) setWriterPragmas(ctx context.Context, set map[string]string) (restore func(), err error) {
	was := map[string]string{}
	restore = func() {
		for name, v := range was {
			db.write.Exec("PRAGMA " + name + " = " + v)
		}
	}
	for name, v := range set {
		var cur string
		if err := db.write.WithContext(ctx).Raw("PRAGMA " + name).Scan(&cur).Error; err != nil {
			restore()
			return nil, fmt.Errorf("read PRAGMA %s: %w", name, err)
		}
		if err := db.write.WithContext(ctx).Exec("PRAGMA " + name + " = " + v).Error; err != nil {
			restore()
			return nil, fmt.Errorf("set PRAGMA %s: %w", name, err)
		}
		was[name] = cur
	}
	return restore, nil
}

// bulkInsert writes rows with multi-row INSERT statements small enough for
// both SQLite's and PostgreSQL's parameter limits, skipping conflicts.
func bulkInsert(tx *gorm.DB, table string, cols []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	per := max(1, 30000/len(cols))
	rowPH := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
	head := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES "
	for lo := 0; lo < len(rows); lo += per {
		hi := min(len(rows), lo+per)
		var sb strings.Builder
		sb.WriteString(head)
		args := make([]any, 0, (hi-lo)*len(cols))
		for i := lo; i < hi; i++ {
			if i > lo {
				sb.WriteByte(',')
			}
			sb.WriteString(rowPH)
			args = append(args, rows[i]...)
		}
		sb.WriteString(" ON CONFLICT DO NOTHING")
		if err := tx.Exec(sb.String(), args...).Error; err != nil {
			return fmt.Errorf("insert into %s: %w", table, err)
		}
	}
	return nil
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
