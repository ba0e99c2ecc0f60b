package store_test

import (
	"testing"
	"time"

	"entitlements/store/storetest"
)

// Refunds are a ledger: once written, a row can be neither changed nor
// removed, whatever code runs against the database.
func TestRefundsAreAppendOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		now := time.Date(2026, 6, 15, 4, 0, 0, 0, time.UTC)
		setup := []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO vehicles (vin, owner_id, activated_at, coverage_ends_at, created_at, updated_at) VALUES ('V1', 'alice', ?, ?, ?, ?)`, []any{now, now, now, now}},
			{`INSERT INTO orders (id, vin, owner_id, product, amount_fen, currency, days, status, created_at, expires_at, refunded_fen, updated_at)
			  VALUES ('o1', 'V1', 'alice', 'monthly', 1990, 'CNY', 31, 'partially_refunded', ?, ?, 100, ?)`, []any{now, now, now}},
			{`INSERT INTO refunds (id, order_id, vin, amount_fen, currency, reason, end_access, period_action, created_by, created_at)
			  VALUES ('r1', 'o1', 'V1', 100, 'CNY', 'other', FALSE, 'kept', 'bob', ?)`, []any{now}},
		}
		for _, s := range setup {
			if err := storetest.Exec(db, s.sql, s.args...); err != nil {
				t.Fatalf("setup: %v", err)
			}
		}
		if err := storetest.Exec(db, `UPDATE refunds SET amount_fen = 1 WHERE id = 'r1'`); err == nil {
			t.Errorf("UPDATE refunds succeeded, want it refused")
		}
		if err := storetest.Exec(db, `DELETE FROM refunds WHERE id = 'r1'`); err == nil {
			t.Errorf("DELETE FROM refunds succeeded, want it refused")
		}
		if err := storetest.Exec(db, `UPDATE orders SET refunded_fen = 2000 WHERE id = 'o1'`); err == nil {
			t.Errorf("refunded_fen above amount_fen was accepted, want the CHECK to refuse it")
		}
	})
}
