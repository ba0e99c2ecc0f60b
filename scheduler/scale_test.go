package scheduler_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"entitlements/billing"
	"entitlements/scheduler"
	"entitlements/store/storetest"
)

// TestRemindScale measures remind and expire over a fleet of
// ENTITLEMENTS_TEST_SCALE vehicles whose coverage ends are spread over a
// year (about 1 in 12 within 30 days): the first run, which creates the
// notices, and a steady-state run, which finds nothing to do. It skips
// unless the variable is set; it is a measurement, not a check.
func TestRemindScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ENTITLEMENTS_TEST_SCALE"))
	if n <= 0 {
		t.Skip("set ENTITLEMENTS_TEST_SCALE=100000 to measure remind and expire over a fleet")
	}
	storetest.Each(t, func(t *testing.T, dialect string) {
		db := storetest.Open(t, dialect)
		u := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05+00:00") }
		if dialect == "postgres" {
			u = func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
		}
		start := time.Now()
		const chunk = 500
		for lo := 0; lo < n; lo += chunk {
			var vs, ps []string
			for i := lo; i < min(lo+chunk, n); i++ {
				vin := billing.FixCheckDigit(fmt.Sprintf("LSVAX4E10P%07d", i))
				end := t0.Add(time.Duration(i%365)*24*time.Hour - 3*24*time.Hour)
				begin := end.AddDate(-1, 0, 0)
				vs = append(vs, fmt.Sprintf("('%s','o%d','SU7','%s','%s','%s','%s')", vin, i, u(begin), u(end), u(begin), u(begin)))
				ps = append(ps, fmt.Sprintf("('p%d','%s',0,'trial','trial','%s','%s','%s','%s')", i, vin, u(begin), u(end), u(begin), u(begin)))
			}
			if err := storetest.Exec(db, `INSERT INTO vehicles (vin, owner_id, model, activated_at, coverage_ends_at, created_at, updated_at) VALUES `+strings.Join(vs, ",")); err != nil {
				t.Fatal(err)
			}
			if err := storetest.Exec(db, `INSERT INTO periods (id, vin, seq, source, product, starts_at, ends_at, created_at, updated_at) VALUES `+strings.Join(ps, ",")); err != nil {
				t.Fatal(err)
			}
		}
		if dialect == "postgres" {
			storetest.Exec(db, `ANALYZE vehicles`) // as autovacuum would after a bulk load
			storetest.Exec(db, `ANALYZE periods`)
		}
		t.Logf("%s: seeded %d vehicles in %s", dialect, n, time.Since(start).Round(time.Millisecond))
		remind := scheduler.Remind{Store: db, Stages: stages, Location: shanghai}
		expire := scheduler.Expire{Store: db, MaxAge: maxAge, Location: shanghai}
		for _, run := range []string{"first", "steady"} {
			s := time.Now()
			runJob(t, remind, t0)
			r := time.Since(s)
			s = time.Now()
			runJob(t, expire, t0)
			e := time.Since(s)
			var notices int64
			storetest.Query(db, &notices, `SELECT COUNT(*) FROM notices`)
			if os.Getenv("EXPLAIN") != "" && dialect == "postgres" {
				var lines []string
				storetest.Query(db, &lines, `EXPLAIN ANALYZE SELECT v.vin, v.owner_id, v.coverage_ends_at FROM vehicles v
			WHERE v.coverage_ends_at > ? AND v.coverage_ends_at <= ?
			AND EXISTS (SELECT 1 FROM periods p
				WHERE p.vin = v.vin AND p.refunded_at IS NULL AND p.starts_at <= ? AND p.ends_at > ?)
			AND NOT EXISTS (SELECT 1 FROM notices n
				WHERE n.vin = v.vin AND n.kind = ? AND n.covered_until = v.coverage_ends_at AND n.stage <= ?)
			ORDER BY v.coverage_ends_at, v.vin LIMIT ?`, t0.Add(7*24*time.Hour), t0.Add(30*24*time.Hour), t0, t0, "coverage.expiring", 30, 500)
				t.Log(strings.Join(lines, "\n"))
			}
			t.Logf("%s: %s run: remind %s, expire %s; %d notices", dialect, run, r.Round(time.Millisecond), e.Round(time.Millisecond), notices)
		}
	})
}
