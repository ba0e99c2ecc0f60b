package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"entitlements/api"
)

type entitlementBody struct {
	VIN          string  `json:"vin"`
	OwnerID      string  `json:"owner_id"`
	State        string  `json:"state"`
	Covered      bool    `json:"covered"`
	CoveredUntil *string `json:"covered_until"`
	DaysLeft     int     `json:"days_left"`
	Periods      []struct {
		Source   string `json:"source"`
		StartsAt string `json:"starts_at"`
		EndsAt   string `json:"ends_at"`
		Status   string `json:"status"`
	} `json:"periods"`
	Features []struct {
		Code    string `json:"code"`
		Allowed bool   `json:"allowed"`
		Reason  string `json:"reason"`
	} `json:"features"`
}

func TestActivationAndEntitlement(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2000001")
		h.activate(v, "owner-1", time.Date(2025, 9, 3, 15, 20, 0, 0, shanghai))

		res := h.get("/v1/vehicles/"+v+"/entitlement", h.token(api.RoleVehicle, v))
		if res.Code != http.StatusOK {
			t.Fatalf("entitlement = %d %s", res.Code, res.Body)
		}
		var e entitlementBody
		res.decode(t, &e)
		if e.State != "trial" || !e.Covered || e.CoveredUntil == nil || *e.CoveredUntil != "2026-09-03T00:00:00+08:00" {
			t.Errorf("entitlement = %+v, want trial covered until 2026-09-03T00:00:00+08:00", e)
		}
		// 2026-06-15 12:00 to 2026-09-03 00:00 is 79.5 days: rounded up.
		if e.DaysLeft != 80 {
			t.Errorf("days_left = %d, want 80", e.DaysLeft)
		}
		if len(e.Periods) != 1 || e.Periods[0].StartsAt != "2025-09-03T00:00:00+08:00" || e.Periods[0].Status != "active" {
			t.Errorf("periods = %+v", e.Periods)
		}
	})
}

func TestActivationIsIdempotent(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2000002")
		at := time.Date(2026, 1, 10, 9, 0, 0, 0, shanghai)
		h.activate(v, "owner-1", at)
		ops := h.token(api.RoleOps, "delivery")
		again := h.do(request{Method: http.MethodPost, Path: "/v1/vehicles/" + v + "/activation", Token: ops,
			Body: map[string]any{"activated_at": at.UTC().Format(time.RFC3339), "owner_id": "owner-1"}})
		if again.Code != http.StatusOK {
			t.Fatalf("same activation again = %d %s, want 200", again.Code, again.Body)
		}
		other := h.do(request{Method: http.MethodPost, Path: "/v1/vehicles/" + v + "/activation", Token: ops,
			Body: map[string]any{"activated_at": at.Add(time.Hour).Format(time.RFC3339), "owner_id": "owner-1"}})
		if other.Code != http.StatusConflict || other.problem(t).Code != "already_activated" {
			t.Fatalf("other activation = %d %s, want 409 already_activated", other.Code, other.Body)
		}
	})
}

func TestOwnershipTransferKeepsBenefit(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2000003")
		h.activate(v, "alice", time.Date(2026, 2, 1, 10, 0, 0, 0, shanghai))
		before := h.get("/v1/vehicles/"+v+"/entitlement", h.token(api.RoleOps, "x"))

		res := h.do(request{Method: http.MethodPut, Path: "/v1/vehicles/" + v + "/owner",
			Token: h.token(api.RoleOps, "delivery"), Body: map[string]string{"owner_id": "bob"}})
		if res.Code != http.StatusOK {
			t.Fatalf("transfer = %d %s", res.Code, res.Body)
		}
		var after entitlementBody
		res.decode(t, &after)
		var was entitlementBody
		before.decode(t, &was)
		if after.OwnerID != "bob" || *after.CoveredUntil != *was.CoveredUntil || len(after.Periods) != len(was.Periods) {
			t.Errorf("after transfer %+v, before %+v: owner must change, coverage stay", after, was)
		}
		if got := h.get("/v1/vehicles/"+v+"/entitlement", h.token(api.RoleOwner, "alice")); got.Code != http.StatusNotFound {
			t.Errorf("previous owner reads entitlement = %d, want 404", got.Code)
		}
		if got := h.get("/v1/vehicles/"+v+"/entitlement", h.token(api.RoleOwner, "bob")); got.Code != http.StatusOK {
			t.Errorf("new owner reads entitlement = %d, want 200", got.Code)
		}
	})
}

