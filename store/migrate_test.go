package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"entitlements/billing"
	"entitlements/store"
	"entitlements/store/storetest"
)

// TestUpgradeKeepsPeriodsAndNotices starts from a database as the second
// release left it (periods with the ended flag, notices unique by dedupe key),
// upgrades it, and checks that every row is kept and that both kinds of
// notice are still created once: coverage notices by (kind, covered_until,
// vin, stage), the others by dedupe key.
func TestUpgradeKeepsPeriodsAndNotices(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		ctx := context.Background()
		cfg := storetest.Config(t, dialect)
		cfg.SnapshotCache = 0
		db, err := store.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if _, err := db.MigrateOnly(ctx, 1, 2, 10, 20, 21, 30, 31, 40); err != nil {
			t.Fatal(err)
		}
		vin := billing.VIN(billing.FixCheckDigit("LSVAX4E10P2000300"))
		at := time.Date(2025, 2, 28, 16, 0, 0, 0, time.UTC) // 2025-03-01 00:00 in Shanghai
		end := at.AddDate(1, 0, 0)
		exec := func(q string, args ...any) error { return storetest.Exec(db, q, args...) }
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(exec(`INSERT INTO vehicles (vin, owner_id, model, activated_at, coverage_ends_at, created_at, updated_at)
			VALUES (?, 'owner-1', 'SU7', ?, ?, ?, ?)`, string(vin), at, end, at, at))
		must(exec(`INSERT INTO periods (id, vin, seq, source, product, days, data_bytes_per_month, starts_at, ends_at, ended, created_at, updated_at)
			VALUES ('per_1', ?, 0, 'trial', 'trial', 0, 1024, ?, ?, TRUE, ?, ?)`, string(vin), at, end, at, at))
		notice := `INSERT INTO notices (id, vin, owner_id, kind, dedupe_key, stage, covered_until, data, status, next_attempt_at, created_at, updated_at)
			VALUES (?, ?, 'owner-1', ?, ?, ?, ?, '{}', 'pending', ?, ?, ?)`
		must(exec(notice, "ntc_1", string(vin), string(billing.NoticeExpiring), "k-expiring-7", 7, end, at, at, at))
		must(exec(notice, "ntc_2", string(vin), string(billing.NoticeOrderPaid), "order.paid:ord_1", 0, nil, at, at, at))

		applied, err := db.Migrate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []int{3, 4, 32} {
			if !slices.Contains(applied, v) {
				t.Errorf("upgrade applied %v, want %d among them", applied, v)
			}
		}

		tl, err := db.Timeline(ctx, vin)
		if err != nil || len(tl.Periods) != 1 || !tl.Periods[0].EndsAt.Equal(end) || tl.Periods[0].DataBytesPerMonth != 1024 {
			t.Errorf("timeline after upgrade = %+v, %v; want the one trial period until %s", tl.Periods, err, end)
		}
		ns, err := db.Notices(ctx, vin, 10)
		if err != nil || len(ns) != 2 {
			t.Fatalf("notices after upgrade = %+v, %v; want 2", ns, err)
		}
		for _, n := range ns {
			if n.Kind == billing.NoticeExpiring && (n.CoveredUntil == nil || !n.CoveredUntil.Equal(end) || n.Stage != 7 || n.DedupeKey != "k-expiring-7") {
				t.Errorf("reminder after upgrade = %+v", n)
			}
		}

		// The same coverage notice under another dedupe key, and the same
		// order.paid under another id, are refused; another stage is not.
		if err := exec(notice, "ntc_3", string(vin), string(billing.NoticeExpiring), "k-other", 7, end, at, at, at); err == nil {
			t.Error("a second reminder for the same stage and coverage end was stored")
		}
		if err := exec(notice, "ntc_4", string(vin), string(billing.NoticeOrderPaid), "order.paid:ord_1", 0, nil, at, at, at); err == nil {
			t.Error("a second order.paid with the same dedupe key was stored")
		}
		must(exec(notice, "ntc_5", string(vin), string(billing.NoticeExpiring), "k-expiring-1", 1, end, at, at, at))
		if err := exec(`UPDATE periods SET ended = TRUE`); err == nil {
			t.Error("periods.ended still exists after the upgrade")
		}
	})
}

// TestUpgradeAddressesMoneyNoticesToThePayer: order.paid and refund.issued
// notices written for the car's owner of the moment (the buyer, after a
// sale) are addressed to the owner who placed the order; coverage notices
// and a money notice whose order is unknown keep their owner.
func TestUpgradeAddressesMoneyNoticesToThePayer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		ctx := context.Background()
		db, err := store.Open(ctx, storetest.Config(t, dialect))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if _, err := db.MigrateOnly(ctx, 1, 2, 3, 4, 10, 20, 21, 30, 31, 32, 40, 41); err != nil {
			t.Fatal(err)
		}
		vin := billing.FixCheckDigit("LSVAX4E10P2000301")
		at := time.Date(2025, 2, 28, 16, 0, 0, 0, time.UTC)
		must := func(q string, args ...any) {
			t.Helper()
			if err := storetest.Exec(db, q, args...); err != nil {
				t.Fatal(err)
			}
		}
		must(`INSERT INTO vehicles (vin, owner_id, model, activated_at, coverage_ends_at, created_at, updated_at)
			VALUES (?, 'bob', 'SU7', ?, ?, ?, ?)`, vin, at, at, at, at)
		must(`INSERT INTO orders (id, vin, owner_id, product, amount_fen, currency, days, status, created_at, expires_at, updated_at)
			VALUES ('ord_1', ?, 'alice', 'monthly', 1990, 'CNY', 31, 'paid', ?, ?, ?)`, vin, at, at, at)
		must(`INSERT INTO refunds (id, order_id, vin, amount_fen, currency, reason, end_access, period_action, created_by, created_at)
			VALUES ('rfd_1', 'ord_1', ?, 100, 'CNY', 'other', FALSE, 'kept', 'clerk', ?)`, vin, at)
		notice := `INSERT INTO notices (id, vin, owner_id, kind, dedupe_key, stage, covered_until, data, status, next_attempt_at, created_at, updated_at)
			VALUES (?, ?, 'bob', ?, ?, ?, ?, '{}', 'sent', ?, ?, ?)`
		must(notice, "ntc_paid", vin, string(billing.NoticeOrderPaid), "order.paid:ord_1", 0, nil, at, at, at)
		must(notice, "ntc_refund", vin, string(billing.NoticeRefundIssued), "refund.issued:rfd_1", 0, nil, at, at, at)
		must(notice, "ntc_gone", vin, string(billing.NoticeOrderPaid), "order.paid:ord_gone", 0, nil, at, at, at)
		must(notice, "ntc_expiring", vin, string(billing.NoticeExpiring), "coverage.expiring:x", 7, at, at, at, at)

		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		ns, err := db.Notices(ctx, billing.VIN(vin), 10)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"ntc_paid": "alice", "ntc_refund": "alice", "ntc_gone": "bob", "ntc_expiring": "bob"}
		for _, n := range ns {
			if n.OwnerID != want[n.ID] {
				t.Errorf("notice %s (%s) is addressed to %s after the upgrade, want %s", n.ID, n.Kind, n.OwnerID, want[n.ID])
			}
			delete(want, n.ID)
		}
		if len(want) != 0 {
			t.Errorf("notices missing after the upgrade: %v", want)
		}
	})
}
