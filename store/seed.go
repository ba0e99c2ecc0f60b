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
// per mille; the rest is in its free year.
type SeedMix struct {
	LapsedPerMille int // trial ended, nothing bought
}

// DefaultSeedMix is the fleet of a maker a year and a half after launch.
var DefaultSeedMix = SeedMix{LapsedPerMille: 200}

// Seed bulk-loads n activated vehicles (indices 0..n-1) with their trial
// periods, in multi-row INSERTs inside one transaction per chunk. Vehicles
// that exist are skipped. Activation dates are spread deterministically
// over the 12 months before now (free year) or 13 to 36 months before
// (lapsed), so that runs are repeatable.
func (db *DB) Seed(ctx context.Context, n int, mix SeedMix, trial billing.TrialTerms, loc *time.Location, now time.Time) error {
	const chunk = 20_000
	for lo := 0; lo < n; lo += chunk {
		hi := min(n, lo+chunk)
		err := db.tx(ctx, func(tx *gorm.DB) error {
			vehicles := make([][]any, 0, hi-lo)
			periods := make([][]any, 0, hi-lo)
			for i := lo; i < hi; i++ {
				vin := SeedVIN(i)
				// A deterministic spread: minutes back from now.
				back := time.Duration((i*7919)%(365*24*60)) * time.Minute
				if (i*37)%1000 < mix.LapsedPerMille {
					back += 395 * 24 * time.Hour
				}
				at := utc(now.Add(-back))
				p := trial.TrialPeriod(vin, at, loc)
				vehicles = append(vehicles, []any{string(vin), SeedOwner(i), "seed", at, utc(p.EndsAt), utc(now), utc(now)})
				periods = append(periods, []any{fmt.Sprintf("per_seed_%d", i), string(vin), 0, string(billing.SourceTrial),
					string(billing.SourceTrial), p.DataBytesPerMonth, utc(p.StartsAt), utc(p.EndsAt), !p.EndsAt.After(now), utc(now), utc(now)})
			}
			if err := bulkInsert(tx, "vehicles", []string{"vin", "owner_id", "model", "activated_at", "coverage_ends_at", "created_at", "updated_at"}, vehicles); err != nil {
				return err
			}
			return bulkInsert(tx, "periods", []string{"id", "vin", "seq", "source", "product", "data_bytes_per_month", "starts_at", "ends_at", "ended", "created_at", "updated_at"}, periods)
		})
		if err != nil {
			return fmt.Errorf("seed vehicles %d-%d: %w", lo, hi, err)
		}
	}
	return nil
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