func TestFeatureDecisions(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		covered := vin("LSVAX4E10P2000004")
		lapsed := vin("LSVAX4E10P2000005")
		h.activate(covered, "o1", time.Date(2026, 3, 1, 8, 0, 0, 0, shanghai))
		h.activate(lapsed, "o2", time.Date(2024, 3, 1, 8, 0, 0, 0, shanghai))
		fresh := vin("LSVAX4E10P2000006") // never activated
		tests := []struct {
			name, vin, feature, conn string
			allowed                  bool
			reason                   string
		}{
			{"basic while covered", covered, "navigation", "", true, "basic_feature"},
			{"premium while covered", covered, "karaoke", "cellular", true, "covered"},
			{"premium on hotspot while covered", covered, "gaming", "hotspot", true, "external_network"},
			{"basic after lapse", lapsed, "remote_control", "", true, "basic_feature"},
			{"premium after lapse", lapsed, "video_streaming", "", false, "not_covered"},
			{"premium on hotspot after lapse", lapsed, "video_streaming", "hotspot", true, "external_network"},
			{"basic before activation", fresh, "navigation", "", false, "not_activated"},
			{"premium before activation", fresh, "karaoke", "hotspot", false, "not_activated"},
		}
		for _, tc := range tests {
			path := "/v1/vehicles/" + tc.vin + "/features/" + tc.feature
			if tc.conn != "" {
				path += "?connection=" + tc.conn
			}
			res := h.get(path, h.token(api.RoleVehicle, tc.vin))
			var d struct {
				Allowed bool   `json:"allowed"`
				Reason  string `json:"reason"`
			}
			res.decode(t, &d)
			if res.Code != http.StatusOK || d.Allowed != tc.allowed || d.Reason != tc.reason {
				t.Errorf("%s: %d allowed=%v reason=%s, want 200 allowed=%v reason=%s", tc.name, res.Code, d.Allowed, d.Reason, tc.allowed, tc.reason)
			}
		}
		list := h.get("/v1/vehicles/"+lapsed+"/features", h.token(api.RoleOwner, "o2"))
		var fl struct {
			Covered  bool `json:"covered"`
			Features []struct {
				Code, Tier, Reason string
				Allowed            bool
			} `json:"features"`
		}
		list.decode(t, &fl)
		if list.Code != http.StatusOK || fl.Covered || len(fl.Features) != 12 {
			t.Fatalf("features list = %d %s", list.Code, list.Body)
		}
		for _, f := range fl.Features {
			if f.Allowed != (f.Tier == "basic") {
				t.Errorf("lapsed %s (%s) allowed=%v", f.Code, f.Tier, f.Allowed)
			}
		}
	})
}

func TestOperationsEndpoints(t *testing.T) {
	h := newHarness(t, "sqlite")
	for _, path := range []string{"/healthz", "/readyz", "/openapi.yaml"} {
		if res := h.get(path, ""); res.Code != http.StatusOK {
			t.Errorf("GET %s = %d", path, res.Code)
		}
	}
	h.get("/v1/products", h.token(api.RoleOwner, "o"))
	m := h.get("/metrics", "")
	if m.Code != http.StatusOK || !contains(m.Body, `http_requests_total{method="GET",route="/v1/products",status="200"} 1`) {
		t.Errorf("metrics lack the products request:\n%s", m.Body)
	}
	h.db.Close()
	if res := h.get("/readyz", ""); res.Code != http.StatusServiceUnavailable {
		t.Errorf("readyz with a closed database = %d, want 503", res.Code)
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }
