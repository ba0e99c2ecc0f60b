package api

import (
	"encoding/json"
	"reflect"
	"testing"
)

func sampleEntitlementView() entitlementView {
	until, order, asOf := "2027-02-15T00:00:00+08:00", "ord-1", "2026-12-02T21:00:00+08:00"
	return entitlementView{
		VIN: "LSVAX4E15P2000001", OwnerID: "owner-1", Model: "M1", ActivatedAt: "2026-01-15T10:00:00+08:00",
		State: "trial", Covered: true, CoveredUntil: &until, DaysLeft: 73,
		Periods: []periodView{
			{ID: "per-0", Source: "trial", Product: "trial", StartsAt: "2026-01-15T00:00:00+08:00", EndsAt: "2027-01-15T00:00:00+08:00", Status: "active"},
			{ID: "per-1", Source: "order", OrderID: &order, Product: "monthly", StartsAt: "2027-01-15T00:00:00+08:00", EndsAt: until, Status: "scheduled"},
		},
		Data: dataView{CycleStart: "2026-12-01T00:00:00+08:00", CycleEnd: "2027-01-01T00:00:00+08:00",
			AllowanceBytes: 16 << 30, UsedBytes: 3 << 30, RemainingBytes: 13 << 30, AsOf: &asOf},
		Features: []decisionView{{Code: "navigation", Tier: "basic", Allowed: true, Reason: "basic"},
			{Code: "karaoke", Tier: "premium", Allowed: true, Reason: "covered"}},
		AsOf: "2026-12-04T09:00:00+08:00", Epoch: 2,
	}
}

// TestAppendEntitlementIsJSONMarshal: appendEntitlement writes what
// json.Marshal writes for a sample answer, for nil and empty lists, for
// strings that need escaping, and with each field set on its own (found
// by reflection, so a field added to entitlementView and not to
// appendEntitlement fails here).
func TestAppendEntitlementIsJSONMarshal(t *testing.T) {
	check := func(name string, v entitlementView) {
		t.Helper()
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendEntitlement(nil, &v); string(got) != string(want) {
			t.Errorf("%s:\nappendEntitlement %s\njson.Marshal      %s", name, got, want)
		}
	}
	check("sample", sampleEntitlementView())
	check("zero", entitlementView{})
	empty := sampleEntitlementView()
	empty.Periods, empty.Features, empty.CoveredUntil, empty.Data.AsOf = []periodView{}, []decisionView{}, nil, nil
	check("empty lists, nulls", empty)
	point := sampleEntitlementView()
	point.Point = &pointView{At: "2026-03-03T00:00:00+08:00", AsKnownAt: "2026-03-04T00:00:00+08:00", Future: true}
	point.DaysLeft, point.Data.UsedBytes = -3, -1
	check("point in time, negatives", point)
	for _, s := range []string{"a<b>&c", `quote " and \ back`, "tab\t", "é", "\u2028", "\xff", "\x00"} {
		v := sampleEntitlementView()
		v.OwnerID, v.Model, v.Periods[0].ID = s, s, s
		check("string "+strconvQuote(s), v)
	}
	for n := 0; ; n++ {
		var v entitlementView
		skip := n
		path, ok := setLeaf(t, reflect.ValueOf(&v).Elem(), "entitlementView", &skip)
		if !ok {
			if n < 34 { // every leaf of the answer, lists and pointers counted once
				t.Fatalf("only %d fields found", n)
			}
			break
		}
		check(path, v)
	}
}

// BenchmarkAppendEntitlement against json.Marshal, the sample answer.
func BenchmarkAppendEntitlement(b *testing.B) {
	v := sampleEntitlementView()
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 4096)
		for b.Loop() {
			buf = appendEntitlement(buf[:0], &v)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
