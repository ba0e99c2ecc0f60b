package api_test

import (
	"net/http"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/store"
)

// The SQLite store caches entitlement snapshots (the harness turns the
// cache on). A cached snapshot must never let a refunded or an expired
// period grant access.
func TestCacheNeverGrantsRefundedOrExpiredCoverage(t *testing.T) {
	h := newHarness(t, store.SQLite)
	v := vin("LSVAX4E10P2000300")
	h.activate(v, "carol", time.Date(2024, 1, 10, 9, 0, 0, 0, shanghai)) // free year long over
	karaoke := func() (bool, string) {
		t.Helper()
		res := h.get("/v1/vehicles/"+v+"/features/karaoke", h.token(api.RoleVehicle, v))
		var d struct {
			Allowed bool   `json:"allowed"`
			Reason  string `json:"reason"`
		}
		res.decode(t, &d)
		if res.Code != http.StatusOK {
			t.Fatalf("feature = %d %s", res.Code, res.Body)
		}
		return d.Allowed, d.Reason
	}
	if ok, why := karaoke(); ok {
		t.Fatalf("lapsed car: karaoke allowed (%s)", why)
	}
	order := h.pay(h.createOrder(v, "carol", "monthly"))
	for i := 0; i < 3; i++ { // read it into the cache, and from it
		if ok, why := karaoke(); !ok || why != "covered" {
			t.Fatalf("after payment: allowed=%v reason=%s, want covered", ok, why)
		}
	}
	h.clock.Advance(24 * time.Hour)
	if res := h.refund(order.ID, map[string]any{"reason": "requested_by_customer"}); res.Code != http.StatusCreated {
		t.Fatalf("refund = %d %s", res.Code, res.Body)
	}
	if ok, why := karaoke(); ok || why != "not_covered" {
		t.Errorf("right after the refund: allowed=%v reason=%s, want not_covered", ok, why)
	}

	// Expiry: a second package, read into the cache just before it ends.
	h.pay(h.createOrder(v, "carol", "monthly"))
	h.clock.Advance(31*24*time.Hour - time.Second)
	if ok, why := karaoke(); !ok {
		t.Fatalf("one second before the end: allowed=%v (%s)", ok, why)
	}
	h.clock.Advance(time.Second)
	if ok, why := karaoke(); ok || why != "not_covered" {
		t.Errorf("at the end: allowed=%v reason=%s, want not_covered", ok, why)
	}
}
