package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"entitlements/billing"
	"entitlements/store"
	"entitlements/store/storetest"
)

// TestAuditLogRefusesUpdateAndDelete: the database itself refuses to
// change or remove an entry, whatever statement tries.
func TestAuditLogRefusesUpdateAndDelete(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		ctx := billing.WithActor(context.Background(), billing.SystemActor("test"))
		at := time.Date(2026, 6, 15, 4, 0, 0, 0, time.UTC)
		if err := db.RecordAudit(ctx, billing.AuditEntry{At: at, Action: billing.AuditConfigLoaded}); err != nil {
			t.Fatal(err)
		}
		stmts := []string{`UPDATE audit_log SET actor = 'someone else'`, `DELETE FROM audit_log`}
		if dialect == store.Postgres {
			stmts = append(stmts, `TRUNCATE audit_log`)
		}
		for _, q := range stmts {
			err := db.ExecInWrite(ctx, q)
			if err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: err = %v, want refused as append-only", q, err)
			}
		}
		es, _, err := db.AuditEntries(ctx, billing.AuditQuery{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 1 || es[0].Actor != "system:test" {
			t.Errorf("entries = %+v, want the one entry unchanged", es)
		}
	})
}

// TestAuditEntryOnlyWithItsChange: a write's entries are committed with
// it, stamped with the context's actor and request id, and a write that
// fails leaves none.
func TestAuditEntryOnlyWithItsChange(t *testing.T) {
	storetest.Each(t, func(t *testing.T, dialect string) {
		t.Parallel()
		db := storetest.Open(t, dialect)
		ctx := billing.WithActor(context.Background(), billing.Actor{Role: "ops", Subject: "delivery", RequestID: "req-1"})
		at := time.Date(2026, 6, 15, 4, 0, 0, 0, time.UTC)
		refused := errors.New("refused")
		if err := db.WriteAudited(ctx, billing.AuditEntry{At: at, Action: billing.AuditVehicleActivated, VIN: "A"}, refused); !errors.Is(err, refused) {
			t.Fatalf("failing write: %v, want its own error", err)
		}
		if err := db.WriteAudited(ctx, billing.AuditEntry{At: at, Action: billing.AuditVehicleActivated, VIN: "B",
			After: billing.Fields{"activated_at": at, "owner_id": "alice"}}, nil); err != nil {
			t.Fatal(err)
		}
		if err := db.WriteAudited(context.Background(), billing.AuditEntry{At: at, Action: billing.AuditVehicleActivated, VIN: "C"}, nil); err != nil {
			t.Fatal(err)
		}
		es, _, err := db.AuditEntries(ctx, billing.AuditQuery{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		got := map[billing.VIN]billing.AuditEntry{}
		for _, e := range es {
			got[e.VIN] = e
		}
		if _, ok := got["A"]; ok || len(es) != 2 {
			t.Fatalf("entries = %+v, want B and C only", es)
		}
		b := got["B"]
		if b.Actor != "ops:delivery" || b.RequestID != "req-1" || !b.At.Equal(at) || b.After["owner_id"] != "alice" ||
			b.After["activated_at"] != "2026-06-15T04:00:00Z" || b.Before != nil {
			t.Errorf("entry = %+v, want ops:delivery, req-1, its time and fields", b)
		}
		if c := got["C"]; c.Actor != "unknown" || c.RequestID != "" {
			t.Errorf("entry without an actor = %+v, want actor unknown", c)
		}
	})
}
