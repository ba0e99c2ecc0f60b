package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/billing"
	"entitlements/scheduler"
	"entitlements/store/storetest"
)

// TestInstantsCarryTheConfiguredOffset: the order.paid and refund.issued
// notices (as listed and as the webhook body), the webhook timestamp and
// the already_activated detail render instants with the configured zone's
// offset (SPEC section 2), like every other response.
func TestInstantsCarryTheConfiguredOffset(t *testing.T) {
	for _, zone := range []struct{ name, offset string }{{"Asia/Shanghai", "+08:00"}, {"Asia/Kolkata", "+05:30"}} {
		t.Run(zone.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, dialect string) {
				t.Parallel()
				loc := mustZone(zone.name)
				h := newHarness(t, dialect, withPayments, func(o *api.Options) { o.Location = loc })
				v := vin("LSVAX4E10P4100001")
				activated := time.Date(2025, 9, 3, 15, 20, 0, 0, loc)
				h.activate(v, "alice", activated)
				o := h.pay(h.createOrder(v, "alice", "monthly"))
				if res := h.refund(o.ID, map[string]any{"reason": "service_issue", "amount_fen": 100}); res.Code != http.StatusCreated {
					t.Fatalf("refund = %d %s", res.Code, res.Body)
				}

				fields := map[string][]string{
					"order.paid":    {"paid_at", "starts_at", "ends_at", "covered_until"},
					"refund.issued": {"created_at"},
				}
				var listed []noticeBody
				res := h.get("/v1/vehicles/"+v+"/notices", h.token(api.RoleBilling, "bill"))
				res.decode(t, &listed)
				stored, err := h.db.Notices(context.Background(), billing.VIN(v), 10)
				if err != nil {
					t.Fatal(err)
				}
				if len(listed) != 2 || len(stored) != 2 {
					t.Fatalf("notices: listed %d, stored %d, want 2 (order.paid, refund.issued)", len(listed), len(stored))
				}
				for i, n := range stored {
					body, err := scheduler.Payload(n, h.clock.Now(), loc)
					if err != nil {
						t.Fatal(err)
					}
					var hook struct {
						Timestamp string         `json:"timestamp"`
						Data      map[string]any `json:"data"`
					}
					if err := json.Unmarshal(body, &hook); err != nil {
						t.Fatal(err)
					}
					if !strings.HasSuffix(hook.Timestamp, zone.offset) {
						t.Errorf("%s webhook timestamp = %s, want offset %s", n.Kind, hook.Timestamp, zone.offset)
					}
					for _, f := range fields[string(n.Kind)] {
						for where, data := range map[string]map[string]any{"webhook body": hook.Data, "notice list": listed[i].Data} {
							s, _ := data[f].(string)
							if _, err := time.Parse(time.RFC3339, s); err != nil || !strings.HasSuffix(s, zone.offset) {
								t.Errorf("%s %s %s = %q, want RFC 3339 with offset %s", n.Kind, where, f, data[f], zone.offset)
							}
						}
					}
				}

				res = h.do(request{Method: http.MethodPost, Path: "/v1/vehicles/" + v + "/activation",
					Token: h.token(api.RoleOps, "delivery"),
					Body:  map[string]any{"activated_at": activated.Add(time.Hour).Format(time.RFC3339), "owner_id": "alice", "model": "SU7"}})
				want := "vehicle " + v + " was activated at " + activated.Format(time.RFC3339)
				if p := res.problem(t); res.Code != http.StatusConflict || p.Code != "already_activated" || p.Detail != want {
					t.Errorf("second activation = %d %q, want 409 already_activated %q", res.Code, p.Detail, want)
				}
			})
		})
	}
}
