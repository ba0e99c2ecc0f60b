package billing

import (
	"testing"
	"time"
)

func TestViewer(t *testing.T) {
	own, other := VIN("LSVAX4E10P4000001"), VIN("LSVAX4E10P4000002")
	staff := Viewer{Audience: AudienceStaff, Subject: "clerk"}
	car := Viewer{Audience: AudienceVehicle, Subject: string(own)}
	alice := Viewer{Audience: AudienceOwner, Subject: "alice"}
	carrier := Viewer{Audience: AudienceNone, Subject: "feed"}
	tests := []struct {
		name                      string
		w                         Viewer
		vin                       VIN
		owner                     string
		ask, see, learn, seeOrder bool
	}{
		{"staff, any car", staff, other, "bob", true, true, true, true},
		{"the car itself", car, own, "bob", true, true, true, false},
		{"a car, another VIN", car, other, "bob", false, false, false, false},
		{"owner, own car", alice, own, "alice", true, true, false, true},
		{"owner, another's car", alice, other, "bob", true, false, false, false},
		{"carrier", carrier, own, "alice", false, false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.w.MayAsk(tc.vin); got != tc.ask {
				t.Errorf("MayAsk(%s) = %v, want %v", tc.vin, got, tc.ask)
			}
			if got := tc.w.MaySeeVehicle(tc.vin, tc.owner); got != tc.see {
				t.Errorf("MaySeeVehicle(%s, %s) = %v, want %v", tc.vin, tc.owner, got, tc.see)
			}
			if got := tc.w.MayLearnNotActivated(tc.vin); got != tc.learn {
				t.Errorf("MayLearnNotActivated(%s) = %v, want %v", tc.vin, got, tc.learn)
			}
			o := Order{ID: "ord_1", VIN: tc.vin, OwnerID: tc.owner}
			if got := tc.w.MaySeeOrder(o); got != tc.seeOrder {
				t.Errorf("MaySeeOrder(order of %s) = %v, want %v", tc.owner, got, tc.seeOrder)
			}
		})
	}
	if q := alice.NoticeQuery(own, 5); q.OwnerID != "alice" || q.VIN != own || q.Limit != 5 {
		t.Errorf("owner's NoticeQuery = %+v, want alice's notices of %s, 5", q, own)
	}
	if q := staff.NoticeQuery(own, 5); q.OwnerID != "" {
		t.Errorf("staff NoticeQuery = %+v, want every notice", q)
	}
	if q := alice.OrderQuery(OrderQuery{VIN: own, Limit: 5}); q.OwnerID != "alice" {
		t.Errorf("owner's OrderQuery = %+v, want alice's orders", q)
	}
	if q := staff.OrderQuery(OrderQuery{VIN: own, Limit: 5}); q.OwnerID != "" {
		t.Errorf("staff OrderQuery = %+v, want every order", q)
	}
}

// TestMoneyNoticesAreAddressedToThePayer: order.paid and refund.issued go
// to the owner who placed the order and render instants in loc.
func TestMoneyNoticesAreAddressedToThePayer(t *testing.T) {
	loc := mustZone(t, "Asia/Shanghai")
	o := Order{ID: "ord_1", VIN: "LSVAX4E10P4000001", OwnerID: "alice", AmountFen: 1990, Currency: "CNY", TransactionID: "tx-1"}
	paid := OrderPaidNotice(o, Period{ID: "per_1"}, mustTime(t, "2026-06-15T04:00:00Z"), time.Time{}, loc)
	if paid.OwnerID != "alice" || paid.DedupeKey != "order.paid:ord_1" || paid.Data["paid_at"] != "2026-06-15T12:00:00+08:00" || paid.Data["covered_until"] != nil {
		t.Errorf("OrderPaidNotice = %+v", paid)
	}
	r := Refund{ID: "rfd_1", OrderID: o.ID, AmountFen: 100, Currency: "CNY", CreatedAt: mustTime(t, "2026-06-16T16:00:00Z")}
	refund := RefundIssuedNotice(o, r, 100, loc)
	if refund.OwnerID != "alice" || refund.DedupeKey != "refund.issued:rfd_1" || refund.Data["created_at"] != "2026-06-17T00:00:00+08:00" {
		t.Errorf("RefundIssuedNotice = %+v", refund)
	}
}
