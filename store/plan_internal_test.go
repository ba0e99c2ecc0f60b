package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestJobQueryPlans checks, on SQLite, the query plans the jobs' speed
// rests on (docs/performance.md): the coverage-end walk reads only the
// covering index, in its order, and every notice probe is an index seek.
// A plan that scans a table or sorts would still pass every functional
// test and take minutes over a million vehicles.
func TestJobQueryPlans(t *testing.T) {
	db := planStore(t)
	now := time.Date(2026, 2, 28, 16, 0, 0, 0, time.UTC)
	plan := func(q string, args ...any) string { return queryPlan(t, db, q, args...) }
	for _, c := range []struct {
		name  string
		where string
		args  []any
	}{
		{"expire", db.expiredWhere(), []any{"coverage.expired"}},
		{"remind", db.remindWhere(), []any{"coverage.expiring", 7}},
	} {
		for _, next := range []bool{false, true} {
			lower := []any{now}
			if next {
				lower = []any{now, "LSVAX4E10P2000300"}
			}
			args := append(append(append(lower, now.Add(time.Hour)), c.args...), 2000)
			p := plan(db.coverageQuery(c.where, next), args...)
			for _, want := range []string{"SEARCH v USING COVERING INDEX vehicles_coverage_owner_idx", "SEARCH n USING COVERING INDEX notices_coverage_idx"} {
				if !strings.Contains(p, want) {
					t.Errorf("%s (next batch %v): plan lacks %q:\n%s", c.name, next, want, p)
				}
			}
			if strings.Contains(p, "SCAN") || strings.Contains(p, "TEMP B-TREE") {
				t.Errorf("%s (next batch %v): plan scans or sorts:\n%s", c.name, next, p)
			}
		}
	}
	// Usage ingest reads the smallest allowance once per batch: one seek,
	// not a scan of every period.
	if p := plan(allowanceFloorStmt.query()); !strings.Contains(p, "SEARCH periods USING COVERING INDEX periods_allowance_idx") {
		t.Errorf("the smallest allowance is not one index seek:\n%s", p)
	}
	// The reminder job reads its candidates' periods around now by VIN.
	if p := plan(db.periodsAtSQL(2).query(), now, now, "LSVAX4E10P2000300", "LSVAX4E10P2000301"); strings.Contains(p, "SCAN") ||
		!strings.Contains(p, "SEARCH periods USING INDEX sqlite_autoindex_periods_2 (vin=?)") {
		t.Errorf("the reminder's period read does not seek periods by VIN:\n%s", p)
	}
	// Usage ingest checks a batch's VINs on the VIN index alone.
	if p := plan(db.knownSQL(2).query(), "LSVAX4E10P2000300", "LSVAX4E10P2000301"); !strings.Contains(p, "USING COVERING INDEX sqlite_autoindex_vehicles_1") {
		t.Errorf("the VIN check reads vehicle rows:\n%s", p)
	}
	// The entitlement read: every table by an index seek on the VIN, as_of
	// from the vehicle's own cycles (see usageMigration), no scan anywhere.
	if p := plan(db.snapshotQuery(), "2026-02", "LSVAX4E10P2000300"); strings.Contains(p, "SCAN") ||
		!strings.Contains(p, "SEARCH ua USING INDEX sqlite_autoindex_usage_cycles_1 (vin=?)") {
		t.Errorf("the snapshot read scans or does not seek the cycles by VIN:\n%s", p)
	}
	if p := plan(`SELECT * FROM notices WHERE vin = ? ORDER BY created_at DESC, id DESC LIMIT 10`, "LSVAX4E10P2000300"); !strings.Contains(p, "notices_vin_idx") {
		t.Errorf("a vehicle's notice list does not use notices_vin_idx:\n%s", p)
	}
}

// planStore opens a migrated SQLite store, for the query-plan tests.
func planStore(t *testing.T) *DB {
	t.Helper()
	ctx := context.Background()
	db, err := Open(ctx, Config{Driver: SQLite, DSN: filepath.Join(t.TempDir(), "plan.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

// queryPlan is SQLite's plan of q, one step a line.
func queryPlan(t *testing.T, db *DB, q string, args ...any) string {
	t.Helper()
	rows, err := db.read.Raw("EXPLAIN QUERY PLAN "+q, args...).Rows()
	if err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	return strings.Join(lines, "\n")
}
