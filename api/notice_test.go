package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"entitlements/api"
	"entitlements/billing"
)

type noticeBody struct {
	ID            string         `json:"id"`
	Kind          string         `json:"kind"`
	Status        string         `json:"status"`
	Attempts      int            `json:"attempts"`
	NextAttemptAt string         `json:"next_attempt_at"`
	CreatedAt     string         `json:"created_at"`
	Data          map[string]any `json:"data"`
}

func TestVehicleNotices(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		v := vin("LSVAX4E10P2000101")
		now := h.clock.Now()
		// Activated a year ago less 5 days: the trial ends in 5 days.
		h.activate(v, "owner-1", billing.AddMonthsClamped(now, -12, shanghai).AddDate(0, 0, 5).Add(9*time.Hour))
		if n, err := h.db.CreateReminders(context.Background(), now, []int{30, 7, 1}, shanghai, 100); err != nil || n != 1 {
			t.Fatalf("CreateReminders() = %d, %v, want 1", n, err)
		}
		path := "/v1/vehicles/" + v + "/notices"
		cases := []struct {
			name  string
			path  string
			token string
			want  int
		}{
			{"own owner", path, h.token(api.RoleOwner, "owner-1"), http.StatusOK},
			{"billing", path, h.token(api.RoleBilling, "alice"), http.StatusOK},
			{"ops", path + "?limit=1", h.token(api.RoleOps, "bob"), http.StatusOK},
			{"another owner", path, h.token(api.RoleOwner, "owner-2"), http.StatusNotFound},
			{"the vehicle itself", path, h.token(api.RoleVehicle, v), http.StatusForbidden},
			{"carrier", path, h.token(api.RoleCarrier, "cmcc"), http.StatusForbidden},
			{"no token", path, "", http.StatusUnauthorized},
			{"limit out of range", path + "?limit=0", h.token(api.RoleOps, "bob"), http.StatusBadRequest},
			{"limit not a number", path + "?limit=ten", h.token(api.RoleOps, "bob"), http.StatusBadRequest},
			{"unknown vehicle", "/v1/vehicles/" + vin("LSVAX4E10P2999999") + "/notices", h.token(api.RoleOps, "bob"), http.StatusNotFound},
			{"bad VIN", "/v1/vehicles/NOTAVIN/notices", h.token(api.RoleOps, "bob"), http.StatusBadRequest},
		}
		for _, c := range cases {
			res := h.get(c.path, c.token)
			if res.Code != c.want {
				t.Errorf("%s: GET = %d %s, want %d", c.name, res.Code, res.Body, c.want)
				continue
			}
			if c.want != http.StatusOK {
				continue
			}
			var ns []noticeBody
			res.decode(t, &ns)
			if len(ns) != 1 {
				t.Errorf("%s: %d notices, want 1", c.name, len(ns))
				continue
			}
			n := ns[0]
			if n.Kind != "coverage.expiring" || n.Status != "pending" || n.Attempts != 0 ||
				n.CreatedAt != "2026-06-15T12:00:00+08:00" || n.NextAttemptAt != n.CreatedAt ||
				n.Data["vin"] != v || n.Data["owner_id"] != "owner-1" || n.Data["stage"] != float64(7) {
				t.Errorf("%s: notice = %+v", c.name, n)
			}
		}
	})
}
