package api_test

import (
	"net/http"
	"testing"
	"time"

	"entitlements/api"
)

// TestUndecodableQueryParameters: a query parameter that does not decode
// (bad percent-encoding, a semicolon separator, a cursor that is not one
// of ours) is 400 validation_failed naming it, on every endpoint that
// reads its query; it used to be read as absent (page 1 of the list).
func TestUndecodableQueryParameters(t *testing.T) {
	eachPaymentBackend(t, func(t *testing.T, h *harness) {
		car := vin("LSVAX4E10P2700001")
		h.activate(car, "alice", time.Date(2025, 9, 3, 15, 20, 0, 0, shanghai))
		for range 3 {
			h.createOrder(car, "alice", "monthly")
		}
		billingTok, ops, alice := h.token(api.RoleBilling, "bob"), h.token(api.RoleOps, "ops"), h.token(api.RoleOwner, "alice")
		orders := "/v1/vehicles/" + car + "/orders"
		tests := []struct {
			path, token, field, code string
		}{
			{"/v1/refunds?cursor=%%%", billingTok, "cursor", "invalid_encoding"},
			{"/v1/refunds?cursor=%zz", billingTok, "cursor", "invalid_encoding"},
			{"/v1/refunds?cursor=!!!", billingTok, "cursor", "invalid"},
			{"/v1/refunds?cursor=", billingTok, "", ""}, // empty: the first page
			{"/v1/refunds?format=csv&cursor=%%%", billingTok, "cursor", "invalid_encoding"},
			{"/v1/refunds?vin=%%%", billingTok, "vin", "invalid_encoding"},
			{"/v1/refunds?limit=1;cursor=x", billingTok, "limit", "invalid_encoding"},
			{"/v1/refunds?%zz=1", billingTok, "(query)", "invalid_encoding"},
			{orders + "?cursor=%%%", alice, "cursor", "invalid_encoding"},
			{orders + "?limit=1&cursor=%%%", ops, "cursor", "invalid_encoding"},
			{orders + "?cursor=bm90LWEtY3Vyc29y", ops, "cursor", "invalid"}, // base64 of "not-a-cursor"
			{orders + "?limit=%%%", ops, "limit", "invalid_encoding"},
			{"/v1/vehicles/" + car + "/notices?limit=%%%", ops, "limit", "invalid_encoding"},
			{"/v1/vehicles/" + car + "/features/karaoke?connection=%%%", ops, "connection", "invalid_encoding"},
		}
		for _, tc := range tests {
			res := h.get(tc.path, tc.token)
			if tc.field == "" {
				if res.Code != http.StatusOK {
					t.Errorf("GET %s = %d %s, want 200", tc.path, res.Code, res.Body)
				}
				continue
			}
			if res.Code != http.StatusBadRequest {
				t.Errorf("GET %s = %d %.200s, want 400 validation_failed for %s", tc.path, res.Code, res.Body, tc.field)
				continue
			}
			if p := res.problem(t); p.Code != "validation_failed" || !hasField(p, tc.field, tc.code) {
				t.Errorf("GET %s = %s %+v, want validation_failed with %s %s", tc.path, p.Code, p.Errors, tc.field, tc.code)
			}
		}
	})
}
